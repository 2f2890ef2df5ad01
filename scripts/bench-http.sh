#!/usr/bin/env bash
# Benchmark (not a test): the HTTP service under wrk on loopback. Requests/s and p99
# latency of POST /assign and of GET /files/{name} (4 KiB files on local disk, warm
# index cache, every body checked against its META sha256 before it is sent), each
# beside GET /health/live on the same server in the same run (the framework's floor:
# what a route that does nothing gets on this machine).
#   scripts/bench-http.sh [SECONDS] [CONNECTIONS]     (default 10 s, 64 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-64}"
FILES=5000
. scripts/bench-lib.sh
bench_http_setup http
cp configs/local.yaml "$WORK/local.yaml"
bench_packed_sample "$WORK/local.yaml" "$WORK" "$FILES"

bench_serve "$WORK/local.yaml" "$WORK"
echo "==> des serve on $BASE; warming the index cache (every name once)"
sed -e 's/(/%28/; s/)/%29/' -e "s|.*|url = \"$BASE/files/&\"\noutput = \"/dev/null\"|" "$WORK/names" > "$WORK/curl.cfg"
curl -s -K "$WORK/curl.cfg"

echo "==> wrk: 1 thread, $CONNS connections, ${SECS} s per route"
read -r LIVE_RPS LIVE_P99 _ LIVE_CPU <<<"$(bench_wrk "$BASE/health/live")"
read -r ASSIGN_RPS ASSIGN_P99 ASSIGN_BAD ASSIGN_CPU <<<"$(bench_wrk -s scripts/wrk/assign.lua "$BASE/assign")"
read -r FILES_RPS FILES_P99 FILES_BAD FILES_CPU <<<"$(bench_wrk -s scripts/wrk/files.lua "$BASE")"
METRICS="$(curl -s "$BASE/metrics")"
STORAGE="$(awk '/^des_storage_requests_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"
MISMATCHES="$(awk '/^des_read_checksum_failures_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"

printf '\n%-34s %12s %10s %10s %12s %14s\n' "route (loopback, wrk)" "requests/s" "p99 ms" "non-2xx" "vs /health/live" "server CPU/req"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "GET /health/live (floor)" "$LIVE_RPS" "$LIVE_P99" "-" "1.00" "$LIVE_CPU"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "POST /assign" "$ASSIGN_RPS" "$ASSIGN_P99" "$ASSIGN_BAD" \
  "$(python3 -c "print(f'{$ASSIGN_RPS/$LIVE_RPS:.2f}')")" "$ASSIGN_CPU"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "GET /files/{name} (4 KiB, checked)" "$FILES_RPS" "$FILES_P99" "$FILES_BAD" \
  "$(python3 -c "print(f'{$FILES_RPS/$LIVE_RPS:.2f}')")" "$FILES_CPU"
echo "storage requests made by the server in all: $STORAGE; checksum mismatches: $MISMATCHES"
echo "targets: /assign >= 30000/s, /files >= 10000/s, p99 < 5 ms"
