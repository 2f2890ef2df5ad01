#!/usr/bin/env bash
# Throw-away test servers on 127.0.0.1 for `make test`: installs what is missing,
# starts them under a temporary directory, prints their settings, and stops them.
#
#   scripts/test-servers.sh up      start (idempotent); writes $DES_TEST_SERVERS_DIR/env
#   scripts/test-servers.sh down    stop and remove everything it started
#   scripts/test-servers.sh env     print the settings (source it: . <(scripts/test-servers.sh env))
#
# PostgreSQL: initdb and postgres refuse root, so they run as the `postgres` service user.
# Redis: redis-server on loopback, no persistence. S3: moto in server mode with signature checks on.
# MariaDB: mariadbd refuses root too, so it runs as `mysql`; a user `des` (password in the env
# file) gets the database des_test over TCP. The ODBC drivers for both (odbc-postgresql,
# odbc-mariadb) are installed for the ODBC plugin's tests, which name them by path.
# A server that fails to start fails this script (exit 1): tests never skip silently.
set -euo pipefail
DIR="${DES_TEST_SERVERS_DIR:-/tmp/des-test-servers}"
PG_PORT="${DES_TEST_PG_PORT:-54329}"
MY_PORT="${DES_TEST_MARIADB_PORT:-33069}"
MY_PASSWORD="des-test-pw"
REDIS_PORT="${DES_TEST_REDIS_PORT:-63799}"
S3_PORT="${DES_TEST_S3_PORT:-50009}"
PGBIN=""

find_pgbin() {
  for d in /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PGBIN="$d"; fi
  done
}

