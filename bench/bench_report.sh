#!/usr/bin/env bash
# bench/bench_report.sh: the reports at ten times Nakano's volume (issue 9,
# docs/kpi.md, docs/performance.md "Reports (issue 9)"). On the optimised
# build, against a database of its own (dropped at the end), with
# ncc-directory, ncc-calls, ncc-history, ncc-faq, ncc-sms, ncc-report and the
# gateway on the bench ports:
#
#   (a) BENCH_CONTACTS (2,000,000: one fiscal year, 2025-04 .. 2026-03, at 10x)
#       contacts generated in SQL straight into report's own tables (calls
#       with ringing, answer, end; 8 % abandoned; their records' department,
#       category, channel and wrap-up; 10 % transferred), plus 50,000 survey
#       answers and 200,000 FAQ searches: what the events would have left
#       there (the events themselves are not replayed: that is the bus's
#       throughput, measured in docs/performance.md "Calls");
#   (b) the monthly report over the fiscal year: GET /api/v1/reports/kpi
#       ?from=2025-04-01&to=2026-03-31&group=month through the gateway,
#       BENCH_RUNS (10) times: the first (which adds up and keeps the days),
#       then p50/max of the others (kept days); the same year from 00:00:01
#       (nothing can be kept: a full scan) 3 times; ncc-report's peak RSS;
#       the other groupings once each; the XLSX of the year once;
#   (c) the batch: ncc-report --batch monthly --period 2025-10 --out x.xlsx
#       and .csv: time and peak RSS (/usr/bin/time -v);
#   (d) live push lag: BENCH_LAG_CALLS (20) PBX ringing events, each timed
#       from the webhook's send to the supervisor stream's metrics.live
#       showing it waiting (p50, max).
#
#   bench/bench_report.sh [out folder]      (make bench-report)
# Environment: BUILD (default build), BENCH_CONTACTS, BENCH_RUNS,
# BENCH_LAG_CALLS, BENCH_PORT_OFFSET (20000). Needs curl, jq, python3, psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_report.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:-$top/bench/results/report-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
summary=$out/summary.tsv
contacts=${BENCH_CONTACTS:-2000000}
runs=${BENCH_RUNS:-10}
lag_calls=${BENCH_LAG_CALLS:-20}
bindir=$(bench_bindir)
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in directory calls history faq sms report gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done

hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
ms_since() { echo $(((${EPOCHREALTIME/./} - $1) / 1000)); }

export NCC_SMS_PROVIDER=none
bench_system_up report directory calls history faq sms report
report_pid=${pids[5]}
owner=$NCC_DATABASE_OWNER_URL

# (a) the facts, as the events would have left them.
say "generating $contacts contacts"
start=${EPOCHREALTIME/./}
psql "$owner" -q -v ON_ERROR_STOP=1 -v n="$contacts" >/dev/null <<'SQL'
INSERT INTO report.contacts (key, at, is_call, call_version, ringing_at, answered_at, ended_at,
    abandoned, call_transferred, operator_id, operator_name, record_id, record_version,
    record_started_at, record_ended_at, wrapup_ended_at, record_status, channel, department,
    category)
SELECT CASE WHEN phone THEN 'C' || g ELSE 'r:' || g END, t, phone, 4,
       CASE WHEN phone THEN t END,
       CASE WHEN phone AND NOT abandoned THEN t + wait END,
       CASE WHEN phone THEN t + wait + talk END,
       phone AND abandoned, phone AND NOT abandoned AND g % 10 = 0,
       CASE WHEN abandoned AND phone THEN 0 ELSE 1 + g % 40 END,
       CASE WHEN abandoned AND phone THEN '' ELSE 'オペレーター' || (1 + g % 40) END,
       CASE WHEN abandoned AND phone THEN NULL ELSE g END, 2,
       CASE WHEN abandoned AND phone THEN NULL ELSE t + wait END,
       CASE WHEN abandoned AND phone THEN NULL ELSE t + wait + talk END,
       CASE WHEN abandoned AND phone THEN NULL ELSE t + wait + talk + interval '150 s' END,
       CASE WHEN abandoned AND phone THEN '' ELSE 'closed' END,
       CASE WHEN phone THEN 'phone' ELSE (ARRAY['form','visit','chat','line'])[1 + g % 4] END,
       CASE WHEN abandoned AND phone THEN '' ELSE 'D' || lpad((1 + g % 45)::text, 2, '0') END,
       CASE WHEN abandoned AND phone THEN '' ELSE 'C' || lpad((1 + (g / 7) % 20)::text, 2, '0') END
