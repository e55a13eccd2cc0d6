#!/usr/bin/env bash
# tests/scripts/test_backup.sh: `make backup` and `make restore` (issue 10; docs/operations.md
# "Backups"). TAP on stdout; exit 0 only when every check passed. scripts/test.sh runs it (with
# every tests/scripts/test_*.sh); alone:
#     scripts/pg.sh start && BUILD=build/rel tests/scripts/test_backup.sh
#
# The whole system (every service, so every schema) is started on ports of its own
# (BENCH_PORT_OFFSET, default 21700) with a database of its own; records are created through the
# API and in bulk in SQL; the daemons are stopped so the source holds still; then:
#   backup -> restore into a fresh database -> every table compared with the source by a
#   fingerprint computed here (not the scripts' own), and the files checked for clear text;
#   a non-empty target refused, FORCE=1 accepted; a flipped byte, three truncations, a wrong
#   key, no key, a file that is not a backup, and a manifest that does not match the data all
#   refused with the target left empty; a backup made with the public key alone restores with
#   the secret one; a backup taken while rows are being written restores and verifies (manifest
#   and dump come from one snapshot).
set -uo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
build=${BUILD:-build/asan}
bench_name=test_backup.sh
export BENCH_PORT_OFFSET=${BENCH_PORT_OFFSET:-21700}
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

bindir=$(bench_bindir)
out=$(mktemp -d "${TMPDIR:-/tmp}/ncc-test-backup.XXXXXX")
mkdir -p "$out/logs"
n=0
failures=0
ok() { # ok CONDITION-STATUS DESCRIPTION
    n=$((n + 1))
    if [ "$1" = 0 ]; then
        echo "ok $n - $2"
    else
        echo "not ok $n - $2"
        failures=$((failures + 1))
    fi
}
check() { # check DESCRIPTION COMMAND...: ok when COMMAND succeeds
    local what=$1
    shift
    if "$@"; then ok 0 "$what"; else ok 1 "$what"; fi
}

for d in directory calls history faq sms summary report gateway; do
    [ -x "$bindir/ncc-$d" ] || { echo "not ok 1 - $bindir/ncc-$d is not built"; exit 1; }
done

bench_system_up backup directory calls history faq sms summary report
source_url=$NCC_DATABASE_OWNER_URL
source_db=$db_name
restore_db=test_backup_restore_$$
scratch_db=test_backup_scratch_$$
admin=$(scripts/pg.sh owner-url postgres)
system_cleanup() {
    cleanup
    local db
    for db in "$restore_db" "$scratch_db"; do
        psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    done
    rm -rf "$out"
}
trap system_cleanup EXIT
psql_in() { psql "$1" -X -At -v ON_ERROR_STOP=1 -c "$2"; }

# --- seed -----------------------------------------------------------------------------------
marker=backup-marker-$$-$RANDOM
created=0
for i in 1 2 3 4 5; do
    status=$(call POST /records -H 'Content-Type: application/json' -o /dev/null -w '%{http_code}' \
        -d "{\"channel\":\"visit\",\"inquiry\":\"$marker 住民票の写しについて $i\"}")
    [ "$status" = 201 ] || [ "$status" = 200 ] && created=$((created + 1))
done
ok "$([ $created = 5 ] && echo 0 || echo 1)" "five records created through the API ($created)"
for ((i = 0; i < 100; i++)); do
    [ "$(psql_in "$source_url" "SELECT count(*) FROM history.records WHERE inquiry LIKE '$marker%'")" = 5 ] && break
    nap 0.05
done
# In bulk, as bench/bench_history.sh does: 3,000 more records over a fiscal year.
psql "$source_url" -X -q -v ON_ERROR_STOP=1 <<SQL
INSERT INTO history.records (receipt_id, channel, operator_id, operator_name, started_at,
    ended_at, wrapup_ended_at, department_id, category, reception_type, handling_type,
    inquiry, response, summary, status, source)
SELECT 'R2027-' || lpad(g::text, 7, '0'), 'phone', 1 + g % 40, 'オペレーター' || (1 + g % 40),
       t, t + interval '4 minutes', t + interval '7 minutes', 'D01', 'C01', 'R01', 'H01',
       '$marker 一括 ' || g, '回答 ' || g, '要約', 'closed', 'import'
FROM generate_series(1, 3000) g
CROSS JOIN LATERAL (SELECT '2027-04-01T00:00:00+09:00'::timestamptz + g * interval '1 hour' AS t) tt;
SQL
# A schema of this test's own, written to while a backup runs (below).
psql_in "$source_url" "CREATE SCHEMA backup_test; CREATE TABLE backup_test.t (id bigserial PRIMARY KEY, v text NOT NULL, at timestamptz NOT NULL DEFAULT now(), f double precision, b bytea)" >/dev/null
psql_in "$source_url" "INSERT INTO backup_test.t (v, f, b) SELECT 'v' || g, g / 3.0, decode(md5(g::text), 'hex') FROM generate_series(1, 500) g" >/dev/null
marker_rows=$(psql_in "$source_url" "SELECT count(*) FROM history.records WHERE inquiry LIKE '$marker%'")
ok "$([ "$marker_rows" = 3005 ] && echo 0 || echo 1)" "3,005 marked records in the source ($marker_rows)"

