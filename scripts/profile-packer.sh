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
export DES_LOG_LEVEL=warning PGOPTIONS="-c client_min_messages=warning"
schema="des_profile"
bench_bodies "$WORK/bodies" "$N"
bench_pg_catalog "$schema" "$N" "$WORK" "claim_mode: $MODE, "
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
