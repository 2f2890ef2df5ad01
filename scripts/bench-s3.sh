#!/usr/bin/env bash
# Benchmark (not a test) on the S3 test server (moto, signatures checked): requests per cold and
# warm read of one file from a container on S3, warm gets/s through the in-memory index cache, and
# the packer's files/s with its bodies on S3 at fetch_concurrency 1 and 32 (the ratio shows the
# fetches' latency overlapping). Starts the test servers if they are not running.
#
#   scripts/bench-s3.sh [BODIES]      (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
. scripts/bench-lib.sh
bench_build des des-bench
bench_servers_up
WORK="$(mktemp -d -t des-bench-s3.XXXXXX)"
# moto answers on loopback in about a millisecond, where a real S3 region is tens of milliseconds
# away: the packer's bodies are fetched through a small proxy that holds each request back by
# DELAY_MS, so that what fetch_concurrency buys (latency overlapping) shows.
DELAY_MS="${DELAY_MS:-20}"
python3 - "$WORK/proxy.port" "${DES_TEST_S3_ENDPOINT##*:}" "$DELAY_MS" >"$WORK/proxy.log" 2>&1 <<'PY' &
import asyncio, sys
portfile, upstream, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) / 1000
async def pipe(reader, writer, hold):
    try:
        while data := await reader.read(65536):
            if hold: await asyncio.sleep(delay)
            writer.write(data); await writer.drain()
    except Exception: pass
    finally: writer.close()
async def handle(client_r, client_w):
    server_r, server_w = await asyncio.open_connection("127.0.0.1", upstream)
    await asyncio.gather(pipe(client_r, server_w, True), pipe(server_r, client_w, False))
async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    with open(portfile + ".tmp", "w") as f: f.write(str(server.sockets[0].getsockname()[1]))
    import os; os.rename(portfile + ".tmp", portfile)
    async with server: await server.serve_forever()
asyncio.run(main())
PY
PROXY_PID=$!
for _ in $(seq 1 100); do [ -f "$WORK/proxy.port" ] && break; sleep 0.1; done
PROXY_PORT="$(cat "$WORK/proxy.port")"
cleanup() { kill "$PROXY_PID" 2>/dev/null || true; rm -rf "$WORK"; bench_servers_down; }
trap cleanup EXIT
export DES_LOG_LEVEL=warning AWS_ENDPOINT_URL="$DES_TEST_S3_ENDPOINT" AWS_REGION="$DES_TEST_S3_REGION"
export AWS_ACCESS_KEY_ID="$DES_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$DES_TEST_S3_SECRET_KEY"

echo "==> reads of a container on S3"
READS="$("$BENCH" s3-reads 200 2000)"
COLD=$(awk '/^cold_read_requests / {print $2}' <<<"$READS"); COLD_HEAD=$(awk '/^cold_read_heads / {print $2}' <<<"$READS")
WARM=$(awk '/^warm_read_requests / {print $2}' <<<"$READS"); GETS=$(awk '/^warm_gets_per_sec / {print $2}' <<<"$READS")

echo "==> $N bodies of 4 KiB on S3; the packer at fetch_concurrency 1 and 32, S3 $DELAY_MS ms away"
BUCKET="des-bench-$RANDOM"
python3 - "$WORK" "$N" "$BUCKET" <<'PY'
import os, sys, sqlite3, boto3
from concurrent.futures import ThreadPoolExecutor
work, n, bucket = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s3 = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"])
s3.create_bucket(Bucket=bucket)
blob = os.urandom(8192)
def put(i): s3.put_object(Bucket=bucket, Key="b/f%d" % i, Body=blob[i % 4096:i % 4096 + 4096])
with ThreadPoolExecutor(16) as pool: list(pool.map(put, range(1, n + 1)))
db = sqlite3.connect(os.path.join(work, "catalog.sqlite"))
db.execute("CREATE TABLE files (id INTEGER PRIMARY KEY, bucket TEXT, object_key TEXT NOT NULL, size_bytes INTEGER, des_status TEXT, des_name TEXT, des_shard INTEGER, des_container TEXT, des_claimed_by TEXT, des_claimed_at REAL, des_error TEXT)")
db.execute("CREATE INDEX files_claim ON files (des_status, des_shard, id)")
db.executemany("INSERT INTO files (id, bucket, object_key, size_bytes) VALUES (?, ?, ?, 4096)", [(i, bucket, "b/f%d" % i) for i in range(1, n + 1)])
db.commit()
PY
run_packer() {  # FETCH -> files/s
  local dir="$WORK/c$1"
  mkdir -p "$dir"; cp "$WORK/catalog.sqlite" "$dir/catalog.sqlite"
  cat >"$dir/des.yaml" <<YAML
sources:
  - name: s3
    connection: {type: sqlite, database: catalog.sqlite}
    table: {name: files, columns: {id: id, s3_bucket: bucket, s3_key: object_key, size_bytes: size_bytes}}
    bodies: {type: s3, endpoint: "http://127.0.0.1:$PROXY_PORT"}
storage: {type: local, root: archive, prefix: des}
metadata: {connection: {type: sqlite, database: metadata.sqlite}}
packer: {work_dir: work, shard_bits: 2, batch_size: 500, fetch_concurrency: $1, max_container_files: 5000}
YAML
  "$DES" marker run -c "$dir/des.yaml" --until-idle >/dev/null
  "$DES" packer run -c "$dir/des.yaml" --until-idle | grep -o '[0-9]* files/s' | cut -d' ' -f1
}
P1=$(run_packer 1); P32=$(run_packer 32)
printf "\n%-60s %12s\n" "measure (S3: moto on loopback)" "value"
printf "%-60s %12s\n" "requests for a cold read (GETs; HEADs)" "$COLD; $COLD_HEAD"
printf "%-60s %12s\n" "requests for a warm read (memory cache)" "$WARM"
printf "%-60s %12s\n" "warm gets/s through the memory cache (one reader)" "$GETS"
printf "%-60s %12s\n" "packer files/s, bodies on S3 (+${DELAY_MS} ms), fetch_concurrency 1" "$P1"
printf "%-60s %12s\n" "packer files/s, bodies on S3 (+${DELAY_MS} ms), fetch_concurrency 32" "$P32"
awk -v a="$P1" -v b="$P32" 'BEGIN { printf "\nratio: fetch_concurrency 32 / 1 = %.2f\n", b / a }'
