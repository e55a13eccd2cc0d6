#!/usr/bin/env bash
# bench/gateway.sh: requests/s and latency of the gateway for a small JSON
# request that crosses the bus (POST /api/v1/services/directory/ping ->
# ncc.Ping -> ncc-directory -> ncc.Pong -> JSON), over TLS and plain HTTP,
# beside bench/bare_civetweb answering the same JSON with no bus (the
# ceiling), in the same run (docs/performance.md).
#
#   bench/gateway.sh <out folder>
#
# Every target gets a short untimed warm-up, then BENCH_REPS rounds of
# BENCH_DURATION seconds each, the targets interleaved inside each round so
# that slow drift on the shared machine hits them alike; medians are reported.
# wrk runs on the same two cores as the servers: its CPU time is recorded.
# Results: <out>/gateway.tsv (one line per wrk run), <out>/wrk/*.txt (wrk's
# own output), lines in <out>/summary.tsv.
#
# Environment: BUILD (default build), NCC_DATABASE_URL (else scripts/pg.sh
# start and var/env), BENCH_REPS (3), BENCH_DURATION (10 s), BENCH_WARMUP
# (2 s), BENCH_CONNECTIONS (64), BENCH_WRK_THREADS (2), BENCH_GATEWAY_THREADS
# (worker threads per listener for the gateway and the bare server; default:
# the gateway's own default), BENCH_PORT_OFFSET (20000),
# BENCH_GATEWAY_LOG_LEVEL (info), BENCH_TARGETS (a subset of "gateway-https
# gateway-http bare-https bare-http"), NCC_BENCH_COOKIE / NCC_BENCH_CSRF (a
# session, when the route needs one).
# The gateway logs one line per request (84 MB for a full run): its log is
# compressed at the end.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=gateway.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:?usage: bench/gateway.sh <out folder>}
mkdir -p "$out/logs" "$out/wrk"
summary=$out/summary.tsv
reps=${BENCH_REPS:-3}
duration=${BENCH_DURATION:-10}
warmup=${BENCH_WARMUP:-2}
connections=${BENCH_CONNECTIONS:-64}
wrk_threads=${BENCH_WRK_THREADS:-2}
bindir=$(bench_bindir)
benchdir=$(dirname "$bindir")/bench
goal_rate=20000

command -v wrk >/dev/null || die "wrk is not installed (apt-get install wrk)"
for p in "$bindir/ncc-directory" "$bindir/ncc-gateway" "$benchdir/bare_civetweb"; do
    [ -x "$p" ] || die "$p is not built (make BUILD=$build bench)"
done

# Worker threads per listener: the gateway's own default (from its --help),
# given to the bare server as well.
default_threads=$("$bindir/ncc-gateway" --help 2>/dev/null |
    sed -n 's/^ *NCC_GATEWAY_THREADS .*default "\([0-9]*\)".*/\1/p')
server_threads=${BENCH_GATEWAY_THREADS:-${default_threads:-16}}

if [ -z "${NCC_DATABASE_URL:-}" ]; then
    scripts/pg.sh start >/dev/null
    # shellcheck disable=SC1091
    . var/env
fi
load_bench_secrets
export_bench_endpoints

dir_index=$(service_index directory)
https_port=$((8443 + bench_port_offset))
http_port=$((8080 + bench_port_offset))
gateway_health_port=$((9190 + bench_port_offset))
bare_https_port=$((8444 + bench_port_offset))
bare_http_port=$((8081 + bench_port_offset))
require_free_ports "$(bench_rpc_port "$dir_index")" "$(bench_pub_port "$dir_index")" \
    "$(bench_health_port "$dir_index")" "$https_port" "$http_port" "$gateway_health_port" \
    "$bare_https_port" "$bare_http_port"

cert=$out/tls/bench.pem
make_certificate "$cert"

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]+"${pids[@]}"}"; do
        stop_pid "$pid"
    done
    [ -s "$out/logs/gateway.log" ] && gzip -f -1 "$out/logs/gateway.log"
    return 0
}
trap cleanup EXIT

