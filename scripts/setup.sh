#!/usr/bin/env bash
# Installs what DES needs on a fresh Debian machine: the C libraries the
# package links (OpenSSL's libcrypto, SQLite, libpq, MariaDB Connector/C, unixODBC, FreeTDS
# db-lib), pkg-config, the tools the demo, tests and benchmarks use (curl, openssl), and sqlglot (PyPI), which the
# tests use to parse the SQL Server and Oracle statements. Safe to run again: it installs only
# what is missing.
set -euo pipefail

PACKAGES=(libssl-dev libsqlite3-dev libpq-dev libmariadb-dev unixodbc-dev freetds-dev libcurl4-openssl-dev libhiredis-dev pkg-config tar python3 python3-pip diffutils curl openssl)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! python3 -c "import sqlglot" >/dev/null 2>&1; then
  echo "setup: installing sqlglot (pip)"
  python3 -m pip install -q sqlglot 2>/dev/null || python3 -m pip install -q --break-system-packages sqlglot
fi

if ! command -v swift >/dev/null 2>&1; then
  echo "setup: no Swift toolchain on PATH (expected one at /opt/swift/usr/bin)" >&2
  exit 1
fi
