# shellcheck shell=bash disable=SC2034,SC2154
# scripts/backup-lib.sh: what scripts/backup.sh and scripts/restore.sh share (sourced, not
# run): the key, the database URL, and the SQL that fingerprints every table.
# Expects $top (the repository) and $me (the script's name, for messages).
# docs/operations.md "Backups" describes the whole; docs/decisions.md D13 the choice of age.

# The first line of the plaintext inside every backup file, and the line ending its manifest.
backup_magic='NCC-BACKUP 1'
backup_manifest_end='end-manifest'

say() {
    printf '%s: %s\n' "$me" "$*" >&2
}

die() {
    say "$*"
    exit 1
}

for tool in age age-keygen psql pg_dump pg_restore; do
    command -v "$tool" >/dev/null 2>&1 ||
        die "$tool is not installed (scripts/deps.sh installs it: apt-get install age postgresql-client-15)"
done

# A setting from the environment, else from $NCC_VAR/secrets.env (as scripts/run.sh reads it).
secret_setting() {
    local name=$1 line file=${NCC_VAR:-$top/var}/secrets.env
    if [ -n "${!name:-}" ]; then
        printf '%s' "${!name}"
        return 0
    fi
    [ -r "$file" ] || return 0
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line == "$name="* ]]; then
            printf '%s' "${line#*=}"
            return 0
        fi
    done <"$file"
}

# Sets $backup_key (the age identity from NCC_BACKUP_KEY) or dies with what to do.
load_backup_key() {
    backup_key=$(secret_setting NCC_BACKUP_KEY)
    if [ -z "$backup_key" ]; then
        die "NCC_BACKUP_KEY is not set: it is the age secret key (AGE-SECRET-KEY-1...) of the backups; make one with age-keygen and keep it as docs/reliability.md \"Keys\" says"
    fi
    if ! [[ $backup_key =~ ^AGE-SECRET-KEY-1[0-9A-Z]{58}$ ]]; then
        backup_key=
        die "NCC_BACKUP_KEY is not an age secret key (AGE-SECRET-KEY-1 and 58 more characters; make one with age-keygen)"
    fi
}

# The owner's URL of the database to work on: --database NAME on the local cluster
# (scripts/pg.sh owner-url), else NCC_DATABASE_OWNER_URL from the environment, else var/env.
database_url() {
    local name=$1
    if [ -n "$name" ]; then
        "$top/scripts/pg.sh" owner-url "$name"
        return
    fi
    if [ -n "${NCC_DATABASE_OWNER_URL:-}" ]; then
        printf '%s\n' "$NCC_DATABASE_OWNER_URL"
        return
    fi
    local env=${NCC_VAR:-$top/var}/env
    if [ -r "$env" ]; then
        (
            # shellcheck disable=SC1090
            . "$env"
            printf '%s\n' "${NCC_DATABASE_OWNER_URL:-}"
        )
        return
    fi
    die "no database: set NCC_DATABASE_OWNER_URL (the schema owner's URL) or start the local cluster (scripts/pg.sh start)"
}

# Session settings that fix the text form of every value, so a row prints the same in the
# source and in the restored copy.
fingerprint_settings="SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres';
SET extra_float_digits = 1; SET bytea_output = 'hex'; SET search_path = pg_catalog;"

# The tables and sequences the manifest covers: every ordinary table and sequence outside
# PostgreSQL's own schemas (all service schemas). Columns: kind, qualified name.
fingerprint_objects_sql="SELECT CASE c.relkind WHEN 'S' THEN 'sequence' ELSE 'table' END,
       format('%I.%I', n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'S') AND NOT c.relispartition
   AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
   AND n.nspname NOT LIKE 'pg_temp%' AND n.nspname NOT LIKE 'pg_toast_temp%'
 ORDER BY 2"

# The fingerprint of table %1$s (a qualified name) as one row: 'table', its name, its row count,
# and the sum (exact, in numeric) of the first 64 bits of each row's md5, the row taken in its
# text form. A sum does not depend on the order of the rows (so neither on collation nor on a
# primary key) and needs no sort: about three times faster than the md5 of the rows in key order
# (docs/decisions.md D13). As format() templates:
fingerprint_table_sql="SELECT 'table', %1\$L, count(*),
       coalesce(sum(('x' || left(md5(t::text), 16))::bit(64)::bigint::numeric), 0)
  FROM ONLY %1\$s t"
fingerprint_sequence_sql="SELECT 'sequence', %1\$L, last_value::text, is_called::text FROM %1\$s"

# The SQL that prints the whole manifest (kind, name, row count or last value, checksum or is_called;
# tab-separated under psql -AtF TAB), run inside the backup's transaction.
fingerprint_all_sql="SELECT format(CASE o.kind WHEN 'table' THEN \$ncc\$$fingerprint_table_sql\$ncc\$
                              ELSE \$ncc\$$fingerprint_sequence_sql\$ncc\$ END, o.name)
  FROM ($fingerprint_objects_sql) o(kind, name) \\gexec"
