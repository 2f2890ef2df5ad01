#!/usr/bin/env bash
# Benchmark (not a test): event lag, from the commit of a change to the moment another server
# answers for it. Two `des serve` on one metadata store; each of N files is deleted through
# server A (DELETE /files/{name}: the tombstone and its event commit before A answers) and
# server B is asked (GET, every millisecond) until it answers 410. Printed: p50/p99 of that lag,
# with the metadata store on SQLite (the outbox read every events.poll_seconds) and on
# PostgreSQL (LISTEN/NOTIFY wakes the follower), beside the baseline in the same run: servers
# that do not follow the events (events.follow: false) and learn of deletes by their poll.
# Then ROUNDS new files, each packed into a container of its own, and the lag from the
# container's record to server B's first 200 for the file.
#   scripts/bench-events.sh [FILES] [ROUNDS]      (default 200 deletes, 30 new containers)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
ROUNDS="${2:-30}"
. scripts/bench-lib.sh
bench_build des
bench_servers_up
WORK="$(mktemp -d -t des-bench-events.XXXXXX)"
PIDS=()
SCHEMA="des_bench_ev_$$"
PSQL=(psql -h "$DES_TEST_PG_HOST" -p "$DES_TEST_PG_PORT" -U "$DES_TEST_PG_USER" -d "$DES_TEST_PG_DATABASE" -qAt -v ON_ERROR_STOP=1)
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${PSQL[@]}" -c "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  bench_servers_down
}
trap cleanup EXIT
export DES_LOG_LEVEL=warning DES_SERVER_TOKENS=bench-token-0123456789abcdef
"${PSQL[@]}" -c "CREATE SCHEMA $SCHEMA" >/dev/null

# run_case NAME METADATA_YAML -> "p50 p99 poll" (milliseconds)
run_case() {
  local dir="$WORK/$1"
  mkdir -p "$dir"
  cat > "$dir/des.yaml" <<YAML
sources:
  - name: catalog
    connection: {type: sqlite, database: des-data/catalog.sqlite}
    table: {name: files, columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status}}
    bodies: {type: local, root: des-data/bodies}
storage: {type: local, root: des-data/archive, prefix: des}
packer: {work_dir: des-data/work}
$2
YAML
  "$DES" sample -c "$dir/des.yaml" --files "$N" --size 1024 >/dev/null
  "$DES" marker run -c "$dir/des.yaml" --until-idle >/dev/null
  "$DES" packer run -c "$dir/des.yaml" --until-idle >/dev/null
  python3 -c "import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('select des_name from files order by id')]" \
    "$dir/des-data/catalog.sqlite" > "$dir/names"
  local ports=()
  for s in a b; do
    "$DES" serve -c "$dir/des.yaml" --port 0 --log-level warning > "$dir/serve-$s.out" &
    PIDS+=($!)
    for _ in $(seq 100); do grep -q listening "$dir/serve-$s.out" 2>/dev/null && break; sleep 0.1; done
    ports+=("$(grep -o '[0-9]*$' "$dir/serve-$s.out" | head -1)")
  done
  python3 - "${ports[0]}" "${ports[1]}" "$dir/names" "$DES" "$dir" "$SCHEMA_ARG" "$ROUNDS" <<'PY'
import http.client, os, sqlite3, subprocess, sys, time, urllib.parse
a, b, names = int(sys.argv[1]), int(sys.argv[2]), [l.strip() for l in open(sys.argv[3]) if l.strip()]
des, case_dir, schema, rounds = sys.argv[4], sys.argv[5], sys.argv[6], int(sys.argv[7])
auth = {"Authorization": "Bearer bench-token-0123456789abcdef"}
ca, cb = http.client.HTTPConnection("127.0.0.1", a), http.client.HTTPConnection("127.0.0.1", b)
def status(c, method, path):
    c.request(method, path, headers=auth)
    r = c.getresponse(); r.read()
    return r.status
lags = []
for name in names:
    path = "/files/" + urllib.parse.quote(name)
    assert status(cb, "GET", path) == 200, name          # B knows the file (and has its list cached)
    assert status(ca, "DELETE", path + "?reason=bench") == 200
    committed = time.monotonic()
    while status(cb, "GET", path) != 410:
        if time.monotonic() - committed > 10: raise SystemExit("no 410 within 10 s")
        time.sleep(0.001)
    lags.append((time.monotonic() - committed) * 1000)
