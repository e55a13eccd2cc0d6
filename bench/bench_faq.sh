#!/usr/bin/env bash
# bench/bench_faq.sh: FAQ search quality and speed on real data (docs/faq.md,
# docs/performance.md). On the optimised build, against a database of its own
# (dropped at the end), with ncc-directory, ncc-faq and ncc-gateway on the
# bench ports:
#
#   (a) the localgovFAQ corpus (1,786 Amagasaki FAQs, read from
#       ../shared/data/faq/localgovfaq_amagasaki/, see its SOURCE.md; the data
#       is turned into an import file under a temporary folder, never in the
#       repository) imported with POST /api/v1/faqs/import (timed);
#   (b) every dev query (525) sent through GET /api/v1/faqs?q= as the
#       administrator: Recall@10, nDCG@10, MRR@10, Hit@1, Hit@5 (grade >= 1,
#       and grade 2), and the request latency p50 / p99 seen by the client;
#   (b2) the same with learning from operators' clicks (docs/faq.md), by
#       BENCH_FAQ_LEARN_FOLDS-fold cross-validation (5; 0 leaves it out): the
#       other folds' queries are sent as clicks on their relevant FAQs through
#       POST /api/v1/faqs/{id}/clicks, the fold's queries are searched, the
#       clicks are deleted before the next fold;
#   (c) the public resident pages under wrk (BENCH_DURATION s each, 2 threads,
#       BENCH_CONNECTIONS connections): /faq, /faq/{number}, /faq?q= — requests/s
#       and latency;
#   (d) BENCH_FAQ_LARGE (100,000; 0 leaves it out) FAQs: the corpus plus generated
#       ones (each generated FAQ pairs one corpus question with another FAQ's
#       answer, numbers from 1,000,000) written in SQL, ncc-faq restarted on them
#       (index build time, memory), then every dev query again: latency p50 / p99
#       (and the quality with ~98,000 distractors, for the record).
#
#   bench/bench_faq.sh [out folder]       (make bench-faq)
# Environment: BUILD (default build), FAQ_DATA (the data folder),
# NCC_DATABASE_URL / NCC_DATABASE_OWNER_URL (else scripts/pg.sh start and
# var/env), BENCH_PORT_OFFSET (20000), BENCH_DURATION (10), BENCH_CONNECTIONS (32),
# BENCH_FAQ_LARGE (100000), BENCH_FAQ_LEARN_FOLDS (5). Needs curl, jq, python3 and psql; wrk for (c).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_faq.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

data=${FAQ_DATA:-$top/../shared/data/faq/localgovfaq_amagasaki}
if [ ! -f "$data/corpus_qa.jsonl" ] || [ ! -f "$data/dev_queries.json" ]; then
    say "skipped: the evaluation data is not at $data (set FAQ_DATA; see its SOURCE.md)"
    exit 0
