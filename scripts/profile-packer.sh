#!/usr/bin/env bash
# Profile (not a test): where the packer's own CPU goes, sampled by perf (this machine has no
# hardware counters, and its valgrind cannot run the Swift binary, so samples of the CPU clock). Builds a PostgreSQL catalog of N files
# of 4 KiB (the catalog and settings of scripts/bench-postgres.sh), names them, then runs under
# perf `des packer run --until-idle` in the chosen claim mode and `des pack` of the same
# bodies, and prints the CPU seconds per 1,000 files of each, their ratio, and the costliest
# functions (self, and with what they call). Starts the test servers if they are not running.
#
#   scripts/profile-packer.sh [N] [MODE]      (default 20000 lease)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"; MODE="${2:-lease}"
command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
. scripts/bench-lib.sh
bench_build des
bench_servers_up
WORK="$(mktemp -d -t des-profile.XXXXXX)"
cleanup() { rm -rf "$WORK"; bench_servers_down; }
trap cleanup EXIT
PSQL=(psql -h "$DES_TEST_PG_HOST" -p "$DES_TEST_PG_PORT" -U "$DES_TEST_PG_USER" -d "$DES_TEST_PG_DATABASE" -qAt -v ON_ERROR_STOP=1)
export DES_LOG_LEVEL=warning PGOPTIONS="-c client_min_messages=warning"
schema="des_profile"
python3 - "$WORK/bodies" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
blob = os.urandom(8192)
for i in range(1, n + 1):
    d = os.path.join(root, "d%d" % (i // 1000))
    if i % 1000 == 0 or i == 1: os.makedirs(d, exist_ok=True)
    start = (i * 7919) % 4096
    with open(os.path.join(d, "f%d" % i), "wb") as f: f.write(blob[start:start + 4096])
PY
"${PSQL[@]}" -c "DROP SCHEMA IF EXISTS $schema CASCADE" -c "CREATE SCHEMA $schema" \
  -c "CREATE TABLE $schema.files (id BIGINT PRIMARY KEY, body_path TEXT NOT NULL, size_bytes BIGINT, des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT)" \
  -c "INSERT INTO $schema.files (id, body_path, size_bytes) SELECT g, 'd' || (g / 1000) || '/f' || g, 4096 FROM generate_series(1, $N) g" \
  -c "CREATE INDEX ON $schema.files (id) WHERE des_name IS NULL" \
  -c "CREATE INDEX ON $schema.files (des_shard, id) WHERE des_status = 'DES_TODO'" \
  -c "CREATE INDEX ON $schema.files (des_shard) WHERE des_status = 'DES_CLAIMED'" >/dev/null
conn="type: postgresql, host: $DES_TEST_PG_HOST, port: $DES_TEST_PG_PORT, database: $DES_TEST_PG_DATABASE, username: $DES_TEST_PG_USER, schema: $schema"
cat >"$WORK/des.yaml" <<YAML
sources:
  - name: pg
    connection: {$conn, pool_size: 4}
    table:
      name: files
      columns: {id: id, s3_key: body_path, size_bytes: size_bytes, status: des_status}
    bodies: {type: local, root: bodies}
storage: {type: local, root: archive, prefix: des}
metadata: {connection: {$conn}}
packer: {claim_mode: $MODE, work_dir: work, shard_bits: 4, batch_size: 1000, max_container_files: 2000, max_container_bytes: 1GiB}
marker: {batch_size: 5000}
YAML
"$DES" marker run -c "$WORK/des.yaml" --until-idle >/dev/null
"${PSQL[@]}" -c "VACUUM ANALYZE $schema.files" >/dev/null
echo "==> perf: des packer run ($MODE) on $N files, then des pack of the same bodies"
perf record -F 1999 -g -o "$WORK/packer.data" -- /usr/bin/time -f "%U %S" -o "$WORK/packer.time" \
  "$DES" packer run -c "$WORK/des.yaml" --until-idle >/dev/null 2>"$WORK/perf.txt" || { cat "$WORK/perf.txt"; exit 1; }
perf record -F 1999 -g -o "$WORK/pack.data" -- /usr/bin/time -f "%U %S" -o "$WORK/pack.time" \
  "$DES" pack "$WORK/bodies" -o "$WORK/pack.des" --force >/dev/null 2>"$WORK/perf.txt" || { cat "$WORK/perf.txt"; exit 1; }
read -r pu ps <"$WORK/packer.time"; read -r du ds <"$WORK/pack.time"
awk -v pu="$pu" -v ps="$ps" -v du="$du" -v ds="$ds" -v n="$N" \
  'BEGIN{printf "CPU seconds per 1,000 files: packer %.3f (user %.2f, sys %.2f), des pack %.3f (user %.2f, sys %.2f), ratio %.2f\n", (pu+ps)*1000/n, pu, ps, (du+ds)*1000/n, du, ds, (pu+ps)/(du+ds)}'
report() {  # DATA [--children|--no-children] LINES
  perf report -i "$1" "$2" --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -"$3" | swift demangle --simplified | cut -c1-180 || true
}
echo "==> where the packer's samples are: kernel and user, by library"
perf report -i "$WORK/packer.data" --no-children --sort dso --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -12 || true
echo "==> the packer's costliest functions, self (share of its samples)"
report "$WORK/packer.data" --no-children 35
echo "==> the packer's costliest functions, with what they call"
report "$WORK/packer.data" --children 45
echo "==> des pack's costliest functions, self"
report "$WORK/pack.data" --no-children 15
"${PSQL[@]}" -c "DROP SCHEMA $schema CASCADE" >/dev/null
