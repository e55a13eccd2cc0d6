#!/usr/bin/env bash
# bench/bench_sms_fault.sh: the SMS fault test (issue 8, docs/sms.md
# "Figures"). BENCH_SMS_FAULT_COUNT (10,000) SMS are sent through the API
# (8 clients, each request repeated with its idempotency key until
# accepted) while, every 0.5 to 3 s at random, ncc-sms, the SMSC or both are
# killed with SIGKILL and started again 0.2 to 1.5 s later. Then it waits
# until every message has a final status and shows that
#   - every message asked for is stored exactly once (none lost, none twice);
#   - every message ended delivered, failed or expired, with exactly one
#     final event, and its status is that event's;
#   - no message was accepted by the SMSC more than once (a submit whose
#     answer was lost is uncertain, never submitted again: docs/sms.md
#     "Delivery guarantees"); how many were reconciled from orphan receipts.
# The SMSC stores and forwards (bench_sms_smsc DATA_DIR: what it accepted is
# fsync'ed before its answer, and its receipts are sent after a restart).
# Settings for the run: NCC_SMS_LEASE_S=5 (a killed copy's messages are looked
# at again after 5 s), NCC_SMS_RECEIPT_TIMEOUT_S=30 and
# NCC_SMS_UNCERTAIN_WAIT_S=30 (a receipt that never came ends its message
# expired), NCC_SMS_MAX_ATTEMPTS=30.
#
#   bench/bench_sms_fault.sh [out folder]      (make bench-sms-fault)
# Environment: BUILD (default build), BENCH_SMS_FAULT_COUNT, BENCH_SMS_FAULT_RATE
# (sends per second, default 150), BENCH_PORT_OFFSET (22500). Needs curl, jq,
# python3 and psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_sms_fault.sh
export BENCH_PORT_OFFSET=${BENCH_PORT_OFFSET:-22500}
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:-$top/bench/results/sms-fault-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
count=${BENCH_SMS_FAULT_COUNT:-10000}
rate=${BENCH_SMS_FAULT_RATE:-150}
bindir=$(bench_bindir)
client=$(dirname "$bindir")/bench/bench_sms
smsc=$(dirname "$bindir")/bench/bench_sms_smsc
for f in "$bindir/ncc-directory" "$bindir/ncc-sms" "$bindir/ncc-gateway" "$client" "$smsc"; do
    [ -x "$f" ] || die "$f is not built (make BUILD=$build bench-sms-fault)"
done

smsc_port=$((2775 + bench_port_offset))
require_free_ports "$smsc_port"
export NCC_SMS_PROVIDER=smpp NCC_SMS_SMPP_HOST=127.0.0.1 NCC_SMS_SMPP_PORT=$smsc_port
export NCC_SMS_QUIET_START=0 NCC_SMS_QUIET_END=0 NCC_SMS_OPERATOR_PER_MINUTE=100000
export NCC_SMS_PER_NUMBER_PER_HOUR=1000 NCC_SMS_SMPP_RECONNECT_MAX_MS=500
export NCC_SMS_SMPP_ENQUIRE_S=2 NCC_SMS_LEASE_S=5 NCC_SMS_RECEIPT_TIMEOUT_S=30
export NCC_SMS_RETRY_BASE_MS=200 NCC_SMS_RETRY_MAX_MS=2000 NCC_SMS_MAX_ATTEMPTS=30
export NCC_SMS_UNCERTAIN_WAIT_S=30

smsc_pid=
smsc_start() {
    "$smsc" "$smsc_port" "$out/smsc-accepted.log" 20 "$out/smsc-data" 2>>"$out/logs/smsc.log" &
    smsc_pid=$!
    pids+=("$smsc_pid")
}
bench_system_up fault directory sms
owner=$NCC_DATABASE_OWNER_URL
sql() { psql "$owner" -Atc "$1"; }
sms_pid=${pids[1]}
sms_start() {
    "$bindir/ncc-sms" >>"$out/logs/fault-sms.log" 2>&1 </dev/null &
    sms_pid=$!
    pids+=("$sms_pid")
}
smsc_start
tid=$(call POST /sms-templates -H 'Content-Type: application/json' \
    -d '{"name":"fault","body":"{n}: 中野区役所からのお知らせです。"}' | jq -r .id)
[ "$tid" -gt 0 ] 2>/dev/null || die "cannot create the template"

# A random pause of 0.2 to 1.5 s, or of 0.5 to 3 s.
short_nap() { nap "$(printf '%d.%03d' 0 $((200 + RANDOM % 800)))"; }
long_nap() { nap "$(printf '%d.%03d' $((RANDOM % 3)) $((RANDOM % 1000)))"; }

