#!/usr/bin/env bash
# Benchmark (not a test): des pack vs GNU tar on the same 100,000 files of
# 0.5–4 KiB, warm random gets, and des verify throughput, all measured in
# this run on this machine. Prints a table of figures and ratios.
#
#   scripts/bench-pack.sh [FILES]        (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-100000}"
RUNS="${BENCH_RUNS:-3}"

echo "==> building des and des-bench (release)"
swift build -c release --product des 2>&1 | grep -E 'error|warning: unre' || true
swift build -c release --product des-bench 2>&1 | grep -E 'error' || true
BIN="$(swift build -c release --show-bin-path)"
DES="$BIN/des"; BENCH="$BIN/des-bench"

WORK="$(mktemp -d -t des-bench.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
echo "==> generating $N files of 0.5–4 KiB in $WORK/tree"
python3 scripts/gen_tree.py "$WORK/tree" "$N" --min 512 --max 4096 --per-dir 1000
BYTES=$(du -sb --apparent-size "$WORK/tree" | cut -f1)

now() { date +%s.%N; }
best() { sort -g | head -1; }   # fastest of the runs

# Warm the page cache so both tools read the same cached files.
tar cf "$WORK/warm.tar" -C "$WORK" tree; rm -f "$WORK/warm.tar"

echo "==> timing tar cf and des pack, best of $RUNS runs each (interleaved)"
tar_times=(); des_times=()
for r in $(seq "$RUNS"); do
  t0=$(now); tar cf "$WORK/tree.tar" -C "$WORK" tree; t1=$(now)
  tar_times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')"); rm -f "$WORK/tree.tar"
  t0=$(now); "$DES" pack "$WORK/tree" -o "$WORK/tree.des" --force >/dev/null; t1=$(now)
  des_times+=("$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')")
done
TAR_S=$(printf '%s\n' "${tar_times[@]}" | best)
DES_S=$(printf '%s\n' "${des_times[@]}" | best)

echo "==> des verify"
t0=$(now); "$DES" verify "$WORK/tree.des" >/dev/null; t1=$(now)
VERIFY_S=$(awk -v a="$t1" -v b="$t0" 'BEGIN{print a-b}')

echo "==> warm random gets (one thread, best of three windows in 3 s; mapped, then positional)"
GETS_OUT="$("$BENCH" gets "$WORK/tree.des" --seconds 3)"
GETS=$(awk '/^gets_per_sec / {print $2}' <<<"$GETS_OUT")
GETS_POS=$(awk '/^gets_per_sec_positional / {print $2}' <<<"$GETS_OUT")
BATCH_FILES=$(awk '/^batch_files/ {print $2}' <<<"$GETS_OUT")
BATCH_READS=$(awk '/^batch_reads/ {print $2}' <<<"$GETS_OUT")

awk -v n="$N" -v bytes="$BYTES" -v tar_s="$TAR_S" -v des_s="$DES_S" -v ver_s="$VERIFY_S" \
    -v gets="$GETS" -v gpos="$GETS_POS" -v bf="$BATCH_FILES" -v br="$BATCH_READS" 'BEGIN {
  tar_fps = n / tar_s; des_fps = n / des_s
  printf "\n%-38s %14s %12s\n", "measure", "value", "vs target"
  printf "%-38s %14s %12s\n", "--------------------------------------", "--------------", "------------"
  printf "%-38s %14.0f %12s\n", "tar cf files/s (baseline)", tar_fps, ""
  printf "%-38s %14.0f %11.2fx\n", "des pack files/s (with SHA-256)", des_fps, des_fps / tar_fps
  printf "%-38s %14.1f %12s\n", "des pack MB/s", bytes / des_s / 1e6, ""
  printf "%-38s %14.0f %11.2fx\n", "warm random gets/s (1 thread, mapped)", gets, gets / 500000
  printf "%-38s %14.0f %11.2fx\n", "warm gets/s (positional, the default)", gpos, gpos / 500000
  printf "%-38s %14.1f %12s\n", "des verify MB/s", bytes / ver_s / 1e6, ""
  printf "%-38s %14s %12s\n", "batch of 1000 random names: reads", br " for " bf, ""
  printf "\nratios: pack/tar = %.2f (target >= 1.00); gets/500k = %.2f mapped, %.2f positional (target >= 1.00)\n", des_fps / tar_fps, gets / 500000, gpos / 500000
}'
