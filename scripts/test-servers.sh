#!/usr/bin/env bash
# Throw-away test servers on 127.0.0.1 for `make test`: installs what is missing,
# starts them under a temporary directory, prints their settings, and stops them.
#
#   scripts/test-servers.sh up      start (idempotent); writes $DES_TEST_SERVERS_DIR/env
#   scripts/test-servers.sh down    stop and remove everything it started
#   scripts/test-servers.sh env     print the settings (source it: . <(scripts/test-servers.sh env))
#
# PostgreSQL: initdb and postgres refuse root, so they run as the `postgres` service user.
# A server that fails to start fails this script (exit 1): tests never skip silently.
set -euo pipefail
DIR="${DES_TEST_SERVERS_DIR:-/tmp/des-test-servers}"
PG_PORT="${DES_TEST_PG_PORT:-54329}"
PGBIN=""

find_pgbin() {
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PGBIN="$d"; fi
  done
}

install_missing() {
  local missing=()
  for p in postgresql libpq-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test-servers: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  find_pgbin
  [ -n "$PGBIN" ] || { echo "test-servers: no initdb found after installing postgresql" >&2; exit 1; }
}

as_postgres() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_up() {
  local data="$DIR/pg/data"
  mkdir -p "$DIR/pg"
  [ "$(id -u)" -eq 0 ] && chown -R postgres:postgres "$DIR/pg"
  if [ ! -f "$data/PG_VERSION" ]; then
    as_postgres "$PGBIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$DIR/pg/initdb.log" 2>&1 \
      || { cat "$DIR/pg/initdb.log" >&2; exit 1; }
  fi
  if ! as_postgres "$PGBIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    rm -f "$data/postmaster.pid"  # left by a server that was killed: it is not running
    as_postgres "$PGBIN/pg_ctl" -D "$data" -l "$DIR/pg/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$DIR/pg -c fsync=off -c max_connections=200" start >/dev/null \
      || { cat "$DIR/pg/server.log" >&2; exit 1; }
  fi
  "$PGBIN/pg_isready" -h 127.0.0.1 -p "$PG_PORT" -t 30 >/dev/null || { echo "test-servers: PostgreSQL did not become ready" >&2; exit 1; }
  as_postgres "$PGBIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'des_test'" | grep -q 1 \
    || as_postgres "$PGBIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres des_test
}

write_env() {
  cat >"$DIR/env" <<ENV
export DES_TEST_POSTGRES="host=127.0.0.1 port=$PG_PORT dbname=des_test user=postgres connect_timeout=10"
export DES_TEST_PG_HOST=127.0.0.1 DES_TEST_PG_PORT=$PG_PORT DES_TEST_PG_DATABASE=des_test DES_TEST_PG_USER=postgres
ENV
}

case "${1:-}" in
  up)
    install_missing
    mkdir -p "$DIR"
    pg_up
    write_env
    echo "test-servers: PostgreSQL on 127.0.0.1:$PG_PORT (database des_test, user postgres); settings in $DIR/env"
    ;;
  down)
    find_pgbin
    if [ -n "$PGBIN" ] && [ -f "$DIR/pg/data/PG_VERSION" ]; then
      as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$DIR"
    echo "test-servers: stopped"
    ;;
  env)
    cat "$DIR/env"
    ;;
  *)
    echo "usage: scripts/test-servers.sh up|down|env" >&2
    exit 64
    ;;
esac