def pct(xs):
    xs = sorted(xs)
    return "%.1f %.1f" % (xs[len(xs) // 2], xs[min(len(xs) - 1, int(len(xs) * 0.99))])

# New files: each round names one new row and packs it (one new container); server B is asked
# for it every millisecond from before the packer starts until it answers 200. The lag runs
# from the container's record in the metadata store (uploaded_at, the database's clock, on this
# machine) to B's first 200.
catalog = os.path.join(case_dir, "des-data/catalog.sqlite")
def run(*args):
    subprocess.run([des, *args, "-c", os.path.join(case_dir, "des.yaml")], cwd=case_dir, check=True, stdout=subprocess.DEVNULL)
def newest_upload():
    if schema == "-":
        db = sqlite3.connect(os.path.join(case_dir, "des-data/metadata.sqlite"))
        return db.execute("SELECT max(uploaded_at) FROM des_containers").fetchone()[0]
    out = subprocess.run(["psql", "-h", os.environ["DES_TEST_PG_HOST"], "-p", os.environ["DES_TEST_PG_PORT"], "-U", os.environ["DES_TEST_PG_USER"],
                          "-d", os.environ["DES_TEST_PG_DATABASE"], "-qAt", "-c", f"SELECT max(uploaded_at) FROM {schema}.des_containers"],
                         check=True, capture_output=True, text=True)
    return float(out.stdout.strip())
known = set(names)
new_lags = []
for _ in range(rounds):
    run("sample", "--files", "1", "--size", "1024")
    run("marker", "run", "--until-idle")
    fresh = [r[0] for r in sqlite3.connect(catalog).execute("SELECT des_name FROM files WHERE des_name IS NOT NULL") if r[0] not in known]
    assert len(fresh) == 1, fresh
    known.update(fresh)
    path = "/files/" + urllib.parse.quote(fresh[0])
    packer = subprocess.Popen([des, "packer", "run", "--until-idle", "-c", os.path.join(case_dir, "des.yaml")], cwd=case_dir, stdout=subprocess.DEVNULL)
    started = time.monotonic()
    while status(cb, "GET", path) != 200:
        if time.monotonic() - started > 30: raise SystemExit("a new file not served within 30 s")
        time.sleep(0.001)
    served = time.time()
    packer.wait()
    new_lags.append((served - newest_upload()) * 1000)
print(pct(lags), pct(new_lags))
PY
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
echo "==> SQLite metadata store (outbox read every events.poll_seconds = 0.25 s), $N deletes, $ROUNDS new containers"
SCHEMA_ARG=-
read -r SQ50 SQ99 SQN50 SQN99 <<<"$(run_case sqlite "metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}")"
echo "==> baseline: SQLite, events not followed (events.follow: false: the tombstone poll, every 0.5 s), $N deletes, $ROUNDS new containers"
read -r BL50 BL99 BLN50 BLN99 <<<"$(run_case baseline "metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}
events: {follow: false}")"
echo "==> PostgreSQL metadata store (LISTEN/NOTIFY), $N deletes, $ROUNDS new containers"
SCHEMA_ARG="$SCHEMA"
read -r PG50 PG99 PGN50 PGN99 <<<"$(run_case postgres "metadata: {connection: {type: postgresql, host: $DES_TEST_PG_HOST, port: $DES_TEST_PG_PORT, database: $DES_TEST_PG_DATABASE, username: $DES_TEST_PG_USER, schema: $SCHEMA}}")"
echo
printf '%-62s %9s %9s\n' "event lag, commit -> 410 on the other server (ms)" "p50" "p99"
printf '%-62s %9s %9s\n' "SQLite, outbox polled every 0.25 s" "$SQ50" "$SQ99"
printf '%-62s %9s %9s\n' "PostgreSQL, LISTEN/NOTIFY" "$PG50" "$PG99"
printf '%-62s %9s %9s\n' "baseline: not followed, the tombstone poll alone (0.5 s)" "$BL50" "$BL99"
printf '%-62s %9s\n' "goal: every delete answered 410 on every server within" "1000"
echo
printf '%-62s %9s %9s\n' "event lag, container recorded -> 200 on a server (ms)" "p50" "p99"
printf '%-62s %9s %9s\n' "SQLite, outbox polled every 0.25 s" "$SQN50" "$SQN99"
printf '%-62s %9s %9s\n' "PostgreSQL, LISTEN/NOTIFY" "$PGN50" "$PGN99"
printf '%-62s %9s %9s\n' "baseline: not followed, container_refresh_seconds (1 s)" "$BLN50" "$BLN99"
printf '%-62s %9s\n' "goal: a new file served by /files within" "1000"
