#!/usr/bin/env bash
# bench/bench_history.sh: interaction records at ten times Nakano's volume
# (issue 5, docs/history.md "Figures", docs/performance.md "History"). On
# the optimised build, against a database of its own (dropped at the end),
# with ncc-directory, ncc-history and ncc-gateway on the bench ports:
#
#   (a) BENCH_RECORDS (2,000,000: one fiscal year at 10x) records generated
#       in SQL from the localgovFAQ texts (../shared/data/faq, resident
#       questions and the city's answers: realistic Japanese), then
#       ncc-history started on them: the time to build its search index and
#       its memory;
#   (b) search over the bus as GET /api/v1/records?q=WORD&sort=-started_at
#       asks it (the newest 50 and the number of matches), rare and common
#       2-character words and 1-character ones, without and with a period
#       filter (a quarter): p50/p95/p99 of BENCH_RUNS (200) requests each;
#   (c) the same question to PostgreSQL with a pg_trgm GIN index on the same
#       data in the same run (BENCH_TRGM_RUNS, 5, each);
#   (d) commit -> searchable: a record created (CreateRecord) and its word
#       asked until found, 20 times;
#   (e) the CSV export of the whole fiscal year through the gateway
#       (GET /api/v1/records/export.csv?fiscal_year=2027): rows/s, the
#       gateway's peak memory and ncc-history's memory growth meanwhile.
#
#   bench/bench_history.sh [out folder]      (make bench-history)
# Environment: BUILD (default build), BENCH_RECORDS, BENCH_RUNS,
# BENCH_TRGM_RUNS (0 leaves pg_trgm out), FAQ_DATA, BENCH_PORT_OFFSET (20000). Needs curl, jq,
# python3 (sign-in) and psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_history.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

data=${FAQ_DATA:-$top/../shared/data/faq/localgovfaq_amagasaki}
if [ ! -f "$data/corpus_qa.jsonl" ] || [ ! -f "$data/dev_queries.json" ]; then
    say "skipped: the text data is not at $data (set FAQ_DATA)"
    exit 0
