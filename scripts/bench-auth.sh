#!/usr/bin/env bash
# Benchmark (not a test): what bearer auth costs GET /files/{name} (4 KiB files, warm index
# cache, bodies checked) under wrk on loopback. One des serve with a static token and
# server.jwt (an RSA and an EC P-256 key made here by openssl); the same route with the static
# token (the baseline), an RS256 JWT and an ES256 JWT, each as a ratio to the baseline in the
# same run, with the server's CPU per request. A JWT's signature is verified once; the server
# then remembers the token (checking only its times) until a reload. A 2 s run first warms up.
#   scripts/bench-auth.sh [SECONDS] [CONNECTIONS]     (default 10 s, 64 connections)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${1:-10}"
CONNS="${2:-64}"
FILES=2000
. scripts/bench-lib.sh
bench_http_setup auth
STATIC="bench-static-token-0123456789"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$WORK/ec.key" 2>/dev/null
openssl pkey -in "$WORK/rsa.key" -pubout -out "$WORK/rsa.pub"
openssl pkey -in "$WORK/ec.key" -pubout -out "$WORK/ec.pub"
cp configs/local.yaml "$WORK/local.yaml"
cat >> "$WORK/local.yaml" <<YAML
server:
  auth_tokens: [$STATIC]
  jwt: {public_keys: [rsa.pub, ec.pub], audience: des-bench}
YAML
# A token signed by openssl: token ALG KEY
token() {
  python3 - "$1" "$2" <<'PY'
import base64, json, subprocess, sys, time
alg, key = sys.argv[1], sys.argv[2]
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now = int(time.time())
claims = {"sub": "bench", "aud": "des-bench", "exp": now + 3600, "nbf": now - 60, "scope": "openid des:read"}
signing = b64(json.dumps({"alg": alg, "typ": "JWT"}).encode()) + "." + b64(json.dumps(claims).encode())
sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key, "-binary"], input=signing.encode(), capture_output=True, check=True).stdout
if alg == "ES256":  # DER (SEQUENCE of two INTEGERs) to JWS's r || s
    i = 2 + ((sig[1] & 0x7f) if sig[1] & 0x80 else 0)
    parts = []
    for _ in range(2):
        n = sig[i + 1]; parts.append(sig[i + 2:i + 2 + n].lstrip(b"\0").rjust(32, b"\0")); i += 2 + n
    sig = parts[0] + parts[1]
print(signing + "." + b64(sig))
PY
}
RS256="$(token RS256 "$WORK/rsa.key")"
ES256="$(token ES256 "$WORK/ec.key")"

bench_packed_sample "$WORK/local.yaml" "$WORK" "$FILES"

bench_serve "$WORK/local.yaml" "$WORK"
echo "==> des serve on $BASE; warming the index cache (every name once)"
sed -e 's/(/%28/; s/)/%29/' -e "s|.*|url = \"$BASE/files/&\"\noutput = \"/dev/null\"\nheader = \"Authorization: Bearer $STATIC\"|" "$WORK/names" > "$WORK/curl.cfg"
curl -s -K "$WORK/curl.cfg"
for t in "$STATIC" "$RS256" "$ES256"; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" "$BASE/files/$(head -1 "$WORK/names")")"
  [ "$code" = 200 ] || { echo "bench-auth: a token was refused ($code)" >&2; exit 1; }
done

echo "==> wrk: 1 thread, $CONNS connections, ${SECS} s per token (after a 2 s warm-up)"
wrk -t1 -c"$CONNS" -d2s -H "Authorization: Bearer $STATIC" -s scripts/wrk/files.lua "$BASE" >/dev/null 2>&1
read -r S_RPS S_P99 S_BAD S_CPU <<<"$(bench_wrk -H "Authorization: Bearer $STATIC" -s scripts/wrk/files.lua "$BASE")"
read -r R_RPS R_P99 R_BAD R_CPU <<<"$(bench_wrk -H "Authorization: Bearer $RS256" -s scripts/wrk/files.lua "$BASE")"
read -r E_RPS E_P99 E_BAD E_CPU <<<"$(bench_wrk -H "Authorization: Bearer $ES256" -s scripts/wrk/files.lua "$BASE")"
printf '\n%-40s %12s %10s %10s %14s %14s\n' "GET /files/{name} with (loopback, wrk)" "requests/s" "p99 ms" "non-2xx" "vs static" "server CPU/req"
printf '%-40s %12.0f %10s %10s %14s %11s us\n' "a static token (baseline)" "$S_RPS" "$S_P99" "$S_BAD" "1.00" "$S_CPU"
printf '%-40s %12.0f %10s %10s %14s %11s us\n' "an RS256 JWT (verified, remembered)" "$R_RPS" "$R_P99" "$R_BAD" "$(python3 -c "print(f'{$R_RPS/$S_RPS:.2f}')")" "$R_CPU"
printf '%-40s %12.0f %10s %10s %14s %11s us\n' "an ES256 JWT (verified, remembered)" "$E_RPS" "$E_P99" "$E_BAD" "$(python3 -c "print(f'{$E_RPS/$S_RPS:.2f}')")" "$E_CPU"
