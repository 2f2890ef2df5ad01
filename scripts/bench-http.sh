#!/usr/bin/env bash
# Benchmark (not a test): the HTTP service under wrk on loopback. Requests/s and p99
# latency of POST /assign and of GET /files/{name} (4 KiB files on local disk, warm
# index cache, every body checked against its META sha256 before it is sent), each
# beside GET /health/live on the same server in the same run (the framework's floor:
# what a route that does nothing gets on this machine). /files twice: with the body cache
# off (server.body_cache_bytes: 0: every request reads and hashes its body) and at its default.
# The floor and /files are measured in alternating rounds; the table shows the median round.
#   scripts/bench-http.sh [SECONDS] [CONNECTIONS] [ROUNDS]     (default 6 s, 64 connections, 5 rounds)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-6}"
CONNS="${2:-64}"
ROUNDS="${3:-5}"
FILES=5000
. scripts/bench-lib.sh
bench_http_setup http
cp configs/local.yaml "$WORK/local.yaml"
bench_packed_sample "$WORK/local.yaml" "$WORK" "$FILES"

# serve_warm CONFIG : des serve on CONFIG, every name read once (index and body caches warm).
serve_warm() {
  bench_serve "$1" "$WORK"
  echo "==> des serve on $BASE ($(basename "$1")); warming the caches (every name once)"
  sed -e 's/(/%28/; s/)/%29/' -e "s|.*|url = \"$BASE/files/&\"\noutput = \"/dev/null\"|" "$WORK/names" > "$WORK/curl.cfg"
  curl -s -K "$WORK/curl.cfg"
}

# rounds : ROUNDS rounds of /health/live then /files; sets LIVE_* and FILES_* to the median round's.
# The floor and /files alternate, round by round: this machine's speed drifts by a quarter
# within a minute, so a ratio is taken only between neighbours, and the median round is shown.
rounds() {
  local lines=() round L_RPS L_P99 L_CPU F_RPS F_P99 F_BAD F_CPU
  for round in $(seq "$ROUNDS"); do
    read -r L_RPS L_P99 _ L_CPU <<<"$(bench_wrk "$BASE/health/live")"
    read -r F_RPS F_P99 F_BAD F_CPU <<<"$(bench_wrk -s scripts/wrk/files.lua "$BASE")"
    lines+=("$(python3 -c "print(f'{$F_RPS/$L_RPS:.4f}')") $L_RPS $L_P99 $L_CPU $F_RPS $F_P99 $F_BAD $F_CPU")
    echo "    round $round: /health/live $L_RPS/s, /files $F_RPS/s: $(python3 -c "print(f'{$F_RPS/$L_RPS:.2f}')")"
  done
  read -r _ LIVE_RPS LIVE_P99 LIVE_CPU FILES_RPS FILES_P99 FILES_BAD FILES_CPU <<<"$(printf '%s\n' "${lines[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")"
}

row() { printf '%-44s %12.0f %10s %10s %12s %12s us\n' "$1" "$2" "$3" "$4" "$(python3 -c "print(f'{$2/$5:.2f}')")" "$6"; }

# Without the body cache first: every /files request reads its body (page cache) and hashes it.
sed 's/^server:/server:\n  body_cache_bytes: 0/' "$WORK/local.yaml" > "$WORK/uncached.yaml"
grep -q "body_cache_bytes: 0" "$WORK/uncached.yaml" || printf 'server:\n  body_cache_bytes: 0\n' >> "$WORK/uncached.yaml"
serve_warm "$WORK/uncached.yaml"
echo "==> body_cache_bytes: 0 (every body read and hashed); wrk: 1 thread, $CONNS connections, ${SECS} s per route and round"
rounds
read -r U_LIVE_RPS U_FILES_RPS U_FILES_P99 U_FILES_BAD U_FILES_CPU <<<"$LIVE_RPS $FILES_RPS $FILES_P99 $FILES_BAD $FILES_CPU"
U_STORAGE="$(curl -s "$BASE/metrics" | awk '/^des_storage_requests_total/ {s+=$2} END {print s+0}')"
kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""

serve_warm "$WORK/local.yaml"
echo "==> the default body cache (64 MiB: the 5,000 bodies fit); same rounds"
rounds
read -r ASSIGN_RPS ASSIGN_P99 ASSIGN_BAD ASSIGN_CPU <<<"$(bench_wrk -s scripts/wrk/assign.lua "$BASE/assign")"
METRICS="$(curl -s "$BASE/metrics")"
STORAGE="$(awk '/^des_storage_requests_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"
MISMATCHES="$(awk '/^des_read_checksum_failures_total/ {s+=$2} END {print s+0}' <<<"$METRICS")"

printf '\n%-44s %12s %10s %10s %12s %14s\n' "route (loopback, wrk; median round)" "requests/s" "p99 ms" "non-2xx" "vs /health/live" "server CPU/req"
printf '%-44s %12.0f %10s %10s %12s %12s us\n' "GET /health/live (floor)" "$LIVE_RPS" "$LIVE_P99" "-" "1.00" "$LIVE_CPU"
row "POST /assign (after the rounds)" "$ASSIGN_RPS" "$ASSIGN_P99" "$ASSIGN_BAD" "$LIVE_RPS" "$ASSIGN_CPU"
row "GET /files/{name} (4 KiB, body cache)" "$FILES_RPS" "$FILES_P99" "$FILES_BAD" "$LIVE_RPS" "$FILES_CPU"
row "GET /files/{name} (4 KiB, read and hashed)" "$U_FILES_RPS" "$U_FILES_P99" "$U_FILES_BAD" "$U_LIVE_RPS" "$U_FILES_CPU"
echo "storage requests: $STORAGE with the body cache (the warm-up, then a HEAD per container a second), $U_STORAGE without; checksum mismatches: $MISMATCHES"
echo "targets: /assign >= 30000/s, /files >= 10000/s, p99 < 5 ms; warm /files >= 0.8 of the floor"
