#!/usr/bin/env bash
# Benchmark (not a test): the stock packer draining three catalogs at once — PostgreSQL (libpq),
# MariaDB (Connector/C) and PostgreSQL through ODBC (psqlODBC) — into shared containers on local
# disk, 4 KiB bodies; prints the marker's and the packer's rows or files per second, and `des pack`
# of the same bodies in the same run for scale. Starts the test servers if they are not running.
#
#   scripts/bench-heterogeneous.sh [ROWS_PER_SOURCE]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
. scripts/bench-lib.sh
bench_build des
bench_servers_up
WORK="$(mktemp -d -t des-bench-mixed.XXXXXX)"
TAG="b$RANDOM"
PSQL=(psql -h "$DES_TEST_PG_HOST" -p "$DES_TEST_PG_PORT" -U "$DES_TEST_PG_USER" -d "$DES_TEST_PG_DATABASE" -qAt -v ON_ERROR_STOP=1)
MY=(mariadb --no-defaults -h "$DES_TEST_MARIADB_HOST" -P "$DES_TEST_MARIADB_PORT" -u "$DES_TEST_MARIADB_USER" -p"$DES_TEST_MARIADB_PASSWORD")
cleanup() {
  "${PSQL[@]}" -c "DROP SCHEMA IF EXISTS hpg_$TAG CASCADE" -c "DROP SCHEMA IF EXISTS hod_$TAG CASCADE" >/dev/null 2>&1 || true
  "${MY[@]}" -e "DROP DATABASE IF EXISTS hmy_$TAG" >/dev/null 2>&1 || true
  rm -rf "$WORK"
  bench_servers_down
}
trap cleanup EXIT
export DES_LOG_LEVEL=warning PGOPTIONS="-c client_min_messages=warning"

python3 - "$WORK/bodies" "$N" <<'PY'
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
blob = os.urandom(8192)
for src in ("pg", "my", "od"):
    for i in range(1, n + 1):
        d = os.path.join(root, src, "d%d" % (i // 1000))
        if i % 1000 == 0 or i == 1: os.makedirs(d, exist_ok=True)
        start = (i * 7919 + len(src)) % 4096
        with open(os.path.join(d, "f%d" % i), "wb") as f: f.write(blob[start:start + 4096])
PY
COLS="des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at DOUBLE PRECISION, des_error TEXT"
"${PSQL[@]}" -c "CREATE SCHEMA hpg_$TAG" -c "CREATE SCHEMA hod_$TAG" \
  -c "CREATE TABLE hpg_$TAG.files (id BIGINT PRIMARY KEY, path TEXT NOT NULL, bytes BIGINT, $COLS)" \
  -c "INSERT INTO hpg_$TAG.files (id, path, bytes) SELECT g, 'pg/d' || (g / 1000) || '/f' || g, 4096 FROM generate_series(1, $N) g" \
  -c "CREATE INDEX ON hpg_$TAG.files (des_status, des_shard, id)" \
  -c "CREATE TABLE hod_$TAG.objects (oid BIGINT PRIMARY KEY, object_key TEXT NOT NULL, $COLS)" \
  -c "INSERT INTO hod_$TAG.objects (oid, object_key) SELECT g, 'od/d' || (g / 1000) || '/f' || g FROM generate_series(1, $N) g" \
  -c "CREATE INDEX ON hod_$TAG.objects (des_status, des_shard, oid)" >/dev/null
"${MY[@]}" -e "CREATE DATABASE hmy_$TAG; CREATE TABLE hmy_$TAG.items (item_id BIGINT PRIMARY KEY, location VARCHAR(255) NOT NULL,
  des_status VARCHAR(16), des_name VARCHAR(64), des_shard INT, des_container VARCHAR(255), des_claimed_by VARCHAR(255),
  des_claimed_at DOUBLE, des_error TEXT, KEY claim (des_status, des_shard, item_id)) ENGINE=InnoDB;
  SET SESSION max_recursive_iterations = $((N + 10));
  INSERT INTO hmy_$TAG.items (item_id, location) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < $N)
  SELECT n, CONCAT('my/d', n DIV 1000, '/f', n) FROM g;"
PG="host: $DES_TEST_PG_HOST, port: $DES_TEST_PG_PORT, database: $DES_TEST_PG_DATABASE, username: $DES_TEST_PG_USER"
cat >"$WORK/des.yaml" <<YAML
sources:
  - name: pg
    connection: {type: postgresql, $PG, schema: hpg_$TAG, pool_size: 4}
    table: {name: files, columns: {id: id, s3_key: path, size_bytes: bytes}}
    bodies: {type: local, root: bodies}
  - name: my
    connection: {type: mariadb, host: $DES_TEST_MARIADB_HOST, port: $DES_TEST_MARIADB_PORT, database: hmy_$TAG, username: $DES_TEST_MARIADB_USER, password: "$DES_TEST_MARIADB_PASSWORD", pool_size: 4}
    table: {name: items, columns: {id: item_id, s3_key: location}}
    bodies: {type: local, root: bodies}
  - name: od
    connection: {type: odbc, dialect: postgres, $PG, schema: hod_$TAG, pool_size: 4, driver_options: {DRIVER: $DES_TEST_ODBC_PG_DRIVER}}
    table: {name: objects, columns: {id: oid, s3_key: object_key}}
    bodies: {type: local, root: bodies}
storage: {type: local, root: archive, prefix: des}
metadata: {connection: {type: postgresql, $PG, schema: hpg_$TAG}}
packer: {work_dir: work, shard_bits: 4, batch_size: 1000, max_container_files: 2000, max_container_bytes: 1GiB}
marker: {batch_size: 5000}
YAML
echo "==> marker and packer over PostgreSQL, MariaDB and ODBC, $N rows each"
MARK="$("$DES" marker run -c "$WORK/des.yaml" --until-idle)"
PACK="$("$DES" packer run -c "$WORK/des.yaml" --until-idle)"
"$DES" check -c "$WORK/des.yaml" >/dev/null
t0=$(date +%s.%N); "$DES" pack "$WORK/bodies" -o "$WORK/pack.des" --force >/dev/null; t1=$(date +%s.%N)
MR=$(grep -o '[0-9]* rows/s' <<<"$MARK" | cut -d' ' -f1)
PR=$(grep -o '[0-9]* files/s' <<<"$PACK" | cut -d' ' -f1)
DR=$(awk -v n="$((3 * N))" -v a="$t1" -v b="$t0" 'BEGIN{printf "%d", n/(a-b)}')
printf "\n%-58s %12s\n" "measure (three catalogs, $((3 * N)) files of 4 KiB)" "value"
printf "%-58s %12d\n" "marker rows/s, all three sources" "$MR"
printf "%-58s %12d\n" "packer files/s end to end, all three sources" "$PR"
printf "%-58s %12d\n" "des pack files/s of the same bodies" "$DR"
awk -v p="$PR" -v d="$DR" 'BEGIN { printf "\nratio: heterogeneous packer / des pack = %.2f\n", p / d }'