install_missing() {
  local missing=()
  for p in postgresql libpq-dev mariadb-server mariadb-client libmariadb-dev unixodbc unixodbc-dev odbc-postgresql odbc-mariadb freetds-dev redis-server libhiredis-dev libcurl4-openssl-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "test-servers: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  find_pgbin
  [ -n "$PGBIN" ] || { echo "test-servers: no initdb found after installing postgresql" >&2; exit 1; }
  if ! python3 -c "import moto, boto3" >/dev/null 2>&1; then
    echo "test-servers: installing moto[server] (pip)"
    python3 -m pip install -q "moto[server]" 2>/dev/null || python3 -m pip install -q --break-system-packages "moto[server]"
  fi
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

mariadb_up() {
  local data="$DIR/mariadb/data" sock="$DIR/mariadb/mariadb.sock"
  mkdir -p "$DIR/mariadb"
  [ "$(id -u)" -eq 0 ] && chown -R mysql:mysql "$DIR/mariadb"
  if [ ! -d "$data/mysql" ]; then
    mariadb-install-db --no-defaults --datadir="$data" --user=mysql --auth-root-authentication-method=socket \
      --skip-test-db >"$DIR/mariadb/install.log" 2>&1 || { cat "$DIR/mariadb/install.log" >&2; exit 1; }
  fi
  if ! mariadb --no-defaults --socket="$sock" -u root -e "SELECT 1" >/dev/null 2>&1; then
    local args=(--no-defaults --datadir="$data" --socket="$sock" --port="$MY_PORT" --bind-address=127.0.0.1
      --pid-file="$DIR/mariadb/mariadbd.pid" --log-error="$DIR/mariadb/server.log" --skip-name-resolve
      --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=256M --max-connections=300 --character-set-server=utf8mb4)
    if [ "$(id -u)" -eq 0 ]; then
      runuser -u mysql -- /usr/sbin/mariadbd "${args[@]}" >/dev/null 2>&1 &
    else
      /usr/sbin/mariadbd "${args[@]}" >/dev/null 2>&1 &
    fi
    for _ in $(seq 1 120); do
      mariadb --no-defaults --socket="$sock" -u root -e "SELECT 1" >/dev/null 2>&1 && break
      sleep 0.5
    done
    mariadb --no-defaults --socket="$sock" -u root -e "SELECT 1" >/dev/null 2>&1 \
      || { echo "test-servers: MariaDB did not start" >&2; cat "$DIR/mariadb/server.log" >&2 || true; exit 1; }
  fi
  mariadb --no-defaults --socket="$sock" -u root -e "
    CREATE DATABASE IF NOT EXISTS des_test CHARACTER SET utf8mb4 COLLATE utf8mb4_bin;
    CREATE USER IF NOT EXISTS 'des'@'127.0.0.1' IDENTIFIED BY '$MY_PASSWORD';
    CREATE USER IF NOT EXISTS 'des'@'localhost' IDENTIFIED BY '$MY_PASSWORD';
    GRANT ALL ON *.* TO 'des'@'127.0.0.1'; GRANT ALL ON *.* TO 'des'@'localhost';" \
    || { echo "test-servers: could not create the MariaDB test user" >&2; exit 1; }
}

redis_up() {
  mkdir -p "$DIR/redis"
  if ! redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$DIR/redis" --daemonize yes --pidfile "$DIR/redis/redis.pid" \
      --logfile "$DIR/redis/server.log" --save "" --appendonly no >/dev/null
    for _ in $(seq 1 60); do redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.25; done
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping >/dev/null 2>&1 || { echo "test-servers: Redis did not start" >&2; exit 1; }
  fi
}

# moto in server mode with signature checking on: the first four requests (creating a user, its
# policy and its access key through moto's IAM API) are let through; every one after is checked.
s3_up() {
  mkdir -p "$DIR/s3"
  if [ ! -f "$DIR/s3/credentials" ]; then
    INITIAL_NO_AUTH_ACTION_COUNT=4 nohup moto_server -H 127.0.0.1 -p "$S3_PORT" >"$DIR/s3/server.log" 2>&1 &
    echo $! >"$DIR/s3/moto.pid"
    for _ in $(seq 1 120); do
      python3 -c "import socket; socket.create_connection(('127.0.0.1', $S3_PORT), 1)" 2>/dev/null && break
      sleep 0.25
    done
    python3 - "$S3_PORT" >"$DIR/s3/credentials" <<'PY' || { echo "test-servers: could not set up moto's S3 user" >&2; cat "$DIR/s3/server.log" >&2; exit 1; }
import json, sys, boto3
endpoint = "http://127.0.0.1:%s" % sys.argv[1]
kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam = boto3.client("iam", **kw)
iam.create_user(UserName="des")
policy = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
arn = iam.create_policy(PolicyName="des-s3", PolicyDocument=policy)["Policy"]["Arn"]
iam.attach_user_policy(UserName="des", PolicyArn=arn)
key = iam.create_access_key(UserName="des")["AccessKey"]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
s3.create_bucket(Bucket="des-test")
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
  fi
  read -r S3_KEY S3_SECRET <"$DIR/s3/credentials"
}

odbc_drivers() {
  # The drivers' shared objects, by path (no odbcinst.ini needed): psqlodbcw.so and libmaodbc.so.
  PG_ODBC="$(find /usr/lib -name psqlodbcw.so 2>/dev/null | head -1)"
  MY_ODBC="$(find /usr/lib -name libmaodbc.so 2>/dev/null | head -1)"
  [ -n "$PG_ODBC" ] && [ -n "$MY_ODBC" ] || { echo "test-servers: ODBC drivers not found (odbc-postgresql, odbc-mariadb)" >&2; exit 1; }
}

write_env() {
  cat >"$DIR/env" <<ENV
export DES_TEST_POSTGRES="host=127.0.0.1 port=$PG_PORT dbname=des_test user=postgres connect_timeout=10"
export DES_TEST_PG_HOST=127.0.0.1 DES_TEST_PG_PORT=$PG_PORT DES_TEST_PG_DATABASE=des_test DES_TEST_PG_USER=postgres
export DES_TEST_MARIADB_HOST=127.0.0.1 DES_TEST_MARIADB_PORT=$MY_PORT DES_TEST_MARIADB_DATABASE=des_test
export DES_TEST_MARIADB_USER=des DES_TEST_MARIADB_PASSWORD=$MY_PASSWORD DES_TEST_MARIADB_SOCKET=$DIR/mariadb/mariadb.sock
export DES_TEST_ODBC_PG_DRIVER=$PG_ODBC DES_TEST_ODBC_MARIADB_DRIVER=$MY_ODBC
export DES_TEST_REDIS_URL=redis://127.0.0.1:$REDIS_PORT
export DES_TEST_S3_ENDPOINT=http://127.0.0.1:$S3_PORT DES_TEST_S3_BUCKET=des-test DES_TEST_S3_REGION=us-east-1
export DES_TEST_S3_ACCESS_KEY=$S3_KEY DES_TEST_S3_SECRET_KEY=$S3_SECRET
ENV
}

case "${1:-}" in
  up)
    install_missing
    mkdir -p "$DIR"
    pg_up
    mariadb_up
    redis_up
    s3_up
    odbc_drivers
    write_env
    echo "test-servers: PostgreSQL on 127.0.0.1:$PG_PORT (database des_test, user postgres)"
    echo "test-servers: MariaDB on 127.0.0.1:$MY_PORT (database des_test, user des); ODBC drivers $PG_ODBC, $MY_ODBC"
    echo "test-servers: Redis on 127.0.0.1:$REDIS_PORT; S3 (moto, signatures checked) on 127.0.0.1:$S3_PORT, bucket des-test"
    echo "test-servers: settings in $DIR/env"
    ;;
  down)
    find_pgbin
    if [ -n "$PGBIN" ] && [ -f "$DIR/pg/data/PG_VERSION" ]; then
      as_postgres "$PGBIN/pg_ctl" -D "$DIR/pg/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    if [ -f "$DIR/mariadb/mariadbd.pid" ]; then
      pid="$(cat "$DIR/mariadb/mariadbd.pid" 2>/dev/null || true)"
      if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -9 "$pid" 2>/dev/null || true
      fi
    fi
    if [ -f "$DIR/redis/redis.pid" ]; then kill "$(cat "$DIR/redis/redis.pid")" 2>/dev/null || true; fi
    if [ -f "$DIR/s3/moto.pid" ]; then kill "$(cat "$DIR/s3/moto.pid")" 2>/dev/null || true; fi
    pkill -f "moto_server -H 127.0.0.1 -p $S3_PORT" 2>/dev/null || true
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
