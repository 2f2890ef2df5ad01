#!/usr/bin/env bash
# Benchmark (not a test): the HTTP service under wrk on loopback. Requests/s and p99
# latency of POST /assign and of GET /files/{name} (4 KiB files on local disk, warm
# index cache, every body checked against its META sha256 before it is sent), each
# beside GET /health/live on the same server in the same run (the framework's floor:
# what a route that does nothing gets on this machine).
# The floor and /files are measured in alternating rounds; the table shows the median round.
#   scripts/bench-http.sh [SECONDS] [CONNECTIONS] [ROUNDS]     (default 10 s, 64 connections, 3 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-64}"
ROUNDS="${3:-3}"
FILES=5000
. scripts/bench-lib.sh
bench_http_setup http
cp configs/local.yaml "$WORK/local.yaml"
bench_packed_sample "$WORK/local.yaml" "$WORK" "$FILES"

bench_serve "$WORK/local.yaml" "$WORK"
echo "==> des serve on $BASE; warming the index cache (every name once)"
sed -e 's/(/%28/; s/)/%29/' -e "s|.*|url = \"$BASE/files/&\"\noutput = \"/dev/null\"|" "$WORK/names" > "$WORK/curl.cfg"
curl -s -K "$WORK/curl.cfg"

echo "==> wrk: 1 thread, $CONNS connections, ${SECS} s per route and round; $ROUNDS rounds of /health/live then /files"
# The floor and /files alternate, round by round: this machine's speed drifts by a quarter
# within a minute, so a ratio is taken only between neighbours, and the median round is shown.
ROUND_LINES=()
for round in $(seq "$ROUNDS"); do
  read -r L_RPS L_P99 _ L_CPU <<<"$(bench_wrk "$BASE/health/live")"
  read -r F_RPS F_P99 F_BAD F_CPU <<<"$(bench_wrk -s scripts/wrk/files.lua "$BASE")"
  ROUND_LINES+=("$(python3 -c "print(f'{$F_RPS/$L_RPS:.4f}')") $L_RPS $L_P99 $L_CPU $F_RPS $F_P99 $F_BAD $F_CPU")
  echo "    round $round: /health/live $L_RPS/s, /files $F_RPS/s: $(python3 -c "print(f'{$F_RPS/$L_RPS:.2f}')")"
done
read -r _ LIVE_RPS LIVE_P99 LIVE_CPU FILES_RPS FILES_P99 FILES_BAD FILES_CPU <<<"$(printf '%s\n' "${ROUND_LINES[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")"
read -r ASSIGN_RPS ASSIGN_P99 ASSIGN_BAD ASSIGN_CPU <<<"$(bench_wrk -s scripts/wrk/assign.lua "$BASE/assign")"
METRICS="$(curl -s "$BASE/metrics")"
STORAGE="$(awk '/^des_storage_requests_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"
MISMATCHES="$(awk '/^des_read_checksum_failures_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"

printf '\n%-34s %12s %10s %10s %12s %14s\n' "route (loopback, wrk)" "requests/s" "p99 ms" "non-2xx" "vs /health/live" "server CPU/req"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "GET /health/live (floor)" "$LIVE_RPS" "$LIVE_P99" "-" "1.00" "$LIVE_CPU"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "POST /assign (after the rounds)" "$ASSIGN_RPS" "$ASSIGN_P99" "$ASSIGN_BAD" \
  "$(python3 -c "print(f'{$ASSIGN_RPS/$LIVE_RPS:.2f}')")" "$ASSIGN_CPU"
printf '%-34s %12.0f %10s %10s %12s %12s us\n' "GET /files/{name} (4 KiB, checked)" "$FILES_RPS" "$FILES_P99" "$FILES_BAD" \
  "$(python3 -c "print(f'{$FILES_RPS/$LIVE_RPS:.2f}')")" "$FILES_CPU"
echo "storage requests made by the server in all: $STORAGE; checksum mismatches: $MISMATCHES"
echo "targets: /assign >= 30000/s, /files >= 10000/s, p99 < 5 ms"
