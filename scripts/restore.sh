#!/usr/bin/env bash
# Restores a backup made by scripts/backup.sh (`make restore FILE=...`; docs/operations.md
# "Backups").
#   scripts/restore.sh [--database NAME | --target URL] [--force] FILE
#
# 1. Decrypts FILE with NCC_BACKUP_KEY into a private temporary folder (mode 700) and checks it
#    whole before the database is touched: a wrong key, a truncated or altered file (age
#    authenticates every 64 KiB chunk and the end of the stream), or a file that is not an ncc
#    backup stop here, with nothing changed.
# 2. Refuses a target database that already holds tables or schemas, unless --force (then every
#    schema of the target is dropped, in the same transaction as the restore).
# 3. Restores in ONE transaction (psql --single-transaction on pg_restore's script), then, still
#    inside it, recounts and re-checksums every table and sequence of the manifest; any
#    difference rolls the whole restore back. Exit 0 only when the restore is committed and
#    verified.
#
# The target: --database NAME on the local cluster (created when missing; scripts/pg.sh),
# --target URL (the schema owner's URL of an existing database), else NCC_DATABASE_OWNER_URL,
# else var/env. The roles ncc and ncc_owner must exist on the target cluster (scripts/pg.sh
# makes them; docs/operations.md for another cluster). Stop the daemons that use the target
# first. Settings: NCC_BACKUP_KEY (the age secret key, AGE-SECRET-KEY-1...), NCC_VAR, TMPDIR
# (where the decrypted dump waits: it needs about the size of FILE).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
me=restore.sh
# shellcheck source=scripts/backup-lib.sh
. "$top/scripts/backup-lib.sh"

database=
target=
force=0
file=
while [ $# -gt 0 ]; do
    case $1 in
    --database) database=${2:?--database needs a name}; shift 2 ;;
    --target) target=${2:?--target needs a URL}; shift 2 ;;
    --force) force=1; shift ;;
    -h | --help) sed -n '2,25p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *)
        [ -z "$file" ] || die "one backup file at a time"
        file=$1
        shift
        ;;
    esac
done
[ -n "$file" ] || die "usage: scripts/restore.sh [--database NAME | --target URL] [--force] FILE"
if ! [ -f "$file" ] || ! [ -r "$file" ]; then die "$file: no such readable file"; fi
[ -s "$file" ] || die "$file is empty"
load_backup_key

umask 077
work=$(mktemp -d "${TMPDIR:-/tmp}/ncc-restore.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- 1. decrypt and check the whole file -------------------------------------------------
say "decrypting $file"
start=${EPOCHREALTIME/./}
set +e
age -d -i <(printf '%s\n' "$backup_key") "$file" 2>"$work/age.err" | {
    # The manifest is text up to its end line; the rest is the pg_dump archive.
    n=0
    while [ $n -lt 100000 ] && IFS= read -r line; do
        printf '%s\n' "$line"
        n=$((n + 1))
        [ "$line" = "$backup_manifest_end" ] && break
    done >"$work/manifest"
    cat >"$work/dump"
}
age_rc=${PIPESTATUS[0]}
set -e
if [ "$age_rc" != 0 ]; then
    err=$(grep -m1 'error:' "$work/age.err" | sed 's/^age: error: //' | tr -cd '[:print:]' | cut -c1-160)
    case $err in
    *"no identity matched"*)
        die "wrong key: $file was not encrypted to NCC_BACKUP_KEY (age: $err); nothing was restored" ;;
    *"authenticate payload"* | *"unexpected EOF"* | *"last chunk"* | *"trailing data"* | *"EOF"*)
        die "$file is truncated or has been altered (age: $err); nothing was restored" ;;
    *header* | *intro* | *"not an age"*)
        die "$file is not an encrypted ncc backup, or its header is damaged (age: ${err%%: unexpected intro*}); nothing was restored" ;;
    *)
        die "cannot decrypt $file (age: ${err:-exit status $age_rc}); nothing was restored" ;;
    esac
fi
decrypt_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
if [ "$(head -n 1 "$work/manifest")" != "$backup_magic" ] ||
    [ "$(tail -n 1 "$work/manifest")" != "$backup_manifest_end" ]; then
    die "$file decrypts but is not an ncc backup (no \"$backup_magic\" manifest); nothing was restored"
fi
manifest_value() { awk -F '\t' -v k="$1" '$1 == k { print $2; exit }' "$work/manifest"; }
source_db=$(manifest_value database)
taken_at=$(manifest_value taken_at)
tables=$(manifest_value tables)
sequences=$(manifest_value sequences)
grep -E $'^(table|sequence)\t' "$work/manifest" >"$work/objects" || true
if [ "$(grep -c $'^table\t' "$work/objects")" != "$tables" ] ||
    [ "$(grep -c $'^sequence\t' "$work/objects")" != "$sequences" ]; then
    die "the manifest of $file is inconsistent (it announces $tables tables and $sequences sequences); nothing was restored"
fi
pg_restore --list "$work/dump" >"$work/toc" 2>"$work/pg_restore.err" ||
    die "the archive inside $file is not readable by pg_restore: $(head -c 300 "$work/pg_restore.err"); nothing was restored"
say "backup of $source_db taken $taken_at: $tables tables, $sequences sequences; decrypted in ${decrypt_ms} ms"

