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