say "gateway and bare server: $server_threads worker threads per listener, keep-alive;" \
    "wrk -t$wrk_threads -c$connections, ${duration} s x $reps rounds (+ ${warmup} s warm-up)"
printf 'server_threads=%s wrk_threads=%s connections=%s duration_s=%s reps=%s\n' \
    "$server_threads" "$wrk_threads" "$connections" "$duration" "$reps" >"$out/gateway.conf"

# --- servers ------------------------------------------------------------------

start=$EPOCHREALTIME
NCC_LOG_LEVEL=${BENCH_DIRECTORY_LOG_LEVEL:-info} "$bindir/ncc-directory" \
    >"$out/logs/directory.log" 2>&1 </dev/null &
directory_pid=$!
pids+=("$directory_pid")
wait_ready "$directory_pid" "$(bench_health_port "$dir_index")" 30 "$start" >/dev/null ||
    die "ncc-directory is not ready; see $out/logs/directory.log"

start=$EPOCHREALTIME
NCC_HTTPS_LISTEN=127.0.0.1:${https_port}s NCC_HTTP_LISTEN=127.0.0.1:$http_port \
    NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:$gateway_health_port NCC_TLS_CERT=$cert \
    NCC_WEB_ROOT=$top/gateway/web NCC_GATEWAY_THREADS=$server_threads \
    NCC_LOG_LEVEL=${BENCH_GATEWAY_LOG_LEVEL:-info} \
    "$bindir/ncc-gateway" >"$out/logs/gateway.log" 2>&1 </dev/null &
gateway_pid=$!
pids+=("$gateway_pid")
wait_ready "$gateway_pid" "$gateway_health_port" 30 "$start" >/dev/null ||
    die "ncc-gateway is not ready; see $out/logs/gateway.log"

# One request by hand: it must answer 200 with a Pong, and its body becomes the
# bare server's answer (same bytes).
auth=()
[ -n "${NCC_BENCH_COOKIE:-}" ] && auth+=(-H "Cookie: $NCC_BENCH_COOKIE")
[ -n "${NCC_BENCH_CSRF:-}" ] && auth+=(-H "X-CSRF-Token: $NCC_BENCH_CSRF")
probe() { # url body-file -> HTTP status
    curl -ksS -o "$2" -w '%{http_code}' -m 10 -X POST -H 'Content-Type: application/json' \
        "${auth[@]+"${auth[@]}"}" --data '{"message":"ping from wrk"}' "$1" || true
}
path=/api/v1/services/directory/ping
status=$(probe "https://127.0.0.1:$https_port$path" "$out/gateway_reply.json")
if [ "$status" != 200 ]; then
    say "POST https://127.0.0.1:$https_port$path answered $status:"
    head -c 500 "$out/gateway_reply.json" >&2 || true
    echo >&2
    if [ "$status" = 401 ] || [ "$status" = 403 ]; then
        say "the route needs a session: set NCC_BENCH_COOKIE and NCC_BENCH_CSRF"
    fi
    exit 1
fi
grep -q '"service" *: *"directory"' "$out/gateway_reply.json" ||
    die "the gateway's answer does not name the directory service: $(head -c 300 "$out/gateway_reply.json")"
status=$(probe "http://127.0.0.1:$http_port$path" "$out/gateway_reply_http.json")
[ "$status" = 200 ] || die "POST http://127.0.0.1:$http_port$path answered $status"

# The bare server mirrors the gateway's civetweb settings (gateway/gateway.c).
security_headers=$'X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\nContent-Security-Policy: default-src \'self\'; frame-ancestors \'none\''
"$benchdir/bare_civetweb" --listen "127.0.0.1:$bare_http_port,127.0.0.1:${bare_https_port}s" \
    --threads "$server_threads" --cert "$cert" --body-file "$out/gateway_reply.json" \
    --option keep_alive_timeout_ms=5000 --option request_timeout_ms=30000 \
    --option tcp_nodelay=1 --option ssl_protocol_version=4 \
    --option 'ssl_cipher_list=ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305' \
    --option "additional_header=$security_headers" \
    >"$out/logs/bare_civetweb.log" 2>&1 </dev/null &
