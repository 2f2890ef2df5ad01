# Sourced by the benchmark scripts: the release build and the test servers they share.

# bench_build PRODUCT... : builds each product in release; sets BIN (and DES, BENCH when built).
bench_build() {
  local product
  for product in "$@"; do swift build -c release --product "$product" 2>&1 | grep -E 'error' || true; done
  BIN="$(swift build -c release --show-bin-path)"
  DES="$BIN/des"
  BENCH="$BIN/des-bench"
}

# bench_servers_up : starts the test servers unless they run already, and loads their settings.
# bench_servers_down : stops them again if bench_servers_up started them.
bench_servers_up() {
  SERVERS="${DES_TEST_SERVERS_DIR:-/tmp/des-test-servers}"
  BENCH_STARTED_SERVERS=0
  if [ ! -f "$SERVERS/env" ]; then scripts/test-servers.sh up >/dev/null; BENCH_STARTED_SERVERS=1; fi
  set -a; . "$SERVERS/env"; set +a
}
bench_servers_down() {
  if [ "${BENCH_STARTED_SERVERS:-0}" = 1 ]; then scripts/test-servers.sh down >/dev/null; fi
}

# bench_bodies ROOT N : N bodies of 4 KiB under ROOT (d{i/1000}/f{i}), each a different slice of random bytes.
bench_bodies() {
  python3 - "$1" "$2" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
blob = os.urandom(8192)
for i in range(1, n + 1):
    d = os.path.join(root, "d%d" % (i // 1000))
    if i % 1000 == 0 or i == 1: os.makedirs(d, exist_ok=True)
    start = (i * 7919) % 4096
    with open(os.path.join(d, "f%d" % i), "wb") as f: f.write(blob[start:start + 4096])
PY
}

# bench_pg_catalog SCHEMA N DIR [PACKER_KEYS] : (re)creates SCHEMA on the test PostgreSQL with a
# catalog of N rows naming the bodies of bench_bodies, with the partial indexes docs/operations.md
# recommends, and writes DIR/des.yaml over it (catalog and metadata store in SCHEMA, bodies in
# DIR/bodies); PACKER_KEYS are put first in the packer section. Sets PSQL (psql on the test database).
bench_pg_catalog() {
  local schema="$1" n="$2" dir="$3" keys="${4:-}"
  PSQL=(psql -h "$DES_TEST_PG_HOST" -p "$DES_TEST_PG_PORT" -U "$DES_TEST_PG_USER" -d "$DES_TEST_PG_DATABASE" -qAt -v ON_ERROR_STOP=1)
  "${PSQL[@]}" -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" \
    -c "CREATE TABLE $schema.files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)" \
    -c "INSERT INTO $schema.files (id, body_path, size_bytes) SELECT g, 'd' || (g / 1000) || '/f' || g, 4096 FROM generate_series(1, $n) g" \
    -c "CREATE INDEX ON $schema.files (id) WHERE des_name IS NULL" \
    -c "CREATE INDEX ON $schema.files (des_shard, id) WHERE des_status = 'DES_TODO'" \
    -c "CREATE INDEX ON $schema.files (des_shard) WHERE des_status = 'DES_CLAIMED'" >/dev/null
  local conn="type: postgresql, host: $DES_TEST_PG_HOST, port: $DES_TEST_PG_PORT, database: $DES_TEST_PG_DATABASE, username: $DES_TEST_PG_USER, schema: $schema"
  cat >"$dir/des.yaml" <<YAML
sources:
  - name: pg
    connection: {$conn, pool_size: 4}
    table:
      name: files
      columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status}
    bodies: {type: local, root: bodies}
storage: {type: local, root: archive, prefix: des}
metadata: {connection: {$conn}}
packer: {${keys}work_dir: work, shard_bits: 4, batch_size: 1000, max_container_files: 2000, max_container_bytes: 1GiB}
marker: {batch_size: 5000}
YAML
}

# bench_http_setup NAME : for a benchmark of des serve under wrk: wrk installed, des built, WORK a
# fresh temporary directory, and on exit the server bench_serve started (SERVER) killed and WORK
# removed.
bench_http_setup() {
  command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
  bench_build des
  WORK="$(mktemp -d -t "des-bench-$1.XXXXXX")"
  SERVER=""
  trap '[ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
  export DES_LOG_LEVEL=warning
}

# bench_serve CONFIG WORK : starts des serve on a free port in the background; sets SERVER (its
# pid) and BASE (http://127.0.0.1:PORT). The caller's EXIT trap kills $SERVER.
bench_serve() {
  "$DES" serve -c "$1" --port 0 --log-level warning > "$2/serve.out" &
  SERVER=$!
  for _ in $(seq 100); do grep -q listening "$2/serve.out" 2>/dev/null && break; sleep 0.1; done
  BASE="http://127.0.0.1:$(grep -o '[0-9]*$' "$2/serve.out" | head -1)"
}

# bench_wrk ARGS... : wrk (1 thread, $CONNS connections, $SECS s) against $SERVER; prints
# "requests/s p99_ms non2xx server_cpu_us_per_request". The server's own CPU (user + system,
# clock ticks of 10 ms) per request is steadier than requests/s on a shared machine, where wrk
# and the server take turns on the cores.
bench_wrk() {
  local out c0 c1 n rps p99 bad cpu
  c0="$(awk '{print $14 + $15}' "/proc/$SERVER/stat")"
  out="$(wrk -t1 -c"$CONNS" -d"${SECS}s" --latency "$@" 2>&1)"
  c1="$(awk '{print $14 + $15}' "/proc/$SERVER/stat")"
  n="$(awk '/requests in/ {print $1}' <<<"$out")"
  cpu="$(python3 -c "print(round(($c1 - $c0) * 10000 / max(1, $n), 1))")"
  rps="$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")"
  p99="$(awk '$1 == "99%" {print $2}' <<<"$out")"
  bad="$(awk '/^non-2xx:/ {print $2}' <<<"$out")"
  # wrk prints latency as 812.00us, 1.20ms or 1.01s: in ms.
  p99="$(python3 -c "import sys; v=sys.argv[1]; print(round(float(v[:-2])/1000,3) if v.endswith('us') else round(float(v[:-2]),3) if v.endswith('ms') else round(float(v[:-1])*1000,3))" "$p99")"
  echo "$rps $p99 ${bad:-0} $cpu"
}

# bench_packed_sample CONFIG WORK FILES : FILES sample files of 4 KiB, named and packed on CONFIG's
# embedded default; their names, in random order, in WORK/names (exported as DES_BENCH_NAMES for
# the wrk scripts).
bench_packed_sample() {
  echo "==> $3 sample files of 4 KiB, named and packed"
  "$DES" sample -c "$1" --files "$3" --size 4096 >/dev/null
  "$DES" marker run -c "$1" --until-idle >/dev/null
  "$DES" packer run -c "$1" --until-idle >/dev/null
  python3 -c "import sqlite3,sys; [print(r[0]) for r in sqlite3.connect(sys.argv[1]).execute('select des_name from files order by random()')]" \
    "$2/des-data/catalog.sqlite" > "$2/names"
  export DES_BENCH_NAMES="$2/names"
}