FROM generate_series(1, :n) g
CROSS JOIN LATERAL (SELECT
    timestamptz '2025-04-01 00:00+09' + ((hashint4(g) & 2147483647) % 31536000) * interval '1 s' AS t,
    g % 9 <> 0 AS phone,
    g % 12 = 0 AS abandoned,
    ((hashint4(g * 3) & 2147483647) % 60) * interval '1 s' AS wait,
    (60 + (hashint4(g * 5) & 2147483647) % 540) * interval '1 s' AS talk) x;
INSERT INTO report.records (record_id, version, contact_key, faq_numbers, started_at)
SELECT record_id, 2, key, ARRAY[1 + record_id % 300, 1 + record_id % 17]::bigint[],
       record_started_at
FROM report.contacts WHERE record_id IS NOT NULL;
INSERT INTO report.faq_usage (day, number, used)
SELECT (started_at AT TIME ZONE 'Asia/Tokyo')::date, n, count(DISTINCT record_id)
FROM report.records, unnest(faq_numbers) AS n GROUP BY 1, 2;
INSERT INTO report.surveys (message_id, record_id, satisfaction, resolved, answered_at)
SELECT g, g * 37, 1 + g % 5, g % 3 <> 0,
       timestamptz '2025-04-01 00:00+09' + ((hashint4(g * 7) & 2147483647) % 31536000) * interval '1 s'
FROM generate_series(1, 50000) g;
UPDATE report.contacts c SET survey_n = s.n, survey_total = s.total
FROM (SELECT record_id, count(*) AS n, sum(satisfaction) AS total FROM report.surveys
      GROUP BY record_id) s WHERE c.record_id = s.record_id;
INSERT INTO report.faq_searches (search_id, searched_at, resident, hits, query_hash, query, shown,
    shown_questions)
SELECT 's' || g,
       timestamptz '2025-04-01 00:00+09' + ((hashint4(g * 11) & 2147483647) % 31536000) * interval '1 s',
       g % 4 = 0, CASE WHEN g % 20 = 0 THEN 0 ELSE 1 + g % 9 END, md5(g::text),
       CASE WHEN g % 20 = 0 THEN '検索語' || (g % 300) END,
       CASE WHEN g % 20 = 0 THEN '{}'::bigint[] ELSE ARRAY[1 + g % 300]::bigint[] END,
       CASE WHEN g % 20 = 0 THEN '{}'::text[] ELSE ARRAY['質問' || (1 + g % 300)] END
FROM generate_series(1, 200000) g;
INSERT INTO report.search_daily (day, searches, zero)
SELECT (searched_at AT TIME ZONE 'Asia/Tokyo')::date, count(*), count(*) FILTER (WHERE hits = 0)
FROM report.faq_searches GROUP BY 1;
INSERT INTO report.faq_shown_daily (day, number, shown, question)
SELECT (searched_at AT TIME ZONE 'Asia/Tokyo')::date, u.n, count(*), max(u.q)
FROM report.faq_searches, unnest(shown, shown_questions) AS u(n, q) GROUP BY 1, 2;
INSERT INTO report.zero_hit_daily (day, query, count, resident, last_at)
SELECT (searched_at AT TIME ZONE 'Asia/Tokyo')::date, query, count(*),
       count(*) FILTER (WHERE resident), max(searched_at)