bare_pid=$!
pids+=("$bare_pid")
for ((i = 0; i < 500; i++)); do
    port_in_use "$bare_http_port" && port_in_use "$bare_https_port" && break
    is_alive "$bare_pid" || die "bare_civetweb exited; see $out/logs/bare_civetweb.log"
    nap 0.01
done
status=$(probe "https://127.0.0.1:$bare_https_port$path" "$out/bare_reply.json")
[ "$status" = 200 ] || die "bare_civetweb answered $status"

# --- wrk ------------------------------------------------------------------------

read -r -a targets <<<"${BENCH_TARGETS:-gateway-https gateway-http bare-https bare-http}"
declare -A url=(
    [gateway-https]=https://127.0.0.1:$https_port
    [gateway-http]=http://127.0.0.1:$http_port
    [bare-https]=https://127.0.0.1:$bare_https_port
    [bare-http]=http://127.0.0.1:$bare_http_port
)
declare -A server_pid=(
    [gateway-https]=$gateway_pid [gateway-http]=$gateway_pid
    [bare-https]=$bare_pid [bare-http]=$bare_pid
)

# CPU ticks (user + system) used so far by process $1 (its threads included).
cpu_ticks() {
    awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$1/stat"
}

# CPU ticks every process on the machine has used so far (user, nice,
# system, irq, softirq): what is left after wrk and the servers is the other
# engineers' work on the shared cores.
machine_ticks() {
    awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
}
clk_tck=$(getconf CLK_TCK)

# One wrk run: target, seconds, label. Prints the NCC_RESULT fields plus the
# CPU (in cores) of wrk, the server and the directory daemon during the run.
run_wrk() {
    local target=$1 seconds=$2 label=$3 file s0 d0 m0 s1 d1 m1 times
    file=$out/wrk/$label.txt
    s0=$(cpu_ticks "${server_pid[$target]}")
    d0=$(cpu_ticks "$directory_pid")
    m0=$(machine_ticks)
    TIMEFORMAT='%R %U %S'
    { time NCC_BENCH_LABEL=$label wrk -t"$wrk_threads" -c"$connections" -d"${seconds}s" \
        --timeout 5s -s "$top/bench/wrk_ping.lua" "${url[$target]}" >"$file" 2>&1; } 2>"$file.time"
    s1=$(cpu_ticks "${server_pid[$target]}")
    d1=$(cpu_ticks "$directory_pid")
    m1=$(machine_ticks)
    read -r times <"$file.time"
    local result
    result=$(grep '^NCC_RESULT ' "$file" | head -1) || die "wrk gave no result; see $file"
    awk -v r="$result" -v t="$times" -v s=$((s1 - s0)) -v d=$((d1 - d0)) -v m=$((m1 - m0)) \
        -v hz="$clk_tck" 'BEGIN {
        n = split(t, x, " "); wall = x[1]; wrk_cpu = (x[2] + x[3]) / wall
        other = m / hz / wall - wrk_cpu - s / hz / wall - d / hz / wall
        if (other < 0) other = 0
        sub(/^NCC_RESULT /, "", r)
        printf "%s wrk_cores=%.2f server_cores=%.2f directory_cores=%.2f other_cores=%.2f\n",
            r, wrk_cpu, s / hz / wall, d / hz / wall, other }'
}

field() { # line name -> value
    local kv
    for kv in $1; do
        if [ "${kv%%=*}" = "$2" ]; then
            printf '%s\n' "${kv#*=}"
            return 0
        fi
    done
    echo nan
}