# The daemons stop, so the source holds still for the comparisons.
for pid in "${pids[@]}"; do stop_pid "$pid"; done
pids=()

# This test's own fingerprint of a whole database: every table, its row count and the md5 of
# its rows' text in order (another formula than the scripts' manifest).
fingerprint() {
    psql "$1" -X -q -At -v ON_ERROR_STOP=1 <<'SQL'
SET TimeZone = 'UTC';
SELECT format('SELECT %L, count(*), md5(coalesce(string_agg(t::text, E''\n'' ORDER BY t::text COLLATE "C"), '''')) FROM %I.%I t',
              n.nspname || '.' || c.relname, n.nspname, c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
 ORDER BY 1 \gexec
SQL
}
fingerprint "$source_url" >"$out/source.fp"
tables=$(wc -l <"$out/source.fp")
ok "$([ "$tables" -gt 40 ] && echo 0 || echo 1)" "the source has every service's tables ($tables tables)"
missing=
for s in auth calls directory faq history report sms summary; do
    grep -q "^$s\." "$out/source.fp" || missing+=" $s"
done
ok "$([ -z "$missing" ] && echo 0 || echo 1)" "every service schema is in the source${missing:+ (missing:$missing)}"

# --- backup ---------------------------------------------------------------------------------
NCC_BACKUP_KEY=$(age-keygen 2>/dev/null | grep '^AGE-SECRET-KEY-1')
export NCC_BACKUP_KEY
backup=$out/ncc.backup
make -s backup DB="$source_db" OUT="$backup" >"$out/backup.out" 2>"$out/backup.err"
ok $? "make backup DB=$source_db OUT=... exits 0"
check "the backup file exists, mode 600" test "$(stat -c %a "$backup" 2>/dev/null)" = 600
check "the file is age-encrypted" test "$(head -c 21 "$backup")" = "age-encryption.org/v1"
check "no clear text of the data in the file (marker, table names)" \
    bash -c "! grep -aqE '$marker|history\\.records|receipt_id' '$backup'"
check "no partial file left" test ! -e "$backup.partial"

# --- restore into a fresh database, compare ---------------------------------------------------
make -s restore FILE="$backup" DB="$restore_db" >"$out/restore.out" 2>"$out/restore.err"
ok $? "make restore FILE=... DB=$restore_db exits 0"
check "restore reports the verification" grep -q 'counts and checksums match the manifest' "$out/restore.err"
restore_url=$(scripts/pg.sh owner-url "$restore_db")
fingerprint "$restore_url" >"$out/restored.fp"
if diff "$out/source.fp" "$out/restored.fp" >"$out/fp.diff"; then ok 0 "every table of the restored copy equals the source ($tables tables, this test's fingerprint)"; else
    ok 1 "every table of the restored copy equals the source"
    sed 's/^/# /' "$out/fp.diff" | head -20
fi
check "the marked records are back" test "$(psql_in "$restore_url" "SELECT count(*) FROM history.records WHERE inquiry LIKE '$marker%'")" = 3005
check "sequences continue where they were" test \
    "$(psql_in "$restore_url" "SELECT last_value FROM backup_test.t_id_seq")" = "$(psql_in "$source_url" "SELECT last_value FROM backup_test.t_id_seq")"
check "the application role keeps its grants (ncc reads history.records)" \
    test "$(psql_in "$restore_url" "SELECT has_table_privilege('ncc', 'history.records', 'SELECT')")" = t

# --- refusals -------------------------------------------------------------------------------
make -s restore FILE="$backup" DB="$restore_db" >"$out/again.out" 2>"$out/again.err"
rc=$?
ok "$([ $rc != 0 ] && grep -q 'is not empty' "$out/again.err" && echo 0 || echo 1)" \
    "a non-empty target is refused without FORCE=1 (exit $rc: $(grep -o 'database .* is not empty ([^)]*)' "$out/again.err"))"
psql_in "$restore_url" "INSERT INTO backup_test.t (v) VALUES ('after restore')" >/dev/null
make -s restore FILE="$backup" DB="$restore_db" FORCE=1 >"$out/force.out" 2>"$out/force.err"
ok $? "FORCE=1 replaces the contents"
fingerprint "$restore_url" >"$out/forced.fp"
check "after FORCE=1 the copy equals the source again" diff -q "$out/source.fp" "$out/forced.fp"

# refuse NAME FILE EXPECTED-MESSAGE [env...]: restore into an empty scratch database must fail
# with the message and leave the database empty.
refuse() {
    local what=$1 file=$2 expect=$3 rc msg left
    shift 3
    psql "$admin" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1
    env "$@" scripts/restore.sh --database "$scratch_db" "$file" >"$out/refuse.out" 2>"$out/refuse.err"
    rc=$?
    msg=$(grep -v -e '^restore.sh: decrypting' -e 'created database' "$out/refuse.err" | tail -n 1)
    left=$(psql_in "$admin" "SELECT count(*) FROM pg_database WHERE datname = '$scratch_db'")
    if [ "$left" = 1 ]; then
        left=$(psql_in "$(scripts/pg.sh owner-url "$scratch_db")" "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('r', 'S')")
    fi
    if [ $rc != 0 ] && grep -q -- "$expect" <<<"$msg" && [ "$left" = 0 ]; then
        ok 0 "$what: refused (${msg#restore.sh: })"
    else
        ok 1 "$what: exit $rc, '$msg', $left tables left in the target"
    fi
}
size=$(stat -c %s "$backup")
cp "$backup" "$out/flipped.backup"
printf '\x55' | dd of="$out/flipped.backup" bs=1 seek=$((size / 2)) conv=notrunc status=none
refuse "a byte changed in the middle" "$out/flipped.backup" 'truncated or has been altered'
head -c $((size / 2)) "$backup" >"$out/half.backup"
refuse "cut in half" "$out/half.backup" 'truncated or has been altered'
head -c $((size - 1)) "$backup" >"$out/short.backup"
refuse "last byte missing" "$out/short.backup" 'truncated or has been altered'
# age's header ends at the first "\n--- " line; the first 64 KiB chunk (plus its 16-byte tag
# and the 16-byte nonce) follows: cut right after it.
header=$(grep -abo -m1 $'^--- ' "$backup" | cut -d: -f1)
header_end=$((header + $(sed -n "/^--- /{p;q}" "$backup" | wc -c)))
head -c $((header_end + 16 + 65536 + 16)) "$backup" >"$out/chunk.backup"
refuse "cut at a chunk boundary" "$out/chunk.backup" 'truncated or has been altered'
refuse "another key" "$backup" 'wrong key' NCC_BACKUP_KEY="$(age-keygen 2>/dev/null | grep '^AGE-SECRET')"
refuse "no key" "$backup" 'NCC_BACKUP_KEY is not set' NCC_BACKUP_KEY= NCC_VAR="$out/no-var"
head -c 4096 /dev/urandom >"$out/random.backup"
refuse "not a backup" "$out/random.backup" 'not an encrypted ncc backup'
# A backup whose manifest does not match its data (made with the key): the restore must roll
# back, not leave unverified data behind.
age -d -i <(printf '%s\n' "$NCC_BACKUP_KEY") "$backup" |
    awk 'BEGIN { done = 0 } !done && /^table\thistory\.records\t/ { FS = OFS = "\t"; $0 = $0; $3 = 1; done = 1 } { print }' |
    age -r "$(age-keygen -y <(printf '%s\n' "$NCC_BACKUP_KEY"))" -o "$out/lying.backup"
refuse "a manifest that does not match the data" "$out/lying.backup" 'verification failed'

# --- a backup host that holds only the public key ---------------------------------------------
recipient=$(age-keygen -y <(printf '%s\n' "$NCC_BACKUP_KEY"))
env -u NCC_BACKUP_KEY NCC_BACKUP_RECIPIENT="$recipient" \
    scripts/backup.sh --database "$source_db" --output "$out/public.backup" >/dev/null 2>"$out/public.err"
ok $? "a backup with NCC_BACKUP_RECIPIENT alone (no secret key on the backup host)"
psql "$admin" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1
scripts/restore.sh --database "$scratch_db" "$out/public.backup" >/dev/null 2>"$out/public-restore.err"
ok $? "it restores with NCC_BACKUP_KEY"

# --- a backup while rows are written ----------------------------------------------------------
(
    for ((i = 0; i < 400; i++)); do
        psql "$source_url" -X -qc "INSERT INTO backup_test.t (v) VALUES ('during $i')" >/dev/null 2>&1 || true
    done
) &
writer=$!
nap 0.2
live=$out/live.backup
scripts/backup.sh --database "$source_db" --output "$live" >/dev/null 2>"$out/live.err"
ok $? "a backup taken while rows are being inserted"
wait "$writer" || true
psql "$admin" -qc "DROP DATABASE IF EXISTS $scratch_db WITH (FORCE)" >/dev/null 2>&1
scripts/restore.sh --database "$scratch_db" "$live" >/dev/null 2>"$out/live-restore.err"
ok $? "it restores and verifies (manifest and dump of one snapshot): $(tail -n 1 "$out/live-restore.err" | grep -o '[0-9]* tables ([0-9]* rows)')"

sanitizer_report='ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: UndefinedBehaviorSanitizer|[.](c|h):[0-9]+:[0-9]+: runtime error:'
if grep -Eaql "$sanitizer_report" "$out"/logs/*.log 2>/dev/null; then
    ok 1 "no sanitizer report in the daemons' logs ($(grep -Ealq "$sanitizer_report" "$out"/logs/*.log | tr '\n' ' '))"
else
    ok 0 "no sanitizer report in the daemons' logs"
fi
echo "1..$n"
if [ $failures -gt 0 ]; then
    echo "# logs and files: see $out (kept)"
    trap 'cleanup; for db in "$restore_db" "$scratch_db"; do psql "$admin" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; done' EXIT
    exit 1
fi
