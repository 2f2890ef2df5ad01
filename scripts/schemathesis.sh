#!/usr/bin/env bash
# The HTTP contract, checked against a live server: schemathesis (PyPI) generates requests from
# the OpenAPI document (docs/openapi.json, also served at /openapi.json) — valid and invalid
# names, paths, ranges, conditions, /assign bodies — and sends them to a `des serve` over sample
# data (a SQLite catalog and a filesystem source: files by name and by path, a deleted one, one
# of 2 MiB that streams). It fails on any 5xx and on any answer outside the contract: a status,
# a content type, a header or a body the document does not describe. Bounded: a fixed seed, at
# most MAX_EXAMPLES cases per operation and phase, the whole run under TIME_LIMIT seconds.
#
#   scripts/schemathesis.sh
#
# Environment:
#   DES_BIN        the des binary (default: $(swift build --show-bin-path)/des; never built here)
#   SCHEMA_URL     test the document the server serves instead of docs/openapi.json: `served`
#                  (http://127.0.0.1:PORT/openapi.json) or a URL, where `{port}` is the server's
#                  port. It must be byte-identical to docs/openapi.json.
#   MAX_EXAMPLES   cases per operation and phase (default 50)
#   SEED           the generation seed (default 24)
#   TIME_LIMIT     seconds schemathesis may take (default 100; the whole script takes ~20 s)
#   SCHEMATHESIS_ARGS  more arguments for `schemathesis run` (e.g. --exclude-path /openapi.json)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
SCHEMATHESIS_VERSION=4.32.5
TOKEN=schemathesis-token-0123456789
MAX_EXAMPLES="${MAX_EXAMPLES:-50}"
SEED="${SEED:-24}"
TIME_LIMIT="${TIME_LIMIT:-100}"

installed="$(python3 -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null || true)"
if [ "$installed" != "$SCHEMATHESIS_VERSION" ]; then
  echo "==> installing schemathesis $SCHEMATHESIS_VERSION (pip)"
  python3 -m pip install -q "schemathesis==$SCHEMATHESIS_VERSION" 2>/dev/null \
    || python3 -m pip install -q --break-system-packages "schemathesis==$SCHEMATHESIS_VERSION"
fi
ST=(python3 -m schemathesis.cli)  # this python's, wherever pip put the `schemathesis` script

DES="${DES_BIN:-$(swift build --show-bin-path)/des}"
[ -x "$DES" ] || { echo "schemathesis.sh: no des binary at $DES (build first, or set DES_BIN)" >&2; exit 1; }
DES="$(cd "$(dirname "$DES")" && pwd)/$(basename "$DES")"  # the server runs in a directory of its own

