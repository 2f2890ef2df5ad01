#!/usr/bin/env bash
# Coverage-guided fuzzing of the archive reader and the config loader with libFuzzer
# (the Swift toolchain ships it). Seeds: the golden vectors and shipped configs,
# written by `des-fuzz --write-seeds`. Each target runs SECONDS (default 600) with
# a 100 MB memory limit; a crash, hang or leak leaves its input in fuzz-crashes/.
#
#   scripts/libfuzzer.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-600}"
SCRATCH=.build-fuzz
FLAGS=(-c release --scratch-path "$SCRATCH" -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -D -Xswiftc DES_LIBFUZZER)
echo "==> building des-libfuzzer (libFuzzer instrumentation, in $SCRATCH)"
swift build "${FLAGS[@]}" --product des-libfuzzer 2>&1 | grep -E "error|Compiling|Build" | tail -3
BIN="$(swift build "${FLAGS[@]}" --show-bin-path)/des-libfuzzer"
swift build -c release --product des-fuzz >/dev/null
SEEDER="$(swift build -c release --show-bin-path)/des-fuzz"
mkdir -p fuzz-crashes
for target in archive config; do
  corpus="$SCRATCH/corpus-$target"
  mkdir -p "$corpus"
  "$SEEDER" "$target" --write-seeds "$corpus" --configs configs
  echo "==> libFuzzer on the $target target for ${SECONDS_EACH}s ($(ls "$corpus" | wc -l) seeds)"
  set +e
  DES_FUZZ_TARGET="$target" "$BIN" "$corpus" -max_total_time="$SECONDS_EACH" -rss_limit_mb=100 -timeout=10 \
    -artifact_prefix="fuzz-crashes/$target-" -print_final_stats=1 > "$SCRATCH/libfuzzer-$target.log" 2>&1
  status=$?
  set -e
  grep -E "stat::|ERROR|SUMMARY|^Done" "$SCRATCH/libfuzzer-$target.log" | tail -10
  echo "corpus size after: $(ls "$corpus" | wc -l) inputs"
  if [ "$status" -ne 0 ]; then
    echo "libfuzzer: the $target target failed (exit $status); see $SCRATCH/libfuzzer-$target.log and fuzz-crashes/" >&2
    exit 1
  fi
done
