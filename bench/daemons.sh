#!/usr/bin/env bash
# bench/daemons.sh: start-to-ready time and idle resident memory of each daemon
# (docs/performance.md). For each daemon, BENCH_REPS times:
#   - exec it with the database already up (the first start of a fresh
#     database also applies the migrations: the median hides that one);
#   - start-to-ready: from just before the exec to the first 200 from /readyz,
#     polled every 2 ms over bash's /dev/tcp (no fork per poll);
#   - idle memory: VmRSS from /proc/<pid>/status after BENCH_IDLE seconds more
#     with no traffic (its parts RssAnon and RssFile, and VmHWM, the peak,
#     are recorded too);
#   - then SIGTERM; in the last repetition the time it takes to exit is
#     measured too (earlier ones drain while the next daemon is measured).
# Results: <out>/daemons.tsv (one line per start), lines in <out>/summary.tsv.
#
#   bench/daemons.sh <out folder>
# Environment: BUILD (default build), NCC_DATABASE_URL (else scripts/pg.sh
# start and var/env), BENCH_REPS (3), BENCH_IDLE (2 seconds),
# BENCH_DAEMONS (default: every service, then the gateway when built),
# BENCH_PORT_OFFSET (20000: ports 27100+i, 27200+i, 29100+i).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=daemons.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:?usage: bench/daemons.sh <out folder>}
mkdir -p "$out/logs" "$out/memory"
summary=$out/summary.tsv
reps=${BENCH_REPS:-3}
idle=${BENCH_IDLE:-2}
bindir=$(bench_bindir)
goal_rss_kib=$((16 * 1024))
goal_ready_us=1000000

if [ -z "${NCC_DATABASE_URL:-}" ]; then
    scripts/pg.sh start >/dev/null
    # shellcheck disable=SC1091
    . var/env
fi
load_bench_secrets
export_bench_endpoints
export NCC_LOG_LEVEL=${NCC_LOG_LEVEL:-info}

# The gateway's own ports, moved like the services' (see bench/gateway.sh).
gateway_https_port=$((8443 + bench_port_offset))
gateway_health_port=$((9190 + bench_port_offset))
export NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:$gateway_health_port
export NCC_HTTPS_LISTEN=127.0.0.1:${gateway_https_port}s
unset NCC_HTTP_LISTEN
export NCC_TLS_CERT=$out/tls/bench.pem
export NCC_WEB_ROOT=$top/gateway/web

if [ -n "${BENCH_DAEMONS:-}" ]; then
    read -r -a daemons <<<"${BENCH_DAEMONS//,/ }"
else
    daemons=("${bench_services[@]}")
    [ -x "$bindir/ncc-gateway" ] && daemons+=(gateway)
fi

health_port_of() {
    local i
    if [ "$1" = gateway ]; then
        echo "$gateway_health_port"
    else
        i=$(service_index "$1") || die "unknown daemon $1"
        bench_health_port "$i"
    fi
}

# Every port a daemon of the set would bind must be free.
ports=()
for d in "${daemons[@]}"; do
    if [ "$d" = gateway ]; then
        ports+=("$gateway_https_port" "$gateway_health_port")
        make_certificate "$NCC_TLS_CERT"
    else
        i=$(service_index "$d") || die "unknown daemon $d"
        ports+=("$(bench_rpc_port "$i")" "$(bench_pub_port "$i")" "$(bench_health_port "$i")")
    fi
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
require_free_ports "${ports[@]}"

tsv=$out/daemons.tsv
printf 'daemon\trep\tready_us\tvmrss_kib\trss_anon_kib\trss_file_kib\tpss_kib\tvmhwm_kib\tthreads\tstop_ms\n' >"$tsv"

