#!/usr/bin/env bash
# bench/bench_backup.sh: backup and restore of one fiscal year at ten times Nakano's volume
# (issue 10; docs/performance.md "Backups", docs/reliability.md "Backups"). On the optimised
# build, against a database of its own (dropped at the end):
#
#   1. every service started once on the bench ports (every schema migrated), then stopped;
#   2. BENCH_RECORDS (2,000,000) interaction records generated in SQL as
#      bench/bench_history.sh does (the localgovFAQ texts: realistic Japanese), VACUUM ANALYZE;
#   3. scripts/backup.sh: wall time (manifest, dump + encryption), file size; again with
#      NCC_BACKUP_COMPRESS=6 (pg_dump's own default gzip level; the backup's default is 1);
#   4. scripts/restore.sh into a fresh database: wall time (decryption, restore + indexes +
#      verification in one transaction);
#   5. the restored copy compared with the source (row counts of every table).
#
#   bench/bench_backup.sh [out folder]         (make bench-backup)
# Environment: BUILD (default build), BENCH_RECORDS, FAQ_DATA, BENCH_PORT_OFFSET (20000).
# Needs age, psql, pg_dump, pg_restore.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_backup.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

data=${FAQ_DATA:-$top/../shared/data/faq/localgovfaq_amagasaki}
[ -f "$data/corpus_qa.jsonl" ] && [ -f "$data/dev_queries.json" ] ||
    die "the text data is not at $data (set FAQ_DATA)"
out=${1:-$top/bench/results/backup-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
summary=$out/summary.tsv
records=${BENCH_RECORDS:-2000000}
bindir=$(bench_bindir)
services=(directory calls history faq sms summary report)
for d in "${services[@]}" gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done

bench_system_up backup "${services[@]}"
for pid in "${pids[@]}"; do stop_pid "$pid"; done
pids=()
owner=$NCC_DATABASE_OWNER_URL
restore_db=bench_backup_restore_$$
admin=$(scripts/pg.sh owner-url postgres)
bench_cleanup() {
    cleanup
    psql "$admin" -qc "DROP DATABASE IF EXISTS $restore_db WITH (FORCE)" >/dev/null 2>&1 || true
    rm -f "$out/ncc.backup"
}
trap bench_cleanup EXIT

say "generating $records records"
start=${EPOCHREALTIME/./}
bench_generate_records "$owner" "$records" "$data"
psql "$owner" -q -c "VACUUM ANALYZE history.records" >/dev/null
gen_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
db_mb=$(psql "$owner" -Atc "SELECT pg_database_size(current_database()) / 1048576")
table_mb=$(psql "$owner" -Atc "SELECT pg_total_relation_size('history.records') / 1048576")
say "generated in ${gen_s} s; database ${db_mb} MiB (history.records with its indexes ${table_mb} MiB)"

export NCC_BACKUP_KEY
NCC_BACKUP_KEY=$(age-keygen 2>/dev/null | grep '^AGE-SECRET-KEY-1')
say "backup"
start=${EPOCHREALTIME/./}
scripts/backup.sh --database "$db_name" --output "$out/ncc.backup" >/dev/null 2>"$out/backup.err" ||
    die "backup failed: $(cat "$out/backup.err")"
backup_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
backup_line=$(tail -n 1 "$out/backup.err")
file_mb=$(($(stat -c %s "$out/ncc.backup") / 1048576))
say "$backup_line"

say "backup again with NCC_BACKUP_COMPRESS=6"
start=${EPOCHREALTIME/./}
NCC_BACKUP_COMPRESS=6 scripts/backup.sh --database "$db_name" --output "$out/ncc-z6.backup" >/dev/null 2>"$out/backup-z6.err" ||
    die "backup failed: $(cat "$out/backup-z6.err")"
z6_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
z6_mb=$(($(stat -c %s "$out/ncc-z6.backup") / 1048576))
rm -f "$out/ncc-z6.backup"
say "$(tail -n 1 "$out/backup-z6.err")"

say "restore into a fresh database"
start=${EPOCHREALTIME/./}
scripts/restore.sh --database "$restore_db" "$out/ncc.backup" >/dev/null 2>"$out/restore.err" ||
    die "restore failed: $(cat "$out/restore.err")"
restore_ms=$(((${EPOCHREALTIME/./} - start) / 1000))
decrypt_ms=$(grep -o 'decrypted in [0-9]* ms' "$out/restore.err" | grep -o '[0-9]*')
say "$(tail -n 1 "$out/restore.err")"
restored=$(psql "$(scripts/pg.sh owner-url "$restore_db")" -Atc "SELECT count(*) FROM history.records")
[ "$restored" = "$records" ] || die "the restored copy has $restored records, not $records"

{
    echo "# Backup bench: $records records, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    echo
    echo "generated in ${gen_s} s; database ${db_mb} MiB (history.records with its indexes ${table_mb} MiB)"
    echo "backup: $((backup_ms / 1000)).$(printf '%03d' $((backup_ms % 1000))) s wall, file ${file_mb} MiB ($backup_line)"
    echo "backup with NCC_BACKUP_COMPRESS=6: $((z6_ms / 1000)).$(printf '%03d' $((z6_ms % 1000))) s wall, file ${z6_mb} MiB"
    echo "restore: $((restore_ms / 1000)).$(printf '%03d' $((restore_ms % 1000))) s wall (decryption ${decrypt_ms} ms), $restored records back, verified"
} | tee "$out/report.md"
summary_line backup "backup of $records records" "$((backup_ms / 1000))" s "< 3600" "$([ $backup_ms -lt 3600000 ] && echo met || echo 'not met')"
summary_line backup "restore of $records records" "$((restore_ms / 1000))" s "< 3600" "$([ $restore_ms -lt 3600000 ] && echo met || echo 'not met')"
summary_line backup "backup file" "$file_mb" MiB "" ""
say "report: $out/report.md"