WORK="$(mktemp -d -t des-schemathesis.XXXXXX)"
SERVER=""
stop() {
  if [ -n "$SERVER" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap stop EXIT
cd "$WORK"

echo "==> sample data in $WORK"
mkdir -p tree/sub "tree/ünï cøde" tree2
echo hello > tree/a.txt
echo one > tree/dup.txt  # beneath both roots: 409 unless root= says which
echo two > tree2/dup.txt
echo world > tree/sub/b.txt
echo gone > tree/gone.txt
echo unicode > "tree/ünï cøde/é x.txt"
head -c $((2 << 20)) /dev/zero | tr '\0' 'x' > tree/big.bin  # over server.verify_max_bytes: streamed
cat > des.yaml <<EOF
sources:
  - name: catalog
    connection: {type: sqlite, database: ./des-data/catalog.sqlite}
    table: {name: files, columns: {s3_key: body_path}}
    bodies: {type: local, root: ./des-data/bodies}
  - name: tree
    connection: {type: filesystem, roots: [./tree, ./tree2], min_age: 0}
storage: {type: local, root: ./des-data/archive}
metadata: {connection: {type: sqlite, database: ./des-data/metadata.sqlite}}
server: {auth_tokens: [$TOKEN]}
EOF
export DES_LOG_LEVEL=error
"$DES" sample -c des.yaml --files 20 >/dev/null
"$DES" scan -c des.yaml --until-idle >/dev/null
"$DES" marker run -c des.yaml --until-idle >/dev/null
"$DES" packer run -c des.yaml --until-idle >/dev/null

"$DES" serve -c des.yaml --port 0 --log-level warning > serve.out 2> serve.log &
SERVER=$!
for _ in $(seq 300); do grep -q listening serve.out 2>/dev/null && break; kill -0 "$SERVER" 2>/dev/null || break; sleep 0.1; done
PORT="$(grep -o '[0-9]*$' serve.out | head -1 || true)"
if [ -z "$PORT" ]; then
  echo "schemathesis.sh: des serve did not start" >&2
  cat serve.out serve.log >&2
  exit 1
fi
BASE="http://127.0.0.1:$PORT"
for _ in $(seq 100); do curl -sf "$BASE/health/live" >/dev/null && break; sleep 0.1; done
curl -sf "$BASE/health/live" >/dev/null || { echo "schemathesis.sh: $BASE/health/live does not answer" >&2; exit 1; }
echo "==> des serve on $BASE"

# Real names and tags, so that the examples reach 200, 206, 304 and 410 and not only 400 and 404.
AUTH=(-H "Authorization: Bearer $TOKEN")
resolved() { curl -sf -o /dev/null -D - "${AUTH[@]}" "$BASE/files/by-path/$1" | tr -d '\r' | awk -v h="$2" 'tolower($1) == tolower(h) ":" {print $2}'; }
NAME_READ="$(resolved a.txt X-DES-Name)"
ETAG_READ="$(resolved a.txt ETag)"
NAME_BIG="$(resolved big.bin X-DES-Name)"
NAME_DELETE="$(resolved sub/b.txt X-DES-Name)"
NAME_GONE="$(resolved gone.txt X-DES-Name)"
for v in NAME_READ ETAG_READ NAME_BIG NAME_DELETE NAME_GONE; do
  [ -n "${!v}" ] || { echo "schemathesis.sh: the sample data did not pack ($v is empty)" >&2; cat serve.log >&2; exit 1; }
done
curl -sf -o /dev/null "${AUTH[@]}" -X DELETE "$BASE/files/$NAME_GONE?reason=schemathesis"

if [ -n "${SCHEMA_URL:-}" ]; then
  url="$SCHEMA_URL"
  [ "$url" = served ] && url="$BASE/openapi.json"
  url="${url//\{port\}/$PORT}"
  echo "==> the served document: $url"
  curl -sf -o served.json "$url" || { echo "schemathesis.sh: cannot fetch $url" >&2; exit 1; }
  cmp served.json "$ROOT/docs/openapi.json" || { echo "schemathesis.sh: $url is not docs/openapi.json" >&2; exit 1; }
  SOURCE=served.json
else
  SOURCE="$ROOT/docs/openapi.json"
fi

# A copy with this run's names, tags and paths as parameter examples, and the names and paths
# also as an `anyOf` branch of their schemas: the same values are valid (every one of them
# matches the document's own schema, kept as the other branch), but generation draws real files
# half the time, so ranges and conditions meet files that exist, not only 400 and 404.
python3 - "$SOURCE" schema.json "$NAME_READ" "$ETAG_READ" "$NAME_BIG" "$NAME_DELETE" "$NAME_GONE" <<'PY'
import copy, json, sys
source, out, name_read, etag, name_big, name_delete, name_gone = sys.argv[1:]
doc = json.load(open(source, encoding="utf-8"))
params = doc["components"]["parameters"]

def with_examples(op, key, values, bias=False):
    """Replace the operation's reference to components/parameters/KEY by a copy with examples."""
    for i, p in enumerate(op["parameters"]):
        if p.get("$ref") == f"#/components/parameters/{key}":
            inline = copy.deepcopy(params[key])
            inline["examples"] = {f"e{j}": {"value": v} for j, v in enumerate(values)}
            if bias:
                inline["schema"] = {"anyOf": [{"enum": values}, inline["schema"]]}
            op["parameters"][i] = inline
            return
    raise SystemExit(f"no {key} parameter in {op['operationId']}")

by_name = doc["paths"]["/files/{name}"]
by_path = doc["paths"]["/files/by-path/{path}"]
for op in (by_name["get"], by_name["head"]):
    with_examples(op, "Name", [name_read, name_big, name_gone], bias=True)
for op in (by_path["get"], by_path["head"]):
    with_examples(op, "Path", ["a.txt", "big.bin", "gone.txt", "ünï cøde/é x.txt", "sub/b.txt", "dup.txt"], bias=True)
    with_examples(op, "Version", [1])
    with_examples(op, "Root", ["./tree", "./tree2"])
    with_examples(op, "Source", ["tree"])
for op in (by_name["get"], by_name["head"], by_path["get"], by_path["head"]):
    with_examples(op, "If-None-Match", [etag, "W/" + etag, "*"])
    with_examples(op, "If-Range", [etag])
    # Past the end of every sample file (416), and last before first (400).
    with_examples(op, "Range", ["bytes=0-99", "bytes=100-", "bytes=-10", "bytes=99999999-", "bytes=9-1"])
with_examples(by_name["delete"], "Name", [name_delete], bias=True)
with_examples(by_name["delete"], "Reason", ["schemathesis"])
json.dump(doc, open(out, "w", encoding="utf-8"), indent=2, ensure_ascii=False)
PY

echo "==> schemathesis $SCHEMATHESIS_VERSION: at most $MAX_EXAMPLES cases per operation and phase, seed $SEED"
set +e
# shellcheck disable=SC2086
timeout --kill-after=10 "$TIME_LIMIT" "${ST[@]}" run schema.json \
  --url "$BASE" \
  --header "Authorization: Bearer $TOKEN" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --max-examples "$MAX_EXAMPLES" \
  --seed "$SEED" \
  --workers 1 \
  --request-timeout 10 \
  --generation-database none \
  --no-color \
  ${SCHEMATHESIS_ARGS:-} 2>&1 | tee schemathesis.out
status=${PIPESTATUS[0]}
set -e
# One closing line of counts: "N generated, N passed", or "N generated, F found F unique failures".
counts="$(grep -Eo '[0-9]+ generated, [0-9]+ (passed|found)' schemathesis.out | tail -n 1 || true)"
if [ -n "$counts" ]; then
  read -r generated _ n verdict <<<"${counts//,/}"
  if [ "$verdict" = passed ]; then echo "schemathesis: $n passed, 0 failed"; else echo "schemathesis: $((generated - n)) passed, $n failed"; fi
fi
if [ "$status" = 124 ] || [ "$status" = 137 ]; then
  echo "schemathesis.sh: schemathesis did not finish within $TIME_LIMIT s" >&2
fi
if [ "$status" != 0 ]; then
  echo "==> des serve's log (warnings and errors)" >&2
  tail -n 60 serve.log >&2
  echo "schemathesis.sh: FAILED (exit $status)" >&2
  exit 1
fi
echo "schemathesis.sh: the server kept to docs/openapi.json"
