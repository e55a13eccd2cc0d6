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
if [ -z "${NCC_DATABASE_URL:-}" ]; then
    scripts/pg.sh start >/dev/null
    # shellcheck disable=SC1091
    . var/env
fi
load_bench_secrets
export_bench_endpoints
export NCC_LOG_LEVEL=${NCC_LOG_LEVEL:-warn}

db_name=bench_faq_$$
admin_url=${NCC_DATABASE_OWNER_URL:-$NCC_DATABASE_URL}
NCC_DATABASE_URL=$(scripts/pg.sh fresh "$db_name" | grep '^postgresql://') ||
    die "scripts/pg.sh fresh $db_name failed"
NCC_DATABASE_OWNER_URL=$(scripts/pg.sh owner-url "$db_name" | grep '^postgresql://')
export NCC_DATABASE_URL NCC_DATABASE_OWNER_URL
export NCC_BOOTSTRAP_ADMIN_LOGIN=benchadmin
export NCC_BOOTSTRAP_ADMIN_PASSWORD=Bench-Faq-$$-Pass
export NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
export NCC_ARGON2_MEMORY_KIB=${NCC_ARGON2_MEMORY_KIB:-4096}
http_port=$((8080 + bench_port_offset))
gateway_health_port=$((9190 + bench_port_offset))
export NCC_HTTP_LISTEN=127.0.0.1:$http_port
export NCC_HTTPS_LISTEN=127.0.0.1:$((8443 + bench_port_offset))s
export NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:$gateway_health_port
export NCC_TLS_CERT=$out/tls/bench.pem
export NCC_WEB_ROOT=$top/gateway/web
export NCC_STAFF_ALLOW_CIDRS=127.0.0.0/8
export NCC_BUS_TIMEOUT_MS=30000
make_certificate "$NCC_TLS_CERT"
ports=("$http_port" "$gateway_health_port" "$((8443 + bench_port_offset))")
for d in directory faq; do
    i=$(service_index "$d")
    ports+=("$(bench_rpc_port "$i")" "$(bench_pub_port "$i")" "$(bench_health_port "$i")")
done
require_free_ports "${ports[@]}"

tmp=$(mktemp -d)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do
        stop_pid "$pid"
    done
    rm -rf "$tmp"
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

for d in directory faq gateway; do
    "$bindir/ncc-$d" >"$out/logs/faq-$d.log" 2>&1 </dev/null &
    pids+=($!)
done
for d in directory faq gateway; do
    if [ "$d" = gateway ]; then port=$gateway_health_port; else
        port=$(bench_health_port "$(service_index "$d")")
    fi
    for ((i = 0; i < 3000; i++)); do
        http_ok 127.0.0.1 "$port" /readyz && break
        nap 0.01
    done
    http_ok 127.0.0.1 "$port" /readyz || die "ncc-$d is not ready (see $out/logs/faq-$d.log)"
done

api=http://127.0.0.1:$http_port/api/v1
cookies=$tmp/cookies
totp() {
    python3 - "$NCC_BOOTSTRAP_ADMIN_TOTP_SECRET" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1])
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = digest[-1] & 15
print("%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
EOF
}
csrf=
for ((i = 0; i < 100; i++)); do
    csrf=$(curl -s -c "$cookies" -H 'Content-Type: application/json' \
        -d "{\"login\":\"$NCC_BOOTSTRAP_ADMIN_LOGIN\",\"password\":\"$NCC_BOOTSTRAP_ADMIN_PASSWORD\",\"totp\":\"$(totp)\"}" \
        "$api/session" | jq -r '.csrf_token // empty')
    [ -n "$csrf" ] && break
    nap 0.1
done
[ -n "$csrf" ] || die "cannot sign in as the bench administrator"

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
say "results in $out (metrics.tsv, queries.tsv)"
