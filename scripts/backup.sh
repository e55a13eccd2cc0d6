#!/usr/bin/env bash
# An encrypted backup of the ncc database (`make backup`; docs/operations.md "Backups").
#   scripts/backup.sh [--database NAME] [--output FILE]
#
# One file, <dir>/ncc-<database>-<UTC time>.backup, encrypted with age (X25519 and
# ChaCha20-Poly1305 in 64 KiB authenticated chunks; docs/decisions.md D13) to the public key of
# NCC_BACKUP_KEY (or to NCC_BACKUP_RECIPIENT, so a backup host needs no secret). Its plaintext is
#     NCC-BACKUP 1
#     database <name> / taken_at <UTC> / server <version> / tables <n> / sequences <n>
#     table <schema.table> <rows> <checksum>     one line per table (tab-separated)
#     sequence <schema.seq> <last_value> <is_called>
#     end-manifest
#     <pg_dump custom-format archive of the whole database>
# The manifest and the dump come from one snapshot (a REPEATABLE READ transaction exported to
# pg_dump --snapshot), so a running system may keep writing. The dump is never written in clear:
# it is streamed into age, into <file>.partial, renamed when complete (only the manifest's counts
# and checksums wait in a private temporary folder meanwhile).
#
# The database: --database NAME (on the local cluster, scripts/pg.sh), else
# NCC_DATABASE_OWNER_URL, else var/env. Settings: NCC_BACKUP_KEY (an age secret key,
# AGE-SECRET-KEY-1...), NCC_BACKUP_RECIPIENT (an age public key, age1...: wins over the key),
# NCC_BACKUP_DIR (default var/backups), NCC_BACKUP_COMPRESS (pg_dump's gzip level, 0-9, default
# 1: at 2 million records 4 times as fast as pg_dump's own default 6 for a file 30 % larger;
# docs/performance.md "Backups"), NCC_VAR (var/secrets.env is read for NCC_BACKUP_KEY when
# the environment has none). Prints the file's path on stdout; exit 0 only when it is complete.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
me=backup.sh
# shellcheck source=scripts/backup-lib.sh
. "$top/scripts/backup-lib.sh"

database=
output=
while [ $# -gt 0 ]; do
    case $1 in
    --database) database=${2:?--database needs a name}; shift 2 ;;
    --output) output=${2:?--output needs a file}; shift 2 ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument $1 (scripts/backup.sh [--database NAME] [--output FILE])" ;;
    esac
done

# The recipient: NCC_BACKUP_RECIPIENT, else the public half of NCC_BACKUP_KEY.
recipient=$(secret_setting NCC_BACKUP_RECIPIENT)
if [ -n "$recipient" ]; then
    [[ $recipient =~ ^age1[0-9a-z]{58}$ ]] ||
        die "NCC_BACKUP_RECIPIENT is not an age public key (age1 and 58 more characters; age-keygen -y prints it)"
else
    load_backup_key
    recipient=$(age-keygen -y <(printf '%s\n' "$backup_key")) || die "age-keygen could not read NCC_BACKUP_KEY"
fi

compress=${NCC_BACKUP_COMPRESS:-1}
[[ $compress =~ ^[0-9]$ ]] || die "NCC_BACKUP_COMPRESS is a gzip level from 0 to 9 (got '$compress')"

url=$(database_url "$database")
[ -n "$url" ] || die "no database URL (NCC_DATABASE_OWNER_URL is empty in var/env)"
dbname=$(psql "$url" -X -Atc 'SELECT current_database()' 2>&1) ||
    die "cannot connect to the database: $dbname"

dir=${NCC_BACKUP_DIR:-${NCC_VAR:-$top/var}/backups}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
if [ -z "$output" ]; then
    mkdir -p "$dir"
    chmod 700 "$dir"
    output=$dir/ncc-$dbname-$stamp.backup
fi
partial=$output.partial
work=$(mktemp -d "${TMPDIR:-/tmp}/ncc-backup.XXXXXX")
coproc_pid=
cleanup() {
    if [ -n "$coproc_pid" ]; then
        kill "$coproc_pid" 2>/dev/null || true
        wait "$coproc_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
    rm -f "$partial"
}
trap cleanup EXIT

# One psql session holds the snapshot: REPEATABLE READ, its snapshot exported for pg_dump,
# the manifest computed inside it, the transaction kept open until pg_dump has its tables.
coproc PSQL { psql "$url" -X -q -At -F $'\t' -v ON_ERROR_STOP=1 2>"$work/psql.err"; }
coproc_pid=$PSQL_PID
exec {to_psql}>&"${PSQL[1]}" {from_psql}<&"${PSQL[0]}"
# sql TEXT: runs TEXT in the session and prints its output (dies when the session fails).
sql() {
    local line
    printf '%s\n\\echo __ncc_done__\n' "$1" >&"$to_psql"
    while IFS= read -r line <&"$from_psql"; do
        if [ "$line" = __ncc_done__ ]; then
            return 0
        fi
        printf '%s\n' "$line"
    done
    die "the database session failed: $(cat "$work/psql.err")"
}
sql "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; $fingerprint_settings" >/dev/null
snapshot=$(sql 'SELECT pg_export_snapshot();')
server=$(sql "SELECT current_setting('server_version');")

start=${EPOCHREALTIME/./}
sql "$fingerprint_all_sql" >"$work/objects"
manifest_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
tables=$(grep -c $'^table\t' "$work/objects" || true)
sequences=$(grep -c $'^sequence\t' "$work/objects" || true)
[ "$tables" -gt 0 ] || die "database $dbname has no tables: nothing to back up"

{
    printf '%s\n' "$backup_magic"
    printf 'database\t%s\ntaken_at\t%s\nserver\t%s\ntables\t%s\nsequences\t%s\n' \
        "$dbname" "$stamp" "$server" "$tables" "$sequences"
    cat "$work/objects"
    printf '%s\n' "$backup_manifest_end"
} >"$work/manifest"

# The stream: manifest, then the dump, straight into age. pg_dump's own compression (gzip) is
# kept: age does not compress.
start=${EPOCHREALTIME/./}
set +e
{
    cat "$work/manifest"
    pg_dump --format=custom --compress="$compress" --snapshot="$snapshot" -d "$url" 2>"$work/pg_dump.err"
    echo $? >"$work/pg_dump.rc"
} | (umask 077 && age -r "$recipient" -o "$partial") 2>"$work/age.err"
age_rc=${PIPESTATUS[1]}
set -e
dump_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
sql 'COMMIT;' >/dev/null
printf '\\q\n' >&"$to_psql"
wait "$coproc_pid" 2>/dev/null || true
coproc_pid=

[ "$(cat "$work/pg_dump.rc")" = 0 ] || die "pg_dump failed: $(cat "$work/pg_dump.err")"
[ "$age_rc" = 0 ] || die "age failed: $(cat "$work/age.err")"
sync "$partial"
mv "$partial" "$output"
size=$(stat -c %s "$output")
say "$dbname: $tables tables, $sequences sequences; manifest ${manifest_ms} ms, dump and encryption ${dump_ms} ms; $size bytes"
printf '%s\n' "$output"
