#!/usr/bin/env bash
# A local PostgreSQL 15 cluster under var/pg for `make run` and `make test`.
# As root it runs as the `postgres` user (PostgreSQL refuses root).
#   scripts/pg.sh start    init (first time) and start; writes var/env
#   scripts/pg.sh stop     fast shutdown
#   scripts/pg.sh status   exit 0 when running
# Settings: NCC_PG_PORT (default 5433), NCC_PG_BIN (default /usr/lib/postgresql/15/bin).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
var=$top/var
data=$var/pg/data
port=${NCC_PG_PORT:-5433}
bin=${NCC_PG_BIN:-/usr/lib/postgresql/15/bin}

as_pg() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

init() {
    mkdir -p "$var/pg" "$var/log"
    chmod 755 "$var" "$var/pg"
    if [ "$(id -u)" = 0 ]; then
        chown postgres:postgres "$var/pg"
        if ! runuser -u postgres -- test -x "$var/pg"; then
            echo "pg.sh: the postgres user cannot reach $var/pg; make the folders above it readable (chmod o+x)" >&2
            exit 1
        fi
    fi
    umask 077
    local pw
    pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
    printf '%s\n' "$pw" > "$var/pg/superuser.pw"
    [ "$(id -u)" = 0 ] && chown postgres "$var/pg/superuser.pw"
    as_pg "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
        --pwfile="$var/pg/superuser.pw" -E UTF8 --locale=C.UTF-8 >"$var/pg/initdb.log" 2>&1 ||
        { cat "$var/pg/initdb.log" >&2; exit 1; }
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$var/pg'
max_connections = 200
shared_buffers = 128MB
fsync = on
timezone = 'Asia/Tokyo'
log_timezone = 'Asia/Tokyo'
CONF
}

start() {
    [ -f "$data/PG_VERSION" ] || init
    if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$data" -l "$var/pg/server.log" -w -t 60 start >/dev/null ||
            { tail -20 "$var/pg/server.log" >&2; exit 1; }
    fi
    # The application role and database (idempotent). The password lives in var/ only.
    if [ ! -f "$var/pg/ncc.pw" ]; then
        (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32 > "$var/pg/ncc.pw")
    fi
    local pw
    pw=$(cat "$var/pg/ncc.pw")
    as_pg "$bin/psql" -h "$var/pg" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL >/dev/null
SELECT 'CREATE ROLE ncc LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ncc') \gexec
ALTER ROLE ncc PASSWORD '$pw';
SELECT 'CREATE DATABASE ncc OWNER ncc' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ncc') \gexec
SQL
    (umask 077; printf 'NCC_DATABASE_URL=postgresql://ncc:%s@127.0.0.1:%s/ncc\nexport NCC_DATABASE_URL\n' "$pw" "$port" > "$var/env")
}

stop() {
    if [ -f "$data/PG_VERSION" ]; then
        as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1 ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