FROM report.faq_searches WHERE hits = 0 AND query IS NOT NULL GROUP BY 1, 2;
VACUUM ANALYZE report.contacts;
VACUUM ANALYZE report.records;
VACUUM ANALYZE report.surveys;
VACUUM ANALYZE report.faq_searches;
VACUUM ANALYZE report.faq_usage;
VACUUM ANALYZE report.search_daily;
VACUUM ANALYZE report.faq_shown_daily;
VACUUM ANALYZE report.zero_hit_daily;
SQL
gen_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
table_mb=$(psql "$owner" -Atc "SELECT pg_total_relation_size('report.contacts') / 1048576")
say "generated in $gen_s s (contacts: $table_mb MiB)"

# (b) the monthly report over the fiscal year, through the gateway.
period="from=2025-04-01&to=2026-03-31"
rss_before=$(rss_kib "$report_pid")
: >"$out/monthly.tsv"
for ((i = 0; i < runs; i++)); do
    start=${EPOCHREALTIME/./}
    status=$(call GET "/reports/kpi?$period&group=month" -o "$out/monthly.json" -w '%{http_code}')
    echo "$(ms_since "$start")" >>"$out/monthly.tsv"
    [ "$status" = 200 ] || die "the monthly report answered $status: $(cat "$out/monthly.json")"
done
# the same year with a start one second after midnight: no day can be kept, every run scans
: >"$out/direct.tsv"
for ((i = 0; i < 3; i++)); do
    start=${EPOCHREALTIME/./}
    status=$(call GET "/reports/kpi?from=2025-03-31T15:00:01Z&to=2026-03-31T15:00:00Z&group=month" \
        -o /dev/null -w '%{http_code}')
    echo "$(ms_since "$start")" >>"$out/direct.tsv"
    [ "$status" = 200 ] || die "the direct monthly report answered $status"
done
direct_p50=$(median $(cat "$out/direct.tsv"))
direct_max=$(sort -g "$out/direct.tsv" | tail -n 1)
monthly_cold=$(head -n 1 "$out/monthly.tsv")
months=$(jq '.rows | length' "$out/monthly.json")
offered=$(jq '.total.offered' "$out/monthly.json")
[ "$offered" = "$contacts" ] || die "the report counted $offered contacts of $contacts"
monthly_p50=$(median $(tail -n +2 "$out/monthly.tsv"))
monthly_max=$(tail -n +2 "$out/monthly.tsv" | sort -g | tail -n 1)
: >"$out/groups.tsv"
for group in hour day department category operator channel; do
    start=${EPOCHREALTIME/./}
    status=$(call GET "/reports/kpi?$period&group=$group" -o /dev/null -w '%{http_code}')
    printf '%s\t%s\t%s\n' "$group" "$(ms_since "$start")" "$status" >>"$out/groups.tsv"
done
start=${EPOCHREALTIME/./}
status=$(call GET "/reports/export.xlsx?$period" -o "$out/year.xlsx" -w '%{http_code}')
xlsx_ms=$(ms_since "$start")
[ "$status" = 200 ] || die "the XLSX answered $status"
xlsx_kb=$(($(stat -c %s "$out/year.xlsx") / 1024))
report_hwm_mb=$(($(hwm_kib "$report_pid") / 1024))
report_rss_mb=$((rss_before / 1024))

# (c) the batch, one month at 10x.
batch() { # FILE
    /usr/bin/time -f '%e %M' -o "$out/time.txt" "$bindir/ncc-report" --batch monthly \
        --period 2025-10 --out "$1" >/dev/null 2>>"$out/logs/batch.log"
    read -r secs kib <"$out/time.txt"
    printf '%s\t%s\t%s\n' "$(basename "$1")" "$secs" "$((kib / 1024))"
}
batch_csv=$(batch "$out/2025-10.csv")
batch_xlsx=$(batch "$out/2025-10.xlsx")

# (d) live push lag: a supervisor's stream, a ringing call, the push that shows it.
stream=$out/stream.txt
curl -sN -b "$out/report-cookies" "$api/stream" >"$stream" 2>/dev/null &
stream_pid=$!
pids+=("$stream_pid")
for ((i = 0; i < 200; i++)); do
    grep -q 'metrics.live' "$stream" && break
    nap 0.05