tsv=$out/gateway.tsv
printf 'target\trep\trps\tp50_us\tp99_us\tmax_us\terrors\twrk_cores\tserver_cores\tdirectory_cores\tother_cores\n' >"$tsv"

say "warm-up: ${warmup}s per target"
for target in "${targets[@]}"; do
    run_wrk "$target" "$warmup" "warmup-$target" >/dev/null
done

declare -A rps=() p50=() p99=() wrkc=() srvc=() dirc=() othc=()
for ((rep = 1; rep <= reps; rep++)); do
    for target in "${targets[@]}"; do
        line=$(run_wrk "$target" "$duration" "$target-$rep")
        errors=0
        for e in errors_connect errors_read errors_write errors_status errors_timeout; do
            errors=$((errors + $(field "$line" "$e")))
        done
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$target" "$rep" \
            "$(field "$line" rps)" "$(field "$line" p50_us)" "$(field "$line" p99_us)" \
            "$(field "$line" max_us)" "$errors" "$(field "$line" wrk_cores)" \
            "$(field "$line" server_cores)" "$(field "$line" directory_cores)" \
            "$(field "$line" other_cores)" >>"$tsv"
        say "$target rep $rep: $(field "$line" rps) req/s, p99 $(field "$line" p99_us) us," \
            "errors $errors, cores: wrk $(field "$line" wrk_cores), server" \
            "$(field "$line" server_cores), directory $(field "$line" directory_cores)," \
            "others $(field "$line" other_cores)"
        if [ "$errors" != 0 ]; then
            die "$target: $errors errors in $out/wrk/$target-$rep.txt: the figure is not valid"
        fi
        rps[$target]+="$(field "$line" rps) "
        p50[$target]+="$(field "$line" p50_us) "
        p99[$target]+="$(field "$line" p99_us) "
        wrkc[$target]+="$(field "$line" wrk_cores) "
        srvc[$target]+="$(field "$line" server_cores) "
        dirc[$target]+="$(field "$line" directory_cores) "
        othc[$target]+="$(field "$line" other_cores) "
    done
done

# --- summary ----------------------------------------------------------------------

declare -A med_rps=()
for target in "${targets[@]}"; do
    # shellcheck disable=SC2086 # the values of each repetition
    med_rps[$target]=$(median ${rps[$target]})
    status=""
    goal=""
    if [[ $target == gateway-* ]]; then
        goal=">= $goal_rate"
        status=met
        awk -v v="${med_rps[$target]}" -v g="$goal_rate" 'BEGIN {exit !(v >= g)}' || status=MISSED
    fi
    summary_line gateway "$target rate" "$(printf '%.0f' "${med_rps[$target]}")" req/s "$goal" "$status"
    # shellcheck disable=SC2086
    summary_line gateway "$target latency p50" "$(awk -v v="$(median ${p50[$target]})" 'BEGIN {printf "%.2f", v / 1000}')" ms "" ""
    # shellcheck disable=SC2086
    summary_line gateway "$target latency p99" "$(awk -v v="$(median ${p99[$target]})" 'BEGIN {printf "%.2f", v / 1000}')" ms "" ""
    # shellcheck disable=SC2086
    summary_line gateway "$target cpu: wrk / server / directory / others" \
        "$(median ${wrkc[$target]}) / $(median ${srvc[$target]}) / $(median ${dirc[$target]}) / $(median ${othc[$target]})" \
        cores "" ""
done
for proto in https http; do
    if [ -z "${med_rps[gateway-$proto]:-}" ] || [ -z "${med_rps[bare-$proto]:-}" ]; then
        continue
    fi
    ratio=$(awk -v g="${med_rps[gateway-$proto]}" -v b="${med_rps[bare-$proto]}" 'BEGIN {printf "%.3f", g / b}')
    status=met
    awk -v v="$ratio" 'BEGIN {exit !(v >= 1 / 3)}' || status=MISSED
    summary_line gateway "gateway/bare rate ($proto)" "$ratio" x ">= 0.333" "$status"
done