fi
out=${1:-$top/bench/results/history-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
summary=$out/summary.tsv
records=${BENCH_RECORDS:-2000000}
runs=${BENCH_RUNS:-200}
trgm_runs=${BENCH_TRGM_RUNS:-5}
bindir=$(bench_bindir)
client=$(dirname "$bindir")/bench/bench_history
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in directory history gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
[ -x "$client" ] || die "$client is not built (make BUILD=$build bench-history)"

# Words: rare and common 2-character ones in this text, and 1-character ones.
rare=(火葬 引越 選挙 水道)
common=(窓口 手続 申請 児童)
single=(犬 税)
period_from=2027-10-01
period_to=2027-12-31

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# ncc-calls runs too, as in production: ncc-history follows its events, and a
# publisher that is down costs every subscriber a blocked second per catch-up.
bench_system_up history directory calls history
history_rpc=tcp://127.0.0.1:$(bench_rpc_port "$(service_index history)")
history_health=$(bench_health_port "$(service_index history)")
owner=$NCC_DATABASE_OWNER_URL

# (a) the records, written while ncc-history is stopped (it builds its index
# from the table when it starts).
stop_pid "${pids[2]}"
say "generating $records records"
start=${EPOCHREALTIME/./}
bench_generate_records "$owner" "$records" "$data"
psql "$owner" -q -c "VACUUM ANALYZE history.records" >/dev/null
gen_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
trgm_s=skipped
if [ "$trgm_runs" -gt 0 ]; then
    say "generated in ${gen_s} s; building the pg_trgm index"
    start=${EPOCHREALTIME/./}
    psql "$owner" -q -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX records_trgm_bench ON history.records
    USING gin ((inquiry || ' ' || response || ' ' || summary) gin_trgm_ops);
ANALYZE history.records;
SQL
    trgm_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
fi
table_mb=$(psql "$owner" -Atc "SELECT pg_total_relation_size('history.records') / 1048576")

say "starting ncc-history on them"
start=${EPOCHREALTIME/./}
NCC_LOG_LEVEL=info "$bindir/ncc-history" >"$out/logs/history-history-2.log" 2>&1 </dev/null &
history_pid=$!
pids+=("$history_pid")
for ((i = 0; i < 6000; i++)); do
    grep -q '"event":"search.built"' "$out/logs/history-history-2.log" && break
    is_alive "$history_pid" || die "ncc-history died (see $out/logs/history-history-2.log)"
    nap 0.05
done
grep -q '"event":"search.built"' "$out/logs/history-history-2.log" || die "the index was not built in 300 s"
build_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
http_ok 127.0.0.1 "$history_health" /readyz || die "ncc-history is not ready"
index_rss_mb=$(($(rss_kib "$history_pid") / 1024))
built_line=$(grep -m1 '"event":"search.built"' "$out/logs/history-history-2.log" | jq -r .msg)
say "index: $built_line; ncc-history RSS ${index_rss_mb} MiB"

# (b), (c), (d)
say "search: $runs requests per word and filter"
"$client" search "$history_rpc" "$runs" "$period_from" "$period_to" \
    "${rare[@]}" "${common[@]}" "${single[@]}" | tee "$out/search.tsv"
if [ "$trgm_runs" -gt 0 ]; then
    say "pg_trgm: $trgm_runs requests per word and filter"
    "$client" trgm "$owner" "$trgm_runs" "$period_from" "$period_to" \
        "${rare[@]}" "${common[@]}" "${single[@]}" | tee "$out/trgm.tsv"
else
    # BENCH_TRGM_RUNS=0: no comparison this time (the columns show 0).
    awk '{ print "trgm", $2, $3, $4, 0, 0, 0, 0 }' OFS='\t' "$out/search.tsv" >"$out/trgm.tsv"
fi
say "commit -> searchable"
"$client" fresh "$history_rpc" 20 | tee "$out/fresh.tsv"

# (e) the export of the whole fiscal year: over the bus alone, then through the gateway.
say "exporting fiscal year 2027 over the bus"
"$client" export "$history_rpc" 2027 | tee "$out/export-bus.tsv"

gateway_pid=${pids[3]}
say "exporting fiscal year 2027 through the gateway"
history_before=$(rss_kib "$history_pid")
(
    max_h=0
    while :; do
        h=$(rss_kib "$history_pid")
        [ "$h" -gt "$max_h" ] && max_h=$h && echo "$max_h" >"$out/history-rss-max"
        nap 0.05
    done
) &
sampler=$!
start=${EPOCHREALTIME/./}
status=$(call GET "/records/export.csv?fiscal_year=2027" -o "$out/records-2027.csv" -w '%{http_code}')
export_us=$((${EPOCHREALTIME/./} - start))
kill "$sampler" 2>/dev/null || true
wait "$sampler" 2>/dev/null || true
[ "$status" = 200 ] || die "the export answered $status"
export_rows=$(psql "$owner" -Atc "SELECT rows FROM history.exports ORDER BY id DESC LIMIT 1")
export_mb=$(($(stat -c %s "$out/records-2027.csv") / 1048576))
export_rps=$((export_rows * 1000000 / export_us))
gateway_peak_mb=$(($(hwm_kib "$gateway_pid") / 1024))
history_max=$(cat "$out/history-rss-max" 2>/dev/null || echo "$history_before")
history_growth_mb=$(((history_max - history_before) / 1024))
rm -f "$out/records-2027.csv"

# The summary.
p95_of() { awk -v k="$1" -v w="$2" -v f="$3" '$1 == k && $2 == w && $3 == f { print $6 }' "$out/$1.tsv"; }
{
    echo "# History bench: $records records, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    echo
    echo "generated in ${gen_s} s; table with its indexes ${table_mb} MiB; pg_trgm index built in ${trgm_s} s"
    echo "ncc-history: index built in ${build_s} s from start ($built_line), RSS ${index_rss_mb} MiB"
    echo
    echo "| word | filter | matches | ncc p50 | p95 | p99 | pg_trgm p50 | p95 | p99 | p95 ratio |"
    echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    join -j1 <(awk '{ print $2 "/" $3, $4, $5, $6, $7 }' "$out/search.tsv" | sort) \
        <(awk '{ print $2 "/" $3, $5, $6, $7 }' "$out/trgm.tsv" | sort) |
        awk '{ split($1, k, "/"); printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %.0fx |\n",
               k[1], k[2], $2, $3, $4, $5, $6, $7, $8, ($4 > 0 ? $7 / $4 : 0) }'
    echo
    awk '{ printf "commit -> searchable (%s samples): p50 %s ms, p95 %s ms, max %s ms\n", $2, $3, $4, $5 }' "$out/fresh.tsv"
    awk '{ printf "export of fiscal year 2027 over the bus alone: %s rows, %d MiB in %s ms = %d rows/s (%s pages)\n", $2, $3 / 1048576, $4, $2 * 1000 / $4, $5 }' "$out/export-bus.tsv"
    echo "export of fiscal year 2027 through the gateway: $export_rows rows, $export_mb MiB in $((export_us / 1000)) ms = $export_rps rows/s; gateway peak RSS $gateway_peak_mb MiB; ncc-history RSS growth $history_growth_mb MiB"
} | tee "$out/report.md"
worst_p95=$(awk '{ print $6 }' "$out/search.tsv" | sort -g | tail -n 1)
worst_p99=$(awk '{ print $7 }' "$out/search.tsv" | sort -g | tail -n 1)
summary_line history "search p95 (worst word)" "$worst_p95" ms "< 50" "$(awk -v v="$worst_p95" 'BEGIN { print (v < 50) ? "met" : "not met" }')"
summary_line history "search p99 (worst word)" "$worst_p99" ms "< 100" "$(awk -v v="$worst_p99" 'BEGIN { print (v < 100) ? "met" : "not met" }')"
summary_line history "export rows/s" "$export_rps" rows/s "> 100000" "$([ "$export_rps" -gt 100000 ] && echo met || echo 'not met')"
summary_line history "export gateway peak RSS" "$gateway_peak_mb" MiB "< 64" "$([ "$gateway_peak_mb" -lt 64 ] && echo met || echo 'not met')"
say "report: $out/report.md"
