#!/usr/bin/env bash
# bench/bench_sms.sh: the SMS send path (issue 8, docs/sms.md "Figures",
# docs/performance.md "SMS"). On the optimised build, against a database of
# its own (dropped at the end), with ncc-directory, ncc-sms (provider smpp)
# and ncc-gateway on the bench ports, and the test SMSC
# (bench/bench_sms_smsc, SMPP 3.4 on loopback, receipts after 20 ms,
# store and forward: every accepted part fsync'ed before its answer):
#
#   (a) throughput: BENCH_SMS_COUNT (10,000) SMS accepted through the API
#       (POST /api/v1/sms, 8 clients) while the SMSC is down, so they wait
#       in the queue; then the SMSC starts and the queue drains: messages/s
#       from the first to the last submit_sm (sent_at), and the wall time
#       until every one is delivered;
#   (b) queue latency: BENCH_SMS_PACED (3,000) SMS at BENCH_SMS_RATE (50/s)
#       with the SMSC up: created_at -> sent_at (the submit_sm_resp) and
#       -> delivered_at (the receipt), p50/p95/p99/max.
#
#   bench/bench_sms.sh [out folder]      (make bench-sms)
# Environment: BUILD (default build), BENCH_SMS_COUNT, BENCH_SMS_PACED,
# BENCH_SMS_RATE, BENCH_SMS_WINDOW (NCC_SMS_SMPP_WINDOW, 50), BENCH_SMS_SMSC_STORE (1; 0: the
# SMSC keeps nothing on disk, to measure ncc-sms without the SMSC's fsync),
# BENCH_PORT_OFFSET (21500). Needs curl, jq, python3 and psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_sms.sh
export BENCH_PORT_OFFSET=${BENCH_PORT_OFFSET:-21500}
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:-$top/bench/results/sms-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
count=${BENCH_SMS_COUNT:-10000}
paced=${BENCH_SMS_PACED:-3000}
rate=${BENCH_SMS_RATE:-50}
bindir=$(bench_bindir)
client=$(dirname "$bindir")/bench/bench_sms
smsc=$(dirname "$bindir")/bench/bench_sms_smsc
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for f in "$bindir/ncc-directory" "$bindir/ncc-sms" "$bindir/ncc-gateway" "$client" "$smsc"; do
    [ -x "$f" ] || die "$f is not built (make BUILD=$build bench-sms)"
done

smsc_port=$((2775 + bench_port_offset))
require_free_ports "$smsc_port"
export NCC_SMS_PROVIDER=smpp NCC_SMS_SMPP_HOST=127.0.0.1 NCC_SMS_SMPP_PORT=$smsc_port
export NCC_SMS_QUIET_START=0 NCC_SMS_QUIET_END=0 NCC_SMS_OPERATOR_PER_MINUTE=100000
export NCC_SMS_PER_NUMBER_PER_HOUR=1000 NCC_SMS_RATE_PER_SECOND=100000
export NCC_SMS_SMPP_WINDOW=${BENCH_SMS_WINDOW:-50} NCC_SMS_SMPP_RECONNECT_MAX_MS=200
bench_system_up sms directory sms
owner=$NCC_DATABASE_OWNER_URL
sql() { psql "$owner" -Atc "$1"; }

tid=$(call POST /sms-templates -H 'Content-Type: application/json' \
    -d '{"name":"bench","body":"{n}: 中野区役所からのお知らせです。手続きのご案内は区のホームページをご覧ください。"}' | jq -r .id)
[ "$tid" -gt 0 ] 2>/dev/null || die "cannot create the template"

# (a) accepted while the SMSC is down, then drained.
say "(a) $count SMS through the API with the SMSC down"
"$client" "$api" "$cookies" "$csrf" "$tid" "$count" 8 0 a | tee "$out/accept.txt"
queued=$(sql "SELECT count(*) FROM sms.messages WHERE status = 'queued'")
say "queued: $queued; starting the SMSC"
smsc_start=${EPOCHREALTIME/./}
smsc_data=$out/smsc-data
[ "${BENCH_SMS_SMSC_STORE:-1}" = 1 ] || smsc_data=
"$smsc" "$smsc_port" "$out/smsc.log" 20 "$smsc_data" 2>"$out/logs/smsc.log" &
smsc_pid=$!
pids+=("$smsc_pid")
for ((i = 0; i < 6000; i++)); do
    done_n=$(sql "SELECT count(*) FROM sms.messages WHERE status = 'delivered' AND idempotency_key LIKE 'a-%'")
    [ "$done_n" -ge "$count" ] && break
    nap 0.05
done
drain_us=$((${EPOCHREALTIME/./} - smsc_start))
[ "$done_n" -ge "$count" ] || die "only $done_n of $count delivered after 300 s"
read -r sent_span tput < <(sql "SELECT round(extract(epoch FROM max(sent_at) - min(sent_at))::numeric, 2),
    round((count(*) / greatest(extract(epoch FROM max(sent_at) - min(sent_at)), 0.001))::numeric, 0)
    FROM sms.messages WHERE idempotency_key LIKE 'a-%'" | tr '|' ' ')
say "drained: $count sent in ${sent_span} s ($tput messages/s), all delivered $((drain_us / 1000)) ms after the SMSC started"

# (b) latency at a steady rate.
say "(b) $paced SMS at $rate/s"
"$client" "$api" "$cookies" "$csrf" "$tid" "$paced" 4 "$rate" b | tee "$out/paced.txt"
for ((i = 0; i < 600; i++)); do
    done_n=$(sql "SELECT count(*) FROM sms.messages WHERE status = 'delivered' AND idempotency_key LIKE 'b-%'")
    [ "$done_n" -ge "$paced" ] && break
    nap 0.1
done
latency() {
    sql "SELECT round(1000 * percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM $1 - created_at))::numeric, 1),
        round(1000 * percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM $1 - created_at))::numeric, 1),
        round(1000 * percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM $1 - created_at))::numeric, 1),
        round(1000 * max(extract(epoch FROM $1 - created_at))::numeric, 1)
        FROM sms.messages WHERE idempotency_key LIKE 'b-%' AND $1 IS NOT NULL" | tr '|' ' '
}
read -r s50 s95 s99 smax < <(latency sent_at)
read -r d50 d95 d99 dmax < <(latency delivered_at)
{
    echo "# SMS bench, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, window $NCC_SMS_SMPP_WINDOW"
    echo
    echo "(a) $count SMS accepted through the API: $(cat "$out/accept.txt")"
    echo "    drained to the SMSC: $count in ${sent_span} s = $tput messages/s;"
    echo "    all delivered (receipts applied) $((drain_us / 1000)) ms after the SMSC started"
    echo "(b) $paced SMS at $rate/s: $(cat "$out/paced.txt")"
    echo "    queue latency created -> sent (submit_sm_resp), ms: p50 $s50 p95 $s95 p99 $s99 max $smax"
    echo "    created -> delivered (receipt applied), ms: p50 $d50 p95 $d95 p99 $d99 max $dmax"
} | tee "$out/summary.md"
