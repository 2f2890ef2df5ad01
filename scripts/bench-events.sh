#!/usr/bin/env bash
# Benchmark (not a test): event lag, from the commit of a change to the moment another server
# answers for it. Two `des serve` on one metadata store; each of N files is deleted through
# server A (DELETE /files/{name}: the tombstone and its event commit before A answers) and
# server B is asked (GET, every millisecond) until it answers 410. Printed: p50/p99 of that lag,
# with the metadata store on SQLite (the outbox read every events.poll_seconds) and on
# PostgreSQL (LISTEN/NOTIFY wakes the follower), beside the baseline in the same run: servers
# that do not follow the events (events.follow: false) and learn of deletes by their poll.
#   scripts/bench-events.sh [FILES]      (default 200)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-200}"
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
  python3 - "${ports[0]}" "${ports[1]}" "$dir/names" <<'PY'
import http.client, sys, time, urllib.parse
a, b, names = int(sys.argv[1]), int(sys.argv[2]), [l.strip() for l in open(sys.argv[3]) if l.strip()]
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
lags.sort()
print("%.1f %.1f" % (lags[len(lags) // 2], lags[min(len(lags) - 1, int(len(lags) * 0.99))]))
PY
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  PIDS=()
}
echo "==> SQLite metadata store (outbox read every events.poll_seconds = 0.25 s), $N deletes"
read -r SQ50 SQ99 <<<"$(run_case sqlite "metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}")"
echo "==> baseline: SQLite, events not followed (events.follow: false: the tombstone poll, every 0.5 s), $N deletes"
read -r BL50 BL99 <<<"$(run_case baseline "metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}
events: {follow: false}")"
echo "==> PostgreSQL metadata store (LISTEN/NOTIFY), $N deletes"
read -r PG50 PG99 <<<"$(run_case postgres "metadata: {connection: {type: postgresql, host: $DES_TEST_PG_HOST, port: $DES_TEST_PG_PORT, database: $DES_TEST_PG_DATABASE, username: $DES_TEST_PG_USER, schema: $SCHEMA}}")"
echo
printf '%-62s %9s %9s\n' "event lag, commit -> 410 on the other server (ms)" "p50" "p99"
printf '%-62s %9s %9s\n' "SQLite, outbox polled every 0.25 s" "$SQ50" "$SQ99"
printf '%-62s %9s %9s\n' "PostgreSQL, LISTEN/NOTIFY" "$PG50" "$PG99"
printf '%-62s %9s %9s\n' "baseline: not followed, the tombstone poll alone (0.5 s)" "$BL50" "$BL99"
printf '%-62s %9s\n' "goal: every delete answered 410 on every server within" "1000"
