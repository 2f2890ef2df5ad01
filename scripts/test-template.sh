#!/usr/bin/env bash
# The custom-source template, end to end, as a user would take it: `des new-source` renders it
# into a temporary folder, it builds against this checkout with no libpq in sight (pkg-config
# finds nothing: only SQLite's C library may be needed), its own tests run DES's conformance kit
# on its source, and its binary — the stock packer plus that source — names and packs the
# example catalog, every file reading back by name with its bytes. Any failure fails the script.
#
#   scripts/test-template.sh [DES_BINARY]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
DES="${1:-$(swift build --show-bin-path)/des}"
WORK="$(mktemp -d -t des-template.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
NAME=TemplateCheck

echo "==> des new-source $NAME"
"$DES" new-source "$NAME" -o "$WORK/$NAME" --des-path "$ROOT"
if grep -rIl '__NAME__\|__TYPE__\|__DES_PATH__\|__DES_PACKAGE__' "$WORK/$NAME" --exclude-dir=.build; then
  echo "template placeholders left unreplaced" >&2; exit 1
fi
cd "$WORK/$NAME"
# No libpq: pkg-config finds nothing, and libpq's headers are not on the default include path.
export PKG_CONFIG_LIBDIR=/nonexistent PKG_CONFIG_PATH=
echo "==> swift build (SQLite only)"
swift build 2>&1 | grep -E 'error|warning: |Compiling|Build complete' | grep -v '^\[' || true
BIN="$(swift build --show-bin-path)/$NAME"
test -x "$BIN" || { echo "the template did not build" >&2; exit 1; }
echo "==> swift test (the conformance kit on the template's source)"
swift test 2>&1 | grep -E 'error|✘|Test run with' ; test "${PIPESTATUS[0]}" = 0
echo "==> marker and packer on the example"
"$BIN" config check example/des.yaml >/dev/null
"$BIN" marker run -c example/des.yaml --until-idle --log-level error
"$BIN" packer run -c example/des.yaml --until-idle --log-level error
"$BIN" check -c example/des.yaml --log-level error >/dev/null
echo "==> every file reads back by name"
python3 - "$BIN" <<'PY'
import json, subprocess, sys
binary = sys.argv[1]
paths = {}
for line in open("example/catalog.jsonl"):
    if line.strip():
        row = json.loads(line)
        paths[str(row["id"])] = row["path"]
names = {}
for line in open("example/catalog.jsonl.des-journal"):
    change = json.loads(line)
    if change["op"] == "name":
        names.update(zip(change["ids"], change["names"]))
assert set(names) == set(paths), f"named {sorted(names)} of {sorted(paths)}"
for rid, name in sorted(names.items()):
    got = subprocess.run([binary, "get", name, "-c", "example/des.yaml", "--log-level", "error"], capture_output=True, check=True).stdout
    want = open("example/bodies/" + paths[rid], "rb").read()
    assert got == want, f"{name}: {got!r} != {want!r}"
print(f"{len(names)} files packed by the template's binary read back byte for byte")
PY