done
grep -q 'metrics.live' "$stream" || die "no metrics.live on the stream"
sign() { # BODY -> the X-NCC-Signature header
    python3 - "$NCC_PBX_WEBHOOK_SECRET" "$1" <<'EOF'
import hashlib, hmac, sys, time
t = str(int(time.time()))
print("t=%s,v1=%s" % (t, hmac.new(sys.argv[1].encode(), (t + "." + sys.argv[2]).encode(), hashlib.sha256).hexdigest()))
EOF
}
: >"$out/lag.tsv"
for ((i = 1; i <= lag_calls; i++)); do
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    body="{\"event_id\":\"lag-$i\",\"type\":\"ringing\",\"call_id\":\"LAG$i\",\"occurred_at\":\"$now\",\"from\":\"0311112222\",\"to\":\"0332281111\"}"
    header=$(sign "$body")
    before=$(grep -c '' "$stream" || true)
    start=${EPOCHREALTIME/./}
    curl -s -o /dev/null -H "X-NCC-Signature: $header" -H 'Content-Type: application/json' \
        -d "$body" "$api/pbx/events"
    seen=
    for ((k = 0; k < 3000; k++)); do
        if tail -n +"$((before + 1))" "$stream" | grep -q "\"waiting\":$i[,}]"; then
            seen=$(ms_since "$start")
            break
        fi
        nap 0.001
    done
    echo "${seen:-timeout}" >>"$out/lag.tsv"
done
lag_p50=$(median $(grep -v timeout "$out/lag.tsv"))
lag_max=$(grep -v timeout "$out/lag.tsv" | sort -g | tail -n 1)
lag_missed=$(grep -c timeout "$out/lag.tsv" || true)

{
    echo "# Reports bench: $contacts contacts, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    echo
    echo "generated in ${gen_s} s; report.contacts with its indexes ${table_mb} MiB"
    echo "monthly report over fiscal year 2025 ($months months, $offered contacts): first run (adds up and keeps the 365 days) $monthly_cold ms; the $((runs - 1)) runs after it (kept days): p50 $monthly_p50 ms, max $monthly_max ms"
    echo "the same year from 00:00:01 (no kept days: a scan of every contact), 3 runs: p50 $direct_p50 ms, max $direct_max ms"
    echo "ncc-report RSS before $report_rss_mb MiB, peak (VmHWM) after every report $report_hwm_mb MiB"
    echo "other groupings over the year (ms):"
    awk '{ printf "  %s: %s ms (%s)\n", $1, $2, $3 }' "$out/groups.tsv"
    echo "XLSX of the year: $xlsx_ms ms, $xlsx_kb KiB"
    echo "batch monthly 2025-10: $(awk '{ printf "%s %s s, peak RSS %s MiB", $1, $2, $3 }' <<<"$batch_csv"); $(awk '{ printf "%s %s s, peak RSS %s MiB", $1, $2, $3 }' <<<"$batch_xlsx")"
    echo "live push lag ($lag_calls calls): p50 $lag_p50 ms, max $lag_max ms, not seen in 3 s: $lag_missed"
} | tee "$out/report.md"
summary_line report "monthly report, fiscal year, first run" "$monthly_cold" ms "< 2000" "$([ "$monthly_cold" -lt 2000 ] && echo met || echo 'not met')"
summary_line report "monthly report, fiscal year, kept days (p50)" "$monthly_p50" ms "< 2000" "$([ "$monthly_max" -lt 2000 ] && echo met || echo 'not met')"
summary_line report "monthly report, fiscal year, full scan (p50)" "$direct_p50" ms "< 2000" "$([ "$direct_max" -lt 2000 ] && echo met || echo 'not met')"
summary_line report "ncc-report peak RSS" "$report_hwm_mb" MiB "< 128" "$([ "$report_hwm_mb" -lt 128 ] && echo met || echo 'not met')"
summary_line report "live push lag (max)" "$lag_max" ms "< 1000" "$([ "${lag_max:-99999}" -lt 1000 ] && [ "$lag_missed" = 0 ] && echo met || echo 'not met')"
say "report: $out/report.md"
