#!/usr/bin/env bash
# Benchmark (not a test) on the S3 test server (moto): one read of one file from containers of
# 10^3, 10^5 and 10^6 entries — the requests and index bytes it costs through the two-level index
# cold, with the root cached and with the leaf cached, beside a cold read through the flat index
# (the whole tail) of the same container in the same run. Goals at 10^6: cold at most 3 requests
# and 128 KiB of index bytes, 2 with the root cached, 1 with the leaf cached. Starts the test
# servers if they are not running.
#
#   scripts/bench-index.sh [SIZES]      (default 1000,100000,1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
SIZES="${1:-1000,100000,1000000}"
. scripts/bench-lib.sh
bench_build des-bench
bench_servers_up
trap bench_servers_down EXIT
export AWS_ENDPOINT_URL="$DES_TEST_S3_ENDPOINT" AWS_REGION="$DES_TEST_S3_REGION"
export AWS_ACCESS_KEY_ID="$DES_TEST_S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$DES_TEST_S3_SECRET_KEY"
"$BENCH" index-reads "$SIZES"
