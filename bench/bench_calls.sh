#!/usr/bin/env bash
# bench/bench_calls.sh: a busy day through the PBX webhook (issue 5,
# docs/performance.md "Calls"), on the optimised build with the whole chain
# running (ncc-directory, ncc-calls, ncc-history when built, the gateway):
#
#   (a) BENCH_CALLS (50,000: ten times Nakano's day) calls sent by
#       ncc-pbxsim as fast as the system takes them, BENCH_CONCURRENCY (16)
#       at a time: ringing, answered by one of BENCH_OPERATORS (20)
#       operators, BENCH_SEGMENTS (2) transcript segments, ended; every 10th
#       call abandoned. Figures: calls/s, webhook p50/p95/p99, and the screen
#       pop (answered webhook sent -> call.answered on that operator's push
#       stream) p50/p99, every operator's stream open;
#   (b) reconciliation: every call is in ncc-calls once with its final
#       state, and (with ncc-history) every answered call has exactly one
#       record: nothing lost, nothing doubled;
#   (p) the screen pop under a given load rather than at saturation:
#       BENCH_PACED_CALLS (2,000) calls started at BENCH_PACED_RATE (10) calls
#       a second, 40 times Nakano's busiest hour (about 900 calls): pop and
#       webhook p50/p99 there;
#   (c) the same again while ncc-history is killed (SIGKILL) a third of the
#       way in and started again 2 s later: the records must still reconcile
#       once it has caught up (outbox replay).
#
#   bench/bench_calls.sh <out folder>
# Environment: BUILD (default build), BENCH_CALLS, BENCH_CONCURRENCY,
# BENCH_SEGMENTS, BENCH_OPERATORS, BENCH_PACED_CALLS, BENCH_PACED_RATE (0 leaves
# the paced run out), BENCH_PORT_OFFSET (20000). Needs curl, jq,
# psql and python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_calls.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:?usage: bench/bench_calls.sh <out folder>}
mkdir -p "$out/logs" "$out/calls"
summary=$out/summary.tsv
calls=${BENCH_CALLS:-50000}
concurrency=${BENCH_CONCURRENCY:-16}
segments=${BENCH_SEGMENTS:-2}
operators=${BENCH_OPERATORS:-20}
paced_calls=${BENCH_PACED_CALLS:-2000}
paced_rate=${BENCH_PACED_RATE:-10}
bindir=$(bench_bindir)
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
services=(directory calls)
[ -x "$bindir/ncc-history" ] && services+=(history)
for d in "${services[@]}" gateway pbxsim; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
export NCC_GATEWAY_THREADS=$((operators + concurrency + 16))
bench_system_up calls "${services[@]}"
# The gateway's secret (load_bench_secrets made one).
secret=${NCC_PBX_WEBHOOK_SECRET:?the bench secrets have no NCC_PBX_WEBHOOK_SECRET}

# Operators with extensions, each signed in (their push streams).
extensions=()
stream_args=()
for ((o = 1; o <= operators; o++)); do
    login=benchop$o
    ext=$((3000 + o))
    password=Bench-Operator-$o-$$-Pass
    call POST /users -H 'Content-Type: application/json' \
        -d "{\"login\":\"$login\",\"name\":\"オペレーター$o\",\"roles\":[\"operator\"],\"extension\":\"$ext\",\"password\":\"$password\"}" |
        jq -e '.id' >/dev/null || die "cannot create operator $login"
    jar=$out/calls/op$o.jar
    curl -s -c "$jar" -H 'Content-Type: application/json' \
        -d "{\"login\":\"$login\",\"password\":\"$password\"}" "$api/session" |
        jq -e '.csrf_token' >/dev/null || die "operator $login cannot sign in"
    cookie=$(awk '$6 == "ncc_session" { print $7 }' "$jar")
    [ -n "$cookie" ] || die "no session cookie for $login"
    extensions+=("$ext")
    stream_args+=(--stream "$cookie")
done
ext_list=$(IFS=,; echo "${extensions[*]}")
db=$NCC_DATABASE_OWNER_URL
q() { psql "$db" -qAtc "$1"; }
has_history=0
if [ "$(q "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'history' AND column_name = 'call_id'")" -gt 0 ] 2>/dev/null; then
    history_table=$(q "SELECT table_name FROM information_schema.columns WHERE table_schema = 'history' AND column_name = 'call_id' AND table_name LIKE '%record%' LIMIT 1")
    [ -n "$history_table" ] && has_history=1
fi

# run ID [pbxsim options]: sends the calls; prints pbxsim's JSON.
run_calls() {
    local run=$1
    shift
    "$bindir/ncc-pbxsim" --url "http://127.0.0.1:$http_port" --secret "$secret" \
        --calls "$calls" --concurrency "$concurrency" --segments "$segments" \
        --extensions "$ext_list" --run "$run" "${stream_args[@]}" "$@" \
        >"$out/calls/$run.json" 2>"$out/calls/$run.err" || true
    [ -s "$out/calls/$run.json" ] || die "ncc-pbxsim failed: $(head -c 400 "$out/calls/$run.err")"
}

