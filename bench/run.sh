#!/usr/bin/env bash
# bench/run.sh: every benchmark of docs/performance.md, one after the other,
# on the optimised build in $BUILD (make bench builds it first). Writes
# bench/results/<date>/ (git-ignored; bench/results/latest points at it) and
# prints one summary table.
#
#   make bench                 (or: BUILD=build bench/run.sh after make)
#
# Environment:
#   BUILD              build folder (default build)
#   BENCH_ONLY         comma-separated subset of bus,gateway,daemons,masters (default all)
#   BENCH_REPS         repetitions (default: bus 5, gateway 3, daemons 3)
#   BENCH_DURATION     seconds per wrk run (default 10)
#   BENCH_PORT_OFFSET  added to every default port (default 20000: 27100+i ...)
#   and the settings each script lists (bench/gateway.sh, bench/daemons.sh).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
export BUILD=$build
bench_name=run.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

only=${BENCH_ONLY:-bus,gateway,daemons,masters}
wants() {
    [[ ",$only," == *",$1,"* ]]
}

bindir=$(bench_bindir)
benchdir=$(dirname "$bindir")/bench
stamp=$(date +%Y%m%d-%H%M%S)
out=$top/bench/results/$stamp
mkdir -p "$out"
ln -sfn "$stamp" "$top/bench/results/latest"
summary=$out/summary.tsv
: >"$summary"

# --- the machine ---------------------------------------------------------------
{
    echo "date: $(date -R)"
    echo "host: $(uname -srm)"
    echo "nproc: $(nproc)"
    echo "cpu: $(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
    # The compiler flags recorded in the debug information of a daemon.
    echo "build: $build: $(readelf --debug-dump=info "$bindir/ncc-directory" 2>/dev/null |
        grep -m1 DW_AT_producer | sed 's/.*): //')"
    echo "gcc: $(gcc --version | head -1)"
    echo "libzmq: $(pkg-config --modversion libzmq 2>/dev/null), czmq: $(pkg-config --modversion libczmq 2>/dev/null)"
    echo "civetweb: $(grep -m1 'define CIVETWEB_VERSION ' /usr/include/civetweb.h | cut -d'"' -f2)"
    echo "openssl: $(openssl version)"
    echo "wrk: $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "git: $(git -C "$top" rev-parse --short HEAD 2>/dev/null)$(git -C "$top" status --porcelain 2>/dev/null | grep -q . && echo ' (with uncommitted changes)')"
} >"$out/machine.txt"
cat "$out/machine.txt"
echo

if [ -z "${NCC_DATABASE_URL:-}" ] && { wants gateway || wants daemons || wants masters; }; then
    scripts/pg.sh start >/dev/null
    # shellcheck disable=SC1091
    . var/env
    export NCC_DATABASE_URL
fi

# The daemons' keys; bench_bus signs its requests with the actor key too.
load_bench_secrets

started=$SECONDS
failed=()

if wants bus; then
    echo "== bus: ncc_rpc_* against raw libzmq ($(date +%T))"
    [ -x "$benchdir/bench_bus" ] || die "$benchdir/bench_bus is not built (make bench)"
    reps=()
    [ -n "${BENCH_REPS:-}" ] && reps=(--reps "$BENCH_REPS" --latency-reps "$BENCH_REPS")
    # As deployed: the threads go wherever the scheduler puts them, on both cores.
    "$benchdir/bench_bus" "${reps[@]+"${reps[@]}"}" --details "$out/bus.tsv" \
        --summary "$summary" | tee "$out/bus.txt" || failed+=(bus)
    # Latency again with every thread on one core: no cross-core wake-ups, so
    # the figure shows the work each side does (see docs/performance.md).
    taskset -c 0 "$benchdir/bench_bus" --tests latency --label "1 core" \
        "${reps[@]+"${reps[@]}"}" --details "$out/bus-1core.tsv" --summary "$summary" |
        tee -a "$out/bus.txt" || failed+=(bus-1core)
    echo
fi

if wants gateway; then
    echo "== gateway: wrk against ncc-gateway and bare civetweb ($(date +%T))"
    bench/gateway.sh "$out" 2>&1 | tee "$out/gateway.txt" || failed+=(gateway)
    echo
fi

if wants daemons; then
    echo "== daemons: start-to-ready and idle memory ($(date +%T))"
    bench/daemons.sh "$out" 2>&1 | tee "$out/daemons.txt" || failed+=(daemons)
    echo
fi

if wants masters; then
    echo "== masters: 10,000-row CSV import, change propagation ($(date +%T))"
    bench/bench_masters.sh "$out" 2>&1 | tee "$out/masters.txt" || failed+=(masters)
    echo
fi

echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.txt"
echo "== summary ($((SECONDS - started)) s; results in bench/results/$stamp)"
{
    printf 'area\tfigure\tvalue\tunit\tgoal\tstatus\n'
    cat "$summary"
} | awk -F'\t' '{printf "%-8s %-52s %26s %-6s %-9s %s\n", $1, $2, $3, $4, $5, $6}'
if [ ${#failed[@]} -gt 0 ]; then
    say "failed: ${failed[*]} (see bench/results/$stamp)"
    exit 1
fi
