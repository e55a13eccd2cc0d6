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
#       and grade 2), and the request latency p50 / p99 seen by the client.
#
#   bench/bench_faq.sh [out folder]       (make bench-faq)
# Environment: BUILD (default build), FAQ_DATA (the data folder),
# NCC_DATABASE_URL / NCC_DATABASE_OWNER_URL (else scripts/pg.sh start and
# var/env), BENCH_PORT_OFFSET (20000). Needs curl, jq, python3 and psql.
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
rm -rf "$tmp"
say "results in $out (metrics.tsv, queries.tsv)"
