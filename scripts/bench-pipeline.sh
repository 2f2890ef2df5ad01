#!/usr/bin/env bash
# Benchmark (not a test): marker rows/s and packer files/s on the embedded
# default (SQLite catalog, bodies and containers on local disk), 4 KiB bodies.
#   scripts/bench-pipeline.sh [FILES]      (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-20000}"
. scripts/bench-lib.sh
bench_build des
WORK="$(mktemp -d -t des-bench-pipeline.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
sed -e 's/max_container_files: 2000/max_container_files: 100000/' configs/local.yaml > "$WORK/local.yaml"
export DES_LOG_LEVEL=warning
echo "==> $N sample files of 4 KiB"
"$DES" sample -c "$WORK/local.yaml" --files "$N" --size 4096 >/dev/null
MARK="$("$DES" marker run -c "$WORK/local.yaml" --until-idle)"
PACK="$("$DES" packer run -c "$WORK/local.yaml" --until-idle)"
"$DES" check -c "$WORK/local.yaml" >/dev/null
echo "$MARK"; echo "$PACK"
printf '\n%-40s %12s\n' "measure (embedded default, 4 KiB)" "value"
printf '%-40s %12s\n' "marker rows/s" "$(grep -o '[0-9]* rows/s' <<<"$MARK" | cut -d' ' -f1)"
printf '%-40s %12s\n' "packer files/s (end to end, verified)" "$(grep -o '[0-9]* files/s' <<<"$PACK" | cut -d' ' -f1)"