# Daemons asked to stop but perhaps not gone yet: stopped (or killed) at exit.
stopping=()
cleanup() {
    local pid i
    for pid in "${stopping[@]+"${stopping[@]}"}"; do
        for ((i = 0; i < 1000; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            nap 0.01
        done
        if kill -0 "$pid" 2>/dev/null &&
            tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q ncc-; then
            say "pid $pid did not stop within 10 s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}
trap cleanup EXIT

# One start of daemon $1. Prints
# "pid ready_us rss_kib anon_kib file_kib pss_kib hwm_kib threads stop_ms".
# With $3 = wait, it waits for the daemon to exit after SIGTERM and times it
# (stop_ms); otherwise it only sends SIGTERM (stop_ms -1) so that the run goes
# on while the daemon drains, and the caller makes sure it is gone later.
measure_once() {
    local d=$1 rep=$2 how=$3 port log start pid ready rss anon file pss hwm threads t0 t1 stop_ms=-1
    port=$(health_port_of "$d")
    log=$out/logs/$d.$rep.log
    start=$EPOCHREALTIME
    "$bindir/ncc-$d" >"$log" 2>&1 </dev/null &
    pid=$!
    if ! ready=$(wait_ready "$pid" "$port" 30 "$start"); then
        say "ncc-$d (pid $pid) did not become ready within 30 s; last lines of $log:"
        tail -n 20 "$log" | sed 's/^/    /' >&2
        stop_pid "$pid"
        return 1
    fi
    nap "$idle"
    if ! is_alive "$pid"; then
        say "ncc-$d exited while idle; see $log"
        return 1
    fi
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")
    anon=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status")
    file=$(awk '/^RssFile:/ {print $2}' "/proc/$pid/status")
    pss=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup")
    hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    threads=$(awk '/^Threads:/ {print $2}' "/proc/$pid/status")
    if [ "$how" = wait ]; then
        # Where the resident pages are: per mapped file (shared libraries are
        # shared with every other process mapping them) and anonymous memory.
        {
            grep -E '^(Rss|Pss|Pss_Anon|Pss_File|Anonymous):' "/proc/$pid/smaps_rollup" || true
            echo "--- resident KiB per mapping"
            awk '/^[0-9a-f]+-[0-9a-f]+ / {name = $6 == "" ? "[anonymous]" : $6}
                /^Rss:/ {rss[name] += $2}
                END {for (n in rss) if (rss[n] > 0) print rss[n], n}' "/proc/$pid/smaps" |
                sort -rn
        } >"$out/memory/$d.txt" 2>/dev/null || true
        t0=${EPOCHREALTIME/./}
        stop_pid "$pid"
        t1=${EPOCHREALTIME/./}
        stop_ms=$(((t1 - t0) / 1000))
    else
        kill -TERM "$pid"
    fi
    echo "$pid $ready $rss $anon $file $pss $hwm $threads $stop_ms"
}

# Repetition-major order: a daemon comes back only after every other one has
# had its turn, so its ports are free again even when it drains slowly.
declare -A readies=() rsses=() anons=() files=() psses=() hwms=() stops=() nthreads=()
for ((rep = 1; rep <= reps; rep++)); do
    for d in "${daemons[@]}"; do
        how=nowait
        [ "$rep" = "$reps" ] && how="wait"
        line=$(measure_once "$d" "$rep" "$how") || die "ncc-$d failed to start"
        read -r pid ready rss anon file pss hwm threads stop_ms <<<"$line"
        [ "$how" = wait ] || stopping+=("$pid")
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$d" "$rep" "$ready" "$rss" "$anon" \
            "$file" "$pss" "$hwm" "$threads" "$stop_ms" >>"$tsv"
        anons[$d]+="$anon "
        files[$d]+="$file "
        psses[$d]+="$pss "
        readies[$d]+="$ready "
        rsses[$d]+="$rss "
        hwms[$d]+="$hwm "
        nthreads[$d]=$threads
        [ "$stop_ms" = -1 ] || stops[$d]=$stop_ms
    done
done

printf '%-10s %9s %10s %9s %9s %8s %10s %8s %8s\n' daemon ready_ms vmrss_mib anon_mib \
    file_mib pss_mib vmhwm_mib threads stop_ms
for d in "${daemons[@]}"; do
    # shellcheck disable=SC2086 # word splitting wanted: the values of each rep
    ready=$(median ${readies[$d]})
    # shellcheck disable=SC2086
    rss=$(median ${rsses[$d]})
    # shellcheck disable=SC2086
    anon=$(median ${anons[$d]})
    # shellcheck disable=SC2086
    file=$(median ${files[$d]})
    # shellcheck disable=SC2086
    pss=$(median ${psses[$d]})
    # shellcheck disable=SC2086
    hwm=$(median ${hwms[$d]})
    awk -v d="$d" -v r="$ready" -v m="$rss" -v a="$anon" -v f="$file" -v p="$pss" -v h="$hwm" \
        -v t="${nthreads[$d]}" -v s="${stops[$d]}" 'BEGIN {
        printf "%-10s %9.1f %10.2f %9.2f %9.2f %8.2f %10.2f %8s %8s\n",
            d, r / 1000, m / 1024, a / 1024, f / 1024, p / 1024, h / 1024, t, s}'
    status=met
    awk -v v="$ready" -v g="$goal_ready_us" 'BEGIN {exit !(v < g)}' || status=MISSED
    summary_line daemons "ncc-$d start-to-ready" "$(awk -v v="$ready" 'BEGIN {printf "%.1f", v / 1000}')" \
        ms "< 1000" "$status"
    status=met
    awk -v v="$rss" -v g="$goal_rss_kib" 'BEGIN {exit !(v < g)}' || status=MISSED
    summary_line daemons "ncc-$d idle VmRSS" "$(awk -v v="$rss" 'BEGIN {printf "%.2f", v / 1024}')" \
        MiB "< 16" "$status"
    summary_line daemons "ncc-$d idle PSS (shared pages split)" \
        "$(awk -v v="$pss" 'BEGIN {printf "%.2f", v / 1024}')" MiB "" ""
    summary_line daemons "ncc-$d stop after SIGTERM" "${stops[$d]}" ms "" ""
done
