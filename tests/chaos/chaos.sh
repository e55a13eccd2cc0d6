#!/usr/bin/env bash
# tests/chaos/chaos.sh: break things on purpose under a steady load, then reconcile (issue 10;
# docs/reliability.md). Run by `make chaos` (not by `make test`: it takes a few minutes).
#
# The whole system (every service and the gateway, optimised build) runs on ports of its own
# (CHAOS_PORT_OFFSET, default 21300) against a PostgreSQL cluster of its own under var/chaos
# (port CHAOS_PG_PORT, default 5439: scripts/pg.sh with NCC_VAR and NCC_PG_PORT), so restarting
# PostgreSQL disturbs nobody else. Under a steady load:
#   - calls: ncc-pbxsim at CHAOS_CALL_RATE calls/s (ringing, answered, 2 transcript segments,
#     ended; every 10th abandoned), each webhook retried with its event_id until a 2xx (--retry,
#     as a PBX must: docs/pbx-integration.md);
#   - records: POST /api/v1/records, CHAOS_RECORD_RATE a second, each with a unique marker in
#     its inquiry and an idempotency key, sent again until answered (at most 100 times);
#   - FAQ searches: GET /api/v1/faqs?q=..., CHAOS_FAQ_RATE a second;
#   - SMS: POST /api/v1/sms, CHAOS_SMS_RATE a second, each with its idempotency key, repeated
#     with the same key until a 2xx (for at most 30 s);
# these faults, one after the other, each once every daemon is ready again:
#   1. kill -9 of each daemon in turn (directory, calls, history, faq, sms, summary, report,
#      gateway), started again at once (as systemd Restart=always would);
#   2. PostgreSQL restarted (pg_ctl stop -m fast, start);
#   3. SIGSTOP of ncc-calls, ncc-history and ncc-sms in turn for CHAOS_PAUSE_S (12 s: past the
#      bus time-out of 3 s and the ZeroMQ heartbeat time-out of 3 s), then SIGCONT;
#   4. (tests/chaos/faults2.sh) ncc-history stopped while ncc-calls' outbox fills with tens of
#      thousands of events, then its catch-up; events pruned before it read them; ncc-history in
#      a network namespace of its own, cut from ncc-calls and then from everything (CHAOS_OUTBOX,
#      CHAOS_PARTITION; CHAOS_CLASSIC=0 skips 1-3).
# Then the load stops, the system settles, and the reconciliation checks:
#   - every call sent is in ncc-calls exactly once, ended (or abandoned when not answered), with
#     each of its events stored once;
#   - every answered call has exactly one interaction record (ncc-history follows ncc-calls'
#     events: none lost, none applied twice);
#   - every record answered 2xx is stored exactly once, under the id the client was given; a
#     record answered with an error or not at all is stored at most once (counted);
#   - every SMS answered 2xx is stored exactly once for its idempotency key;
#   - every daemon is ready again within CHAOS_READY_LIMIT_S (10 s) after each fault.
# Prints the figures (also in <out>/report.md) and exits non-zero when a check fails.
#
#   tests/chaos/chaos.sh [out folder]                      (make chaos)
# Environment: BUILD (default build), CHAOS_VAR (var/chaos: cluster and results), CHAOS_PORT_OFFSET,
# CHAOS_PG_PORT, CHAOS_CALL_RATE (3), CHAOS_RECORD_RATE (5), CHAOS_FAQ_RATE (5), CHAOS_SMS_RATE (3), CHAOS_PAUSE_S (12),
# CHAOS_GAP_S (3: load between faults), CHAOS_READY_LIMIT_S (10). Needs curl, jq, psql, python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=chaos.sh
export BENCH_PORT_OFFSET=${CHAOS_PORT_OFFSET:-21300}
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
# shellcheck source=tests/chaos/lib.sh
. "$top/tests/chaos/lib.sh"