say "sending $count SMS at $rate/s while killing ncc-sms and the SMSC at random"
"$client" "$api" "$cookies" "$csrf" "$tid" "$count" 8 "$rate" f >"$out/client.txt" 2>&1 &
client_pid=$!
kills_sms=0
kills_smsc=0
while is_alive "$client_pid"; do
    long_nap
    is_alive "$client_pid" || break
    case $((RANDOM % 3)) in
    0) kill -KILL "$sms_pid" 2>/dev/null && kills_sms=$((kills_sms + 1)); short_nap; sms_start ;;
    1) kill -KILL "$smsc_pid" 2>/dev/null && kills_smsc=$((kills_smsc + 1)); short_nap; smsc_start ;;
    *)
        kill -KILL "$sms_pid" 2>/dev/null && kills_sms=$((kills_sms + 1))
        kill -KILL "$smsc_pid" 2>/dev/null && kills_smsc=$((kills_smsc + 1))
        short_nap
        smsc_start
        sms_start
        ;;
    esac
done
wait "$client_pid" || die "the client failed: $(cat "$out/client.txt")"
say "client: $(cat "$out/client.txt"); ncc-sms killed $kills_sms times, the SMSC $kills_smsc times"

say "waiting until every message has a final status"
start=${EPOCHREALTIME/./}
for ((i = 0; i < 1800; i++)); do
    open_n=$(sql "SELECT count(*) FROM sms.messages WHERE status IN ('queued', 'sent')")
    [ "$open_n" = 0 ] && break
    nap 0.1
done
settle_s=$(((${EPOCHREALTIME/./} - start) / 1000000))
[ "$open_n" = 0 ] || say "still open after 180 s: $open_n"

stored=$(sql "SELECT count(*) FROM sms.messages WHERE idempotency_key LIKE 'f-%'")
distinct=$(sql "SELECT count(DISTINCT idempotency_key) FROM sms.messages WHERE idempotency_key LIKE 'f-%'")
statuses=$(sql "SELECT string_agg(status || ' ' || n, ', ' ORDER BY status) FROM (SELECT status, count(*) n FROM sms.messages GROUP BY status) s")
not_once=$(sql "SELECT count(*) FROM sms.messages m WHERE (SELECT count(*) FROM sms.message_events e WHERE e.message_id = m.id AND e.final) <> 1")
mismatch=$(sql "SELECT count(*) FROM sms.messages m JOIN sms.message_events e ON e.message_id = m.id AND e.final WHERE e.status <> m.status")
expired_why=$(sql "SELECT coalesce(string_agg(error || ' ' || n, ', '), '-') FROM (SELECT error, count(*) n FROM sms.messages WHERE status IN ('expired', 'failed') GROUP BY error) s")
retried=$(sql "SELECT count(*) FROM sms.messages WHERE attempts > 1")
uncertain=$(sql "SELECT count(*) FROM sms.messages WHERE uncertain_at IS NOT NULL")
reconciled=$(sql "SELECT count(DISTINCT message_id) FROM sms.message_events WHERE detail LIKE 'reconciled:%'")
uncertain_final=$(sql "SELECT coalesce(string_agg(status || ' ' || n, ', ' ORDER BY status), '-') FROM (SELECT status, count(*) n FROM sms.messages WHERE uncertain_at IS NOT NULL GROUP BY status) s")
orphans=$(sql "SELECT count(*) FROM sms.receipts WHERE to_index IS NOT NULL")
# The SMSC's own log: each accepted part, with the text "f-<i>: ..." it carried.
parts_taken=$(wc -l <"$out/smsc-accepted.log")
dup_at_smsc=$(awk '{ split($3, a, ":"); n[a[1]]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$out/smsc-accepted.log")
{
    echo "# SMS fault test, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores"
    echo
    echo "$count SMS asked at $rate/s by 8 clients: $(cat "$out/client.txt")"
    echo "ncc-sms killed (SIGKILL) $kills_sms times, the SMSC $kills_smsc times"
    echo "settled ${settle_s} s after the last send; still open: $open_n"
    echo "stored: $stored messages, $distinct distinct keys (asked: $count)"
    echo "final statuses: $statuses"
    echo "messages without exactly one final event: $not_once; status differing from it: $mismatch"
    echo "why not delivered: $expired_why"
    echo "messages that needed more than one attempt: $retried"
    echo "uncertain messages (answer lost): $uncertain, of which reconciled from orphan receipts: $reconciled; their final statuses: $uncertain_final"
    echo "orphan receipts taken (ids not known when they came): $orphans"
    echo "parts the SMSC accepted: $parts_taken; messages it accepted more than once: $dup_at_smsc"
} | tee "$out/summary.md"
[ "$stored" = "$count" ] && [ "$distinct" = "$count" ] && [ "$not_once" = 0 ] &&
    [ "$mismatch" = 0 ] && [ "$open_n" = 0 ] && [ "$dup_at_smsc" = 0 ] || die "FAILED: see $out/summary.md"
say "passed"