# --- 2. the target -------------------------------------------------------------------------
if [ -n "$database" ]; then
    if ! [[ $database =~ ^[a-z][a-z0-9_]{0,62}$ ]] || [ "$database" = postgres ]; then
        die "--database needs a lower-case database name (not postgres)"
    fi
    admin=$("$top/scripts/pg.sh" owner-url postgres)
    exists=$(psql "$admin" -X -Atc "SELECT 1 FROM pg_database WHERE datname = '$database'" 2>&1) ||
        die "cannot reach the local cluster (scripts/pg.sh start): $exists"
    if [ "$exists" != 1 ]; then
        "$top/scripts/pg.sh" fresh "$database" >/dev/null || die "cannot create database $database"
        say "created database $database on the local cluster"
    fi
    target=$("$top/scripts/pg.sh" owner-url "$database")
elif [ -z "$target" ]; then
    target=$(database_url "")
fi
target_db=$(psql "$target" -X -Atc 'SELECT current_database()' 2>&1) ||
    die "cannot connect to the target database: $target_db"
occupied=$(psql "$target" -X -At -F ' ' -c "
    SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')
               AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'),
           (SELECT count(*) FROM pg_namespace
             WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public')
               AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%')")
read -r occupied_relations occupied_schemas <<<"$occupied"
drop_sql=
if [ "$occupied_relations" != 0 ] || [ "$occupied_schemas" != 0 ]; then
    if [ $force != 1 ]; then
        die "database $target_db is not empty ($occupied_relations tables, views or sequences; $occupied_schemas schemas): nothing was restored; restore into an empty database, or replace its contents with --force (make restore ... FORCE=1)"
    fi
    say "--force: every schema of $target_db is dropped and replaced, in the restore's transaction"
    drop_sql=$(psql "$target" -X -At -c "
        SELECT format('DROP SCHEMA %I CASCADE;', nspname) FROM pg_namespace
         WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast', 'public')
           AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'
        UNION ALL
        SELECT format('DROP %s IF EXISTS public.%I CASCADE;',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
                           WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE'
                           ELSE 'TABLE' END, c.relname)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'S', 'v', 'm', 'f')")
fi

# --- 3. restore and verify in one transaction --------------------------------------------
say "restoring into $target_db"
start=${EPOCHREALTIME/./}
set +e
{
    printf '%s\n' "$drop_sql"
    pg_restore --no-owner -f - "$work/dump" 2>"$work/pg_restore.err"
    echo $? >"$work/pg_restore.rc"
    cat <<SQL
$fingerprint_settings
SET client_min_messages = notice;
CREATE TEMP TABLE ncc_manifest (kind text, name text, a text, b text);
COPY pg_temp.ncc_manifest FROM stdin;
$(cat "$work/objects")
\\.
DO \$ncc_verify\$
DECLARE
    m record;
    got_kind text;
    got_name text;
    got_a text;
    got_b text;
    bad text[] := '{}';
BEGIN
    FOR m IN SELECT * FROM pg_temp.ncc_manifest ORDER BY name LOOP
        IF to_regclass(m.name) IS NULL THEN
            bad := bad || format('%s %s is missing', m.kind, m.name);
            CONTINUE;
        END IF;
        EXECUTE format(CASE m.kind WHEN 'table' THEN \$ncc\$$fingerprint_table_sql\$ncc\$
                       ELSE \$ncc\$$fingerprint_sequence_sql\$ncc\$ END, m.name)
            INTO got_kind, got_name, got_a, got_b;
        -- A sequence is not transactional: pg_dump reads it after the manifest did, so a
        -- restored sequence may be ahead of the manifest while rows were being written, never
        -- behind it.
        IF (m.kind = 'table' AND (got_a IS DISTINCT FROM m.a OR got_b IS DISTINCT FROM m.b))
           OR (m.kind = 'sequence' AND (got_a::numeric < m.a::numeric
                                        OR (got_a = m.a AND got_b IS DISTINCT FROM m.b))) THEN
            bad := bad || format('%s %s: %s/%s in the manifest, %s/%s restored',
                                 m.kind, m.name, m.a, m.b, got_a, got_b);
        END IF;
    END LOOP;
    IF cardinality(bad) > 0 THEN
        RAISE EXCEPTION 'ncc-verify: % of % objects differ from the manifest: %',
            cardinality(bad), (SELECT count(*) FROM pg_temp.ncc_manifest), array_to_string(bad, '; ');
    END IF;
    RAISE NOTICE 'ncc-verified: % tables and % sequences match the manifest',
        (SELECT count(*) FROM pg_temp.ncc_manifest WHERE kind = 'table'),
        (SELECT count(*) FROM pg_temp.ncc_manifest WHERE kind = 'sequence');
END
\$ncc_verify\$;
SQL
} | psql "$target" -X -q --single-transaction -v ON_ERROR_STOP=1 -f - >"$work/psql.out" 2>"$work/psql.err"
psql_rc=${PIPESTATUS[1]}
set -e
restore_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
if [ "$psql_rc" != 0 ]; then
    if grep -q 'ncc-verify:' "$work/psql.err"; then
        die "verification failed, the restore was rolled back: $(grep -m1 -o 'ncc-verify: .*' "$work/psql.err")"
    fi
    die "the restore failed and was rolled back (psql exit $psql_rc): $(grep -m3 -E 'ERROR|FATAL' "$work/psql.err" | head -c 600) $(head -c 300 "$work/pg_restore.err")"
fi
[ "$(cat "$work/pg_restore.rc")" = 0 ] ||
    die "pg_restore failed ($(head -c 300 "$work/pg_restore.err")), yet the transaction committed and verified: check $target_db by hand"
grep -q 'ncc-verified:' "$work/psql.err" ||
    die "the restore committed but its verification did not report; check $target_db by hand"
rows=$(awk -F '\t' '$1 == "table" { n += $3 } END { print n + 0 }' "$work/objects")
say "restored $source_db ($taken_at) into $target_db in ${restore_ms} ms: $tables tables ($rows rows) and $sequences sequences; counts and checksums match the manifest"