chaos_var=${CHAOS_VAR:-$top/var/chaos} # its PostgreSQL cluster and results
out=${1:-$chaos_var/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" "$out/load"
bindir=$(bench_bindir)
call_rate=${CHAOS_CALL_RATE:-3}
record_rate=${CHAOS_RECORD_RATE:-5}
faq_rate=${CHAOS_FAQ_RATE:-5}
sms_rate=${CHAOS_SMS_RATE:-3}
pause_s=${CHAOS_PAUSE_S:-12}
gap_s=${CHAOS_GAP_S:-3}
ready_limit_s=${CHAOS_READY_LIMIT_S:-10}
# Outbox fill, events pruned unread, network partitions (CHAOS_OUTBOX, CHAOS_PARTITION, ...).
# shellcheck source=tests/chaos/faults2.sh
. "$top/tests/chaos/faults2.sh"
faults2_settings
run=c$$
daemons=(directory calls history faq sms summary report gateway)
for tool in curl jq psql python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in "${daemons[@]}" pbxsim; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done

# --- PostgreSQL of our own ---------------------------------------------------------------------
export NCC_VAR=$chaos_var NCC_PG_PORT=${CHAOS_PG_PORT:-5439}
mkdir -p "$NCC_VAR"
scripts/pg.sh status || require_free_ports "$NCC_PG_PORT"
scripts/pg.sh start || die "cannot start the chaos cluster (scripts/pg.sh with NCC_VAR=$NCC_VAR)"
# shellcheck disable=SC1091
. "$NCC_VAR/env"
pg_data=$(readlink -f "$NCC_VAR/pg")/data
faults2_setup

# --- the system ----------------------------------------------------------------------------------
export NCC_GATEWAY_THREADS=64
# SMS: no provider (messages wait queued: storage is what is reconciled), no rate limits.
export NCC_SMS_PROVIDER=none NCC_SMS_OPERATOR_PER_MINUTE=100000 NCC_SMS_PER_NUMBER_PER_HOUR=1000
bench_system_up chaos directory calls history faq sms summary report
owner=$NCC_DATABASE_OWNER_URL
q() { psql "$owner" -X -qAtc "$1"; }
declare -A pid_of=()
for i in "${!daemons[@]}"; do pid_of[${daemons[$i]}]=${pids[$i]}; done
loaders=()
chaos_cleanup() {
    local p
    for p in "${loaders[@]+"${loaders[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${loaders[@]+"${loaders[@]}"}"; do wait "$p" 2>/dev/null || true; done
    pids=()
    for d in "${daemons[@]}"; do
        [ -n "${pid_of[$d]:-}" ] && kill -CONT "${pid_of[$d]}" 2>/dev/null || true
        [ -n "${pid_of[$d]:-}" ] && pids+=("${pid_of[$d]}")
    done
    cleanup
    faults2_cleanup
    scripts/pg.sh stop >/dev/null 2>&1 || true
}
trap chaos_cleanup EXIT

health_port() {
    if [ "$1" = gateway ]; then echo "$gateway_health_port"; else bench_health_port "$(service_index "$1")"; fi
}
start_daemon() {
    "$bindir/ncc-$1" >>"$out/logs/chaos-$1.log" 2>&1 </dev/null &
    pid_of[$1]=$!
}
# Microseconds now.
now_us() { echo "${EPOCHREALTIME/./}"; }
# Waits until every daemon answers /readyz 200 (at most 60 s); prints the milliseconds since
# $1 (microseconds), or -1 when some daemon is still not ready.
wait_all_ready() {
    local since=$1 d deadline=$(($(now_us) + 60000000))
    for d in "${daemons[@]}"; do
        until http_ok 127.0.0.1 "$(health_port "$d")" /readyz; do
            [ "$(now_us)" -lt "$deadline" ] || { echo -1; return 1; }
            nap 0.01
        done
    done
    echo $((($(now_us) - since) / 1000))
}

# Operators with extensions (the answered calls go to them), an SMS template, two FAQs.
extensions=()
for o in 1 2 3 4; do
    ext=$((3100 + o))
    call POST /users -H 'Content-Type: application/json' \
        -d "{\"login\":\"chaosop$o\",\"name\":\"オペレーター$o\",\"roles\":[\"operator\"],\"extension\":\"$ext\",\"password\":\"Chaos-Operator-$o-$$-Pass\"}" |
        jq -e .id >/dev/null || die "cannot create operator chaosop$o"
    extensions+=("$ext")
done
tid=$(call POST /sms-templates -H 'Content-Type: application/json' \
    -d '{"name":"chaos","body":"{n}: 中野区役所からのお知らせです。"}' | jq -r .id)
[ "$tid" -gt 0 ] 2>/dev/null || die "cannot create the SMS template"
for text in '住民票の写しはどこで取れますか|区民課の窓口、コンビニ交付でも取れます' \
    '粗大ごみの出し方|粗大ごみ受付センターに申し込んでください'; do
    fid=$(call POST /faqs -H 'Content-Type: application/json' \
        -d "{\"question\":\"${text%%|*}\",\"answer\":\"${text#*|}\",\"visibility\":\"public\"}" | jq -r .id)
    call POST "/faqs/$fid/approve" -H 'Content-Type: application/json' -d '{"version":1}' >/dev/null
done

# --- the load ------------------------------------------------------------------------------------
# record_loop, faq_loop, sms_loop: tests/chaos/lib.sh (one gateway here).
apis=("$api")

# Faults: 8 kills, a database restart, 3 pauses; about (1 + gap) s each, pauses pause_s more.
expected_s=$((8 * (2 + gap_s) + (10 + gap_s) + 3 * (pause_s + 4 + gap_s) + 2 * gap_s))
[ "$classic" = 1 ] || expected_s=$((2 * gap_s))
expected_s=$((expected_s + $(faults2_seconds)))
calls=$((call_rate * expected_s))
ext_list=$(IFS=,; echo "${extensions[*]}")
say "load for about ${expected_s} s: $calls calls at $call_rate/s, records $record_rate/s, FAQ searches $faq_rate/s, SMS $sms_rate/s"
"$bindir/ncc-pbxsim" --url "http://127.0.0.1:$http_port" --secret "$NCC_PBX_WEBHOOK_SECRET" \
    --calls "$calls" --concurrency 8 --segments 2 --rate "$call_rate" --retry 90 \
    --extensions "$ext_list" --run "$run" >"$out/load/pbxsim.json" 2>"$out/load/pbxsim.err" &
pbxsim_pid=$!
loaders+=("$pbxsim_pid")
record_loop &
loaders+=($!)
faq_loop &
loaders+=($!)
sms_loop &
loaders+=($!)
nap "$gap_s"

# --- the faults ----------------------------------------------------------------------------------
faults=$out/faults.tsv
printf 'fault\tdaemon\tback to ready (ms)\tstarted (us)\n' >"$faults"
if [ "$classic" = 1 ]; then # kills, PostgreSQL restart, pauses (CHAOS_CLASSIC=0 skips them)
    for d in "${daemons[@]}"; do
        kill -KILL "${pid_of[$d]}" 2>/dev/null || die "ncc-$d was not running before its kill"
        wait "${pid_of[$d]}" 2>/dev/null || true
        killed_at=$(now_us)
        start_daemon "$d"
        ms=$(wait_all_ready "$killed_at") || true
        say "kill -9 ncc-$d: every daemon ready again after $ms ms"
        printf 'kill -9\t%s\t%s\t%s\n' "$d" "$ms" "$killed_at" >>"$faults"
        nap "$gap_s"
    done

    say "restarting PostgreSQL"
    stopped_at=$(now_us)
    runuser_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
    runuser_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" -m fast -w stop >/dev/null
    nap 2
    runuser_pg /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" -l "$NCC_VAR/pg/server.log" -w start >/dev/null
    ms=$(wait_all_ready "$stopped_at") || true
    say "PostgreSQL down 2 s: every daemon ready again $ms ms after the stop"
    printf 'PostgreSQL stop, 2 s, start\tall\t%s\t%s\n' "$ms" "$stopped_at" >>"$faults"
    nap "$gap_s"

    for d in calls history sms; do
        kill -STOP "${pid_of[$d]}"
        stopped_at=$(now_us)
        nap "$pause_s"
        kill -CONT "${pid_of[$d]}"
        resumed_at=$(now_us)
        ms=$(wait_all_ready "$resumed_at") || true
        say "SIGSTOP ncc-$d for $pause_s s: every daemon ready $ms ms after SIGCONT"
        printf 'SIGSTOP %s s, SIGCONT\t%s\t%s\t%s\n' "$pause_s" "$d" "$ms" "$stopped_at" >>"$faults"
        nap "$gap_s"
    done
fi
faults2_run

# --- settle and reconcile --------------------------------------------------------------------------
say "faults done; stopping the load (pbxsim finishes its calls)"
for p in "${loaders[@]:1}"; do kill "$p" 2>/dev/null || true; done
for p in "${loaders[@]:1}"; do wait "$p" 2>/dev/null || true; done
wait "$pbxsim_pid" || true
loaders=()
[ -s "$out/load/pbxsim.json" ] || die "ncc-pbxsim printed nothing: $(head -c 400 "$out/load/pbxsim.err")"
answered=$(jq -r .answered "$out/load/pbxsim.json")
pbx_errors=$(jq -r .errors "$out/load/pbxsim.json")
pbx_retries=$(jq -r .retries "$out/load/pbxsim.json")
pbx_events=$(jq -r .events "$out/load/pbxsim.json")

settle_start=$(now_us)
for ((i = 0; i < 1200; i++)); do
    records=$(q "SELECT count(*) FROM history.records WHERE call_id LIKE 'sim-$run-%'")
    [ "$records" -ge "$answered" ] && break
    nap 0.1
done
settle_ms=$((($(now_us) - settle_start) / 1000))
nap 2 # anything applied twice would show by now

reconcile_requests
reconcile_calls "$calls" "$answered"
ready_max=$(awk -F'\t' 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' "$faults")
ready_bad=$(awk -F'\t' -v l=$((ready_limit_s * 1000)) 'NR > 1 && ($3 < 0 || $3 > l)' "$faults" | wc -l)
all_ready=$(wait_all_ready "$(now_us)" >/dev/null && echo yes || echo no)
sanitizer_report='ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: UndefinedBehaviorSanitizer|[.](c|h):[0-9]+:[0-9]+: runtime error:'
crashes=$( (grep -Eal "$sanitizer_report|Segmentation fault|Aborted" "$out"/logs/*.log 2>/dev/null || true) | wc -l)

{
    echo "# Chaos run $run, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $build"
    echo
    echo "| fault | daemon | every daemon ready again after (ms) | records: errors (stored anyway) | FAQ searches: errors |"
    echo "| --- | --- | ---: | ---: | ---: |"
    # Errors answered between a fault's start and the next one's, by kind.
    awk -v recs="$out/load/records-stored.tsv" -v rlog="$out/load/records.log" -v flog="$out/load/faqs.log" '
        BEGIN { FS = "\t"
                while ((getline l < recs) > 0) { split(l, f, "\t"); stored[f[1]] = 1 }
                while ((getline l < rlog) > 0) { split(l, f, " "); if (f[2] !~ /^2/) { rn++; rt[rn] = f[4]; rs[rn] = (f[1] in stored) } }
                while ((getline l < flog) > 0) { split(l, f, " "); if (f[2] !~ /^2/) { fn++; ft[fn] = f[4] } } }
        NR > 1 { n++; name[n] = $1; d[n] = $2; ms[n] = $3; t[n] = $4 }
        END { t[n + 1] = 9e18
              for (i = 1; i <= n; i++) {
                  re = 0; rst = 0; fe = 0
                  for (j = 1; j <= rn; j++) if (rt[j] >= t[i] && rt[j] < t[i + 1]) { re++; rst += rs[j] }
                  for (j = 1; j <= fn; j++) if (ft[j] >= t[i] && ft[j] < t[i + 1]) fe++
                  printf "| %s | %s | %s | %d (%d) | %d |\n", name[i], d[i], ms[i], re, rst, fe } }' "$faults"
    echo
    echo "Load: calls $call_rate/s ($calls calls, $pbx_events webhook requests, $pbx_retries retried), records $record_rate/s, FAQ searches $faq_rate/s, SMS $sms_rate/s; records of the calls settled ${settle_ms} ms after the last call."
    echo
    echo "| check | figure | |"
    echo "| --- | --- | --- |"
    check_load "$calls" "$answered" "$pbx_errors"
    check "faults after which a daemon took over ${ready_limit_s} s to be ready" "$ready_bad" 0
    check "every daemon ready at the end" "$all_ready" yes
    check "daemon logs with a crash or sanitizer report" "$crashes" 0
    faults2_checks
    echo
    echo "Answered with an error (allowed: the client saw it): records $rec_err of $rec_asked (${err_codes:-none}), of which stored anyway: $rec_err_stored; FAQ searches $((faq_asked - faq_ok)) of $faq_asked (${faq_codes:-none})."
    echo "Longest time back to ready: $ready_max ms."
    faults2_report
} >"$out/report.md"
cat "$out/report.md"
if [ ${#failed[@]} -gt 0 ]; then
    say "FAILED: ${failed[*]} (logs in $out)"
    exit 1
fi
say "passed; report: $out/report.md"
