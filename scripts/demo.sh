#!/usr/bin/env bash
# The main job on the embedded default (SQLite catalog + local disk, no server):
# build des, create a catalog of sample files, run the marker and the packer to
# completion, read every file back by its DES name, and print a summary.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES="${DEMO_FILES:-5000}"

echo "==> building des (release)"
swift build -c release --product des 2>&1 | grep -E 'error|warning: ' || true
DES="$(swift build -c release --show-bin-path)/des"
[ -x "$DES" ] || { echo "demo: build failed" >&2; exit 1; }

WORK="$(mktemp -d -t des-demo.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cp configs/local.yaml "$WORK/local.yaml"
CFG="$WORK/local.yaml"
export DES_LOG_LEVEL=warning

echo "==> des config check"
"$DES" config check "$CFG" | head -3
echo "==> des sample: $FILES files of 0.5–4 KiB and their catalog rows (SQLite)"
"$DES" sample -c "$CFG" --files "$FILES"
echo "==> des marker run --until-idle"
"$DES" marker run -c "$CFG" --until-idle
echo "==> des packer run --until-idle"
PACK_OUT="$("$DES" packer run -c "$CFG" --until-idle)"
echo "$PACK_OUT"
echo "==> des status"
"$DES" status -c "$CFG"
echo "==> des check: every packed file read back by its DES name and compared with its body"
"$DES" check -c "$CFG"
NAME="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select des_name from files order by id limit 1').fetchone()[0])" "$WORK/des-data/catalog.sqlite")"
BODY="$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select body_path from files order by id limit 1').fetchone()[0])" "$WORK/des-data/catalog.sqlite")"
echo "==> des get '$NAME'"
"$DES" get "$NAME" -c "$CFG" | cmp - "$WORK/des-data/bodies/$BODY"
echo "    identical to its body"
CONTAINER="$(find "$WORK/des-data/archive" -name '*.des' | sort | head -1)"
echo "==> des verify $(basename "$CONTAINER")"
"$DES" verify "$CONTAINER"
echo
echo "demo OK: $FILES files named, packed into $(find "$WORK/des-data/archive" -name '*.des' | wc -l) containers and read back — $(grep -o '[0-9]* files/s' <<<"$PACK_OUT") packing"
