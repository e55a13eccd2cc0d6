#!/usr/bin/env bash
# A local PostgreSQL 15 cluster under var/pg for `make run` and `make test`.
# As root it runs as the `postgres` user (PostgreSQL refuses root).
#   scripts/pg.sh start        init (first time) and start; writes var/env
#   scripts/pg.sh stop         fast shutdown
#   scripts/pg.sh status       exit 0 when running
#   scripts/pg.sh owner-url NAME  the schema owner's URL for database NAME
#   scripts/pg.sh fresh NAME   (re)create an empty database NAME owned by ncc_owner and
#                              print its URL (the cluster must be started)
# Settings: NCC_PG_PORT (default 5433), NCC_PG_BIN (default /usr/lib/postgresql/15/bin),
# NCC_VAR (default <repo>/var: where the cluster, its logs and var/env live).
#
# When root and the `postgres` user cannot reach var/ (a checkout under /root,
# say), the cluster lives in /var/tmp/ncc-pg-<hash of the var path> instead and
# var/pg is a symbolic link to it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
var=${NCC_VAR:-$top/var}
port=${NCC_PG_PORT:-5433}
bin=${NCC_PG_BIN:-/usr/lib/postgresql/15/bin}

is_root() {
    [ "$(id -u)" = 0 ]
}

as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The folder holding the cluster: var/pg, or where its symbolic link points.
pgdir() {
    if [ -L "$var/pg" ]; then
        readlink -f "$var/pg"
    else
        printf '%s\n' "$var/pg"
    fi
}

# Makes var/pg (or its stand-in) exist, owned by postgres when root.
prepare_dir() {
    mkdir -p "$var/log"
    chmod 755 "$var"
    if ! is_root; then
        mkdir -p "$var/pg"
        return
    fi
    if ! id postgres >/dev/null 2>&1; then
        echo "pg.sh: no 'postgres' user; install postgresql-15 (scripts/deps.sh)" >&2
        exit 1
    fi
    if [ ! -e "$var/pg" ]; then
        mkdir -p "$var/pg"
        chmod 755 "$var/pg"
        chown postgres:postgres "$var/pg"
        if ! runuser -u postgres -- test -x "$var/pg"; then
            # A folder above var/ is closed to other users: use a stand-in.
            rmdir "$var/pg"
            local alt
            alt=/var/tmp/ncc-pg-$(printf '%s' "$var" | sha1sum | cut -c1-12)
            mkdir -p "$alt"
            chmod 755 "$alt"
            chown postgres:postgres "$alt"
            ln -s "$alt" "$var/pg"
            echo "pg.sh: the postgres user cannot reach $var; the cluster lives in $alt" >&2
        fi
    fi
    local dir
    dir=$(pgdir)
    if ! runuser -u postgres -- test -w "$dir"; then
        echo "pg.sh: the postgres user cannot write $dir; make the folders above it readable (chmod o+x)" >&2
        exit 1
    fi
}

init() {
    local dir=$1
    umask 077
    local pw
    pw=$(head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32)
    printf '%s\n' "$pw" >"$dir/superuser.pw"
    if is_root; then
        chown postgres "$dir/superuser.pw"
    fi
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
        --pwfile="$dir/superuser.pw" -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
        {
            cat "$dir/initdb.log" >&2
            exit 1
        }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 128MB
fsync = on
timezone = 'Asia/Tokyo'
log_timezone = 'Asia/Tokyo'
CONF
}

# psql as the superuser over the cluster's socket.
su_psql() {
    local dir
    dir=$(pgdir)
    as_pg "$bin/psql" -h "$dir" -p "$port" -U postgres -v ON_ERROR_STOP=1 -q "$@"
}

start() {
    if [ ! -x "$bin/initdb" ]; then
        echo "pg.sh: $bin/initdb not found; install postgresql-15 (scripts/deps.sh)" >&2
        exit 1
    fi
    prepare_dir
    local dir
    dir=$(pgdir)
    [ -f "$dir/data/PG_VERSION" ] || init "$dir"
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
            {
                tail -20 "$dir/server.log" >&2
                exit 1
            }
    fi
    # Two roles (idempotent; passwords live in var/ only): ncc_owner owns the
    # schemas and runs migrations; ncc is what the daemons run as, with DML
    # only and no UPDATE/DELETE on append-only tables (the audit log).
    local role
    for role in ncc ncc_owner; do
        if [ ! -f "$dir/$role.pw" ]; then
            (
                umask 077
                head -c 24 /dev/urandom | base64 | tr -d '/+=' | head -c 32 >"$dir/$role.pw"
            )
        fi
    done
    local pw owner_pw
    pw=$(cat "$dir/ncc.pw")
    owner_pw=$(cat "$dir/ncc_owner.pw")
    su_psql -d postgres <<SQL >/dev/null
SELECT 'CREATE ROLE ncc LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ncc') \gexec
SELECT 'CREATE ROLE ncc_owner LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ncc_owner') \gexec
ALTER ROLE ncc PASSWORD '$pw';
ALTER ROLE ncc_owner PASSWORD '$owner_pw';
SELECT 'CREATE DATABASE ncc OWNER ncc_owner' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'ncc') \gexec
GRANT CONNECT, CREATE ON DATABASE ncc TO ncc;
SQL
    (
        umask 077
        {
            printf 'NCC_DATABASE_URL=postgresql://ncc:%s@127.0.0.1:%s/ncc\n' "$pw" "$port"
            printf 'NCC_DATABASE_OWNER_URL=postgresql://ncc_owner:%s@127.0.0.1:%s/ncc\n' "$owner_pw" "$port"
            printf 'export NCC_DATABASE_URL NCC_DATABASE_OWNER_URL\n'
        } >"$var/env"
    )
}

fresh() {
    local name=${1:-}
    if ! [[ $name =~ ^[a-z][a-z0-9_]{0,62}$ ]] || [ "$name" = ncc ] || [ "$name" = postgres ]; then
        echo "pg.sh: fresh needs a database name (lower case, not ncc or postgres)" >&2
        exit 2
    fi
    local dir
    dir=$(pgdir)
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
        echo "pg.sh: the cluster is not running (scripts/pg.sh start)" >&2
        exit 1
    fi
    su_psql -d postgres >/dev/null <<SQL
SET client_min_messages = warning;
DROP DATABASE IF EXISTS $name WITH (FORCE);
CREATE DATABASE $name OWNER ncc_owner;
GRANT CONNECT, CREATE ON DATABASE $name TO ncc;
SQL
    printf 'postgresql://ncc:%s@127.0.0.1:%s/%s\n' "$(cat "$dir/ncc.pw")" "$port" "$name"
}

stop() {
    local dir
    dir=$(pgdir)
    if [ -f "$dir/data/PG_VERSION" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

status() {
    local dir
    dir=$(pgdir)
    [ -f "$dir/data/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
fresh) fresh "${2:-}" ;;
owner-url) printf 'postgresql://ncc_owner:%s@127.0.0.1:%s/%s\n' "$(cat "$(pgdir)/ncc_owner.pw")" "$port" "${2:-ncc}" ;;
*)
    echo "usage: $0 start|stop|status|fresh NAME|owner-url NAME" >&2
    exit 2
    ;;
esac