# reconcile RUN: every call once in ncc-calls; every answered call one record.
reconcile() {
    local run=$1 expected_answered=$2 label=$3
    local total states
    total=$(q "SELECT count(*) FROM calls.calls WHERE call_id LIKE 'sim-$run-%'")
    states=$(q "SELECT string_agg(state || '=' || n, ' ') FROM (SELECT state, count(*) n FROM calls.calls WHERE call_id LIKE 'sim-$run-%' GROUP BY state ORDER BY state) x")
    say "$label: ncc-calls holds $total calls ($states)"
    local calls_ok=ok
    [ "$total" = "$calls" ] || calls_ok=LOST
    summary_line calls "$label: calls in ncc-calls / sent" "$total/$calls" calls "= all" "$calls_ok"
    if [ "$has_history" = 1 ]; then
        local records distinct i
        for ((i = 0; i < 600; i++)); do
            records=$(q "SELECT count(*) FROM history.$history_table WHERE call_id LIKE 'sim-$run-%'")
            [ "$records" -ge "$expected_answered" ] && break
            nap 0.1
        done
        distinct=$(q "SELECT count(DISTINCT call_id) FROM history.$history_table WHERE call_id LIKE 'sim-$run-%'")
        local status=ok
        [ "$records" = "$expected_answered" ] && [ "$distinct" = "$expected_answered" ] || status=MISMATCH
        say "$label: $records records for $distinct calls; $expected_answered answered"
        summary_line calls "$label: records / answered calls (distinct calls)" \
            "$records/$expected_answered ($distinct)" records "= exactly one each" "$status"
    fi
}

# --- (a) + (b) ------------------------------------------------------------------------------
run_a=a$$
say "sending $calls calls, $concurrency at a time, $operators operators' streams open"
run_calls "$run_a"
j=$out/calls/$run_a.json
say "$(cat "$j")"
summary_line calls "webhook throughput ($calls calls, 4 requests each)" "$(jq -r .calls_per_s "$j")" calls/s "" info
summary_line calls "webhook latency p50" "$(jq -r .webhook_ms.p50 "$j")" ms "" info
summary_line calls "webhook latency p99" "$(jq -r .webhook_ms.p99 "$j")" ms "" info
summary_line calls "screen pop at saturation p50 ($(jq -r .pops "$j") pops)" "$(jq -r .pop_ms.p50 "$j")" ms "" info
summary_line calls "screen pop at saturation p99" "$(jq -r .pop_ms.p99 "$j")" ms "" info
errors=$(jq -r .errors "$j")
[ "$errors" = 0 ] || say "$errors webhook requests failed (see $out/calls/$run_a.err)"
reconcile "$run_a" "$(jq -r .answered "$j")" "run a"

# --- (p) the screen pop at a given load ----------------------------------------------------
if [ "$paced_rate" != 0 ]; then
    run_p=p$$
    say "sending $paced_calls calls at $paced_rate calls/s"
    calls_saved=$calls
    calls=$paced_calls
    run_calls "$run_p" --rate "$paced_rate"
    jp=$out/calls/$run_p.json
    say "$(cat "$jp")"
    pop_status=ok
    awk -v m="$(jq -r .pop_ms.p99 "$jp")" 'BEGIN { exit !(m < 100) }' || pop_status=over
    summary_line calls "screen pop at $paced_rate calls/s p50 ($(jq -r .pops "$jp") pops)" "$(jq -r .pop_ms.p50 "$jp")" ms "" info
    summary_line calls "screen pop at $paced_rate calls/s p99" "$(jq -r .pop_ms.p99 "$jp")" ms "< 100" "$pop_status"
    summary_line calls "webhook latency at $paced_rate calls/s p99" "$(jq -r .webhook_ms.p99 "$jp")" ms "" info
    reconcile "$run_p" "$(jq -r .answered "$jp")" "run p (paced)"
    calls=$calls_saved
fi

# --- (c) ncc-history killed and restarted mid-run ------------------------------------------
if [ "$has_history" = 1 ]; then
    run_c=c$$
    history_index=-1
    for i in "${!services[@]}"; do [ "${services[$i]}" = history ] && history_index=$i; done
    history_pid=${pids[$history_index]}
    expected_s=$(jq -r '.seconds' "$j")
    run_calls "$run_c" &
    sender=$!
    nap "$(awk -v s="$expected_s" 'BEGIN { printf "%.1f", s / 3 }')"
    kill -KILL "$history_pid" 2>/dev/null || true
    say "killed ncc-history ($history_pid); starting it again in 2 s"
    nap 2
    "$bindir/ncc-history" >>"$out/logs/calls-history.log" 2>&1 </dev/null &
    pids+=($!)
    wait "$sender" || true
    jc=$out/calls/$run_c.json
    say "$(cat "$jc")"
    summary_line calls "with ncc-history killed mid-run: throughput" "$(jq -r .calls_per_s "$jc")" calls/s "" info
    reconcile "$run_c" "$(jq -r .answered "$jc")" "run c (history killed)"
fi
rm -f "$out"/calls/*.jar "$cookies"