fi
out=${1:-$top/bench/results/faq-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
bindir=$(bench_bindir)
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in directory faq gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
export NCC_BUS_TIMEOUT_MS=30000
bench_system_up faq directory faq
tmp=$(mktemp -d "$out/tmp.XXXXXX")

# --- (a) import ------------------------------------------------------------------------------
count=$(python3 bench/faq/eval.py csv "$data" "$tmp/corpus.csv")
result=$(curl -s -b "$cookies" -H "X-CSRF-Token: $csrf" -H 'Content-Type: text/csv' \
    --data-binary @"$tmp/corpus.csv" -w '\n%{time_total}' "$api/faqs/import")
import_s=$(tail -n 1 <<<"$result")
created=$(head -n 1 <<<"$result" | jq -r '.create // "error"')
[ "$created" = "$count" ] || die "the import failed: $(head -c 300 <<<"$result")"
say "imported $created FAQs in $import_s s"

# --- (b) every query ---------------------------------------------------------------------------
python3 bench/faq/eval.py run "$data" "$api" "$cookies" "$out" | tee "$out/metrics.tsv"
{
    printf 'faq_import_%s_s\t%s\n' "$count" "$import_s"
} >>"$out/metrics.tsv"

# --- (b2) learning from operators' clicks, by cross-validation ----------------------------------
folds=${BENCH_FAQ_LEARN_FOLDS:-5}
if [ "$folds" -gt 1 ]; then
    psql "$NCC_DATABASE_OWNER_URL" -AtF $'\t' -c "SELECT number, id FROM faq.faqs" >"$tmp/ids.tsv"
    reset="psql '$NCC_DATABASE_OWNER_URL' -q -c 'DELETE FROM faq.clicks' -c 'UPDATE faq.index_state SET revision = revision + 1' && sleep 3"
    mkdir -p "$out/learn"
    python3 bench/faq/eval.py learn "$data" "$api" "$cookies" "$out/learn" "$csrf" "$tmp/ids.tsv" \
        "$folds" "$reset" | tee "$out/learn/metrics.tsv"
    sed 's/^/learn_/' "$out/learn/metrics.tsv" >>"$out/metrics.tsv"
fi

# --- (c) the public pages under wrk --------------------------------------------------------------
duration=${BENCH_DURATION:-10}
connections=${BENCH_CONNECTIONS:-32}
large=${BENCH_FAQ_LARGE:-100000}
if command -v wrk >/dev/null; then
    base=${api%/api/v1}
    first=$(psql "$NCC_DATABASE_OWNER_URL" -Atc "SELECT min(number) FROM faq.faqs WHERE status = 'published' AND visibility = 'public'")
    mkdir -p "$out/wrk"
    for page in "/faq" "/faq/$first" "/faq?q=%E4%BD%8F%E6%B0%91%E7%A5%A8"; do
        label=$(tr -c 'a-z0-9' '_' <<<"$page" | cut -c1-24)
        wrk -t2 -c"$connections" -d"${duration}s" --latency "$base$page" >"$out/wrk/$label.txt" 2>&1 || true
        rps=$(awk '/^Requests\/sec:/ { printf "%d", $2 }' "$out/wrk/$label.txt")
        p99=$(awk '$1 == "99%" { print $2 }' "$out/wrk/$label.txt")
        non2xx=$(awk '/Non-2xx/ { print $5 }' "$out/wrk/$label.txt")
        say "public page $page: ${rps:-?} requests/s, p99 ${p99:-?} (${non2xx:-0} not 2xx)"
        printf 'public_page\t%s\t%s req/s\tp99 %s\tnon2xx %s\n' "$page" "${rps:-?}" "${p99:-?}" "${non2xx:-0}" >>"$out/metrics.tsv"
    done
else
    say "wrk is not installed: the public pages are not measured"
fi

# --- (d) 100,000 FAQs ----------------------------------------------------------------------------
if [ "$large" -gt "$count" ]; then
    extra=$((large - count))
    say "writing $extra generated FAQs in SQL"
    psql "$NCC_DATABASE_OWNER_URL" -q -v ON_ERROR_STOP=1 <<SQL
WITH src AS (SELECT row_number() OVER (ORDER BY number) AS i, question, answer FROM faq.faqs),
     n AS (SELECT count(*) AS c FROM src)
INSERT INTO faq.faqs (number, question, answer, visibility, status, updated_by)
SELECT 1000000 + g, q.question, a.answer, 'public', 'published', 'bench'
FROM generate_series(1, $extra) g, n,
     src q, src a
WHERE q.i = 1 + (g % n.c) AND a.i = 1 + ((g * 7 + g / n.c) % n.c);
SQL
    faq_pid=${pids[1]} # bench_system_up started directory, faq, gateway
    stop_pid "$faq_pid"
    start_ms=$((${EPOCHREALTIME/./} / 1000))
    NCC_LOG_LEVEL=info "$bindir/ncc-faq" >>"$out/logs/faq-faq.log" 2>&1 </dev/null &
    pids+=($!)
    faq_port=$(bench_health_port "$(service_index faq)")
    for ((i = 0; i < 30000; i++)); do
        http_ok 127.0.0.1 "$faq_port" /readyz && break
        nap 0.01
    done
    http_ok 127.0.0.1 "$faq_port" /readyz || die "ncc-faq is not ready on $large FAQs"
    # Ready answers before the index is built (the first search waits for it): wait for
    # the build's log line.
    for ((i = 0; i < 6000; i++)); do
        grep -aq 'faq.index_built.*"msg":"[0-9]\{5,\} FAQs' "$out/logs/faq-faq.log" && break
        nap 0.1
    done
    ready_ms=$((${EPOCHREALTIME/./} / 1000 - start_ms))
    rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/${pids[-1]}/status" 2>/dev/null || echo 0)
    mkdir -p "$out/large"
    python3 bench/faq/eval.py run "$data" "$api" "$cookies" "$out/large" | tee "$out/large/metrics.tsv"
    rss_kb=$(awk '/VmRSS/ { print $2 }' "/proc/${pids[-1]}/status" 2>/dev/null || echo 0)
    built=$(grep -a 'faq.index_built' "$out/logs/faq-faq.log" | tail -n 1 | grep -o '"msg":"[^"]*"' || true)
    say "$large FAQs: ncc-faq searching ${ready_ms} ms after start; the index: ${built:-?}; RSS $((rss_kb / 1024)) MiB"
    {
        printf 'faq_large_count\t%s\n' "$large"
        printf 'faq_large_ready_ms\t%s\n' "$ready_ms"
        printf 'faq_large_rss_mib\t%s\n' "$((rss_kb / 1024))"
        sed 's/^/large_/' "$out/large/metrics.tsv"
    } >>"$out/metrics.tsv"
fi
rm -rf "$tmp"
say "results in $out (metrics.tsv, queries.tsv)"
