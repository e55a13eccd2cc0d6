#!/usr/bin/env bash
# bench/bench_masters.sh: the two figures of the masters (docs/masters.md,
# docs/performance.md), on the optimised build, against a database of its
# own (scripts/pg.sh fresh bench_masters, dropped at the end) with every
# daemon and the gateway running on the bench ports:
#
#   (a) import of 10,000 phone-book rows through the gateway
#       (POST /api/v1/directory/import, text/csv, 0.7 MB): three runs, each
#       changing every row (create, then update twice), timed by curl from
#       the request to the answer; the median (goal: under 5 s);
#   (b) propagation: BENCH_CHANGES (20) renames of a department
#       (PATCH /api/v1/departments/{id}); for each, the time from the change
#       (its change set's clock_timestamp() in PostgreSQL) to the moment the
#       last caching daemon (ncc-calls, ncc-history) applied it, as each
#       daemon reports it (ncc.masters.CacheStatus.applied_at_us, read
#       through GET /api/v1/masters/propagation, polled every 5 ms until
#       complete); also the time the client saw, from sending the PATCH to
#       the first complete answer (an upper bound: each poll is a curl
#       process). Median and p95 (goal: under 1 s).
#
#   bench/bench_masters.sh <out folder>
# Environment: BUILD (default build), NCC_DATABASE_URL and
# NCC_DATABASE_OWNER_URL (else scripts/pg.sh start and var/env),
# BENCH_REPS (3 imports), BENCH_CHANGES (20), BENCH_PORT_OFFSET (20000).
# Needs curl, jq and python3 (the administrator's TOTP code).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_masters.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:?usage: bench/bench_masters.sh <out folder>}
mkdir -p "$out/logs" "$out/masters"
summary=$out/summary.tsv
reps=${BENCH_REPS:-3}
changes=${BENCH_CHANGES:-20}
rows=10000
bindir=$(bench_bindir)
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in "${bench_services[@]}" gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done

bench_system_up masters "${bench_services[@]}"

# 45 departments (所管課) under 5 divisions, imported as a file.
{
    echo "code,name,parent_code,phone,active"
    for ((d = 1; d <= 5; d++)); do printf 'G%02d,部%02d,,03-3228-%04d,true\n' "$d" "$d" "$d"; done
    for ((d = 1; d <= 40; d++)); do
        printf 'D%02d,所管課%02d,G%02d,03-3228-%04d,true\n' "$d" "$d" $(((d - 1) % 5 + 1)) $((1000 + d))
    done
} >"$out/masters/departments.csv"
call POST /departments/import -H 'Content-Type: text/csv' \
    --data-binary @"$out/masters/departments.csv" | jq -e '.create == 45' >/dev/null ||
    die "the departments were not imported"

# --- (a) 10,000 phone-book rows ---------------------------------------------------------
make_phone_book() { # variant file
    awk -v variant="$1" -v rows="$rows" 'BEGIN {
        printf "code,department_code,section,name,phone,hours,active\r\n"
        for (i = 0; i < rows; i++)
            printf "E%05d,D%02d,第%d係,転送先%s%d,03-%04d-%04d,平日 8:30-17:15,true\r\n",
                i, i % 40 + 1, i % 7, variant, i, 3000 + i % 1000, i
    }' >"$2"
}
import_times=()
printf 'run\tseconds\tcreate\tupdate\tunchanged\n' >"$out/masters/import.tsv"
for ((r = 1; r <= reps; r++)); do
    file=$out/masters/phonebook-$r.csv
    make_phone_book "v$r-" "$file"
    result=$(call POST /directory/import -H 'Content-Type: text/csv' --data-binary @"$file" \
        -w '\n%{time_total}')
    seconds=$(tail -n 1 <<<"$result")
    body=$(head -n 1 <<<"$result")
    created=$(jq -r '.create // "error"' <<<"$body")
    updated=$(jq -r '.update // "error"' <<<"$body")
    [ "$((created + updated))" = "$rows" ] 2>/dev/null ||
        die "import $r failed: $(head -c 300 <<<"$body")"
    printf '%s\t%s\t%s\t%s\t%s\n' "$r" "$seconds" "$created" "$updated" \
        "$(jq -r .unchanged <<<"$body")" >>"$out/masters/import.tsv"
    say "import $r: $seconds s ($created created, $updated updated)"
    import_times+=("$seconds")
done
import_median=$(median "${import_times[@]}")
status=ok
awk -v m="$import_median" 'BEGIN { exit !(m < 5) }' || status=over
summary_line masters "import of $rows phone-book rows via the gateway (median of $reps)" \
    "$import_median" s "< 5" "$status"

# --- (b) propagation of a change to every caching daemon ---------------------------------
printf 'change\tchange_id\tservice_ms\tclient_ms\tservices\n' >"$out/masters/propagation.tsv"
service_ms=()
client_ms=()
version=$(call GET /departments/10 | jq -r .version)
for ((c = 1; c <= changes; c++)); do
    start=${EPOCHREALTIME/./}
    version=$(call PATCH /departments/10 -H 'Content-Type: application/json' \
        -d "{\"version\":$version,\"name\":\"所管課10 (改$c)\"}" | jq -r .version)
    [ "$version" != null ] || die "PATCH $c failed"
    answer=
    for ((i = 0; i < 1000; i++)); do
        answer=$(call GET '/masters/propagation?kind=departments')
        [ "$(jq -r .complete <<<"$answer")" = true ] && break
        nap 0.005
    done
    seen=${EPOCHREALTIME/./}
    [ "$(jq -r .complete <<<"$answer")" = true ] || die "change $c did not reach every daemon"
    slowest=$(jq -r '[.services[].latency_ms] | max' <<<"$answer")
    who=$(jq -r '[.services[] | "\(.service)=\(.latency_ms)"] | join(" ")' <<<"$answer")
    client=$(awk -v a="$start" -v b="$seen" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
    printf '%s\t%s\t%s\t%s\t%s\n' "$c" "$(jq -r .change_id <<<"$answer")" "$slowest" "$client" \
        "$who" >>"$out/masters/propagation.tsv"
    service_ms+=("$slowest")
    client_ms+=("$client")
    nap 0.05
done
p95() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        i = int(NR * 0.95 + 0.999999); if (i < 1) i = 1; if (i > NR) i = NR; print v[i] }'
}
service_median=$(median "${service_ms[@]}")
service_p95=$(p95 "${service_ms[@]}")
client_median=$(median "${client_ms[@]}")
client_p95=$(p95 "${client_ms[@]}")
say "propagation: change -> every caching daemon median $service_median ms, p95 $service_p95 ms;" \
    "PATCH sent -> complete seen median $client_median ms, p95 $client_p95 ms"
status=ok
awk -v m="$service_p95" 'BEGIN { exit !(m < 1000) }' || status=over
summary_line masters "change -> every caching daemon, median ($changes changes)" \
    "$service_median" ms "< 1000" "$status"
summary_line masters "change -> every caching daemon, p95" "$service_p95" ms "< 1000" "$status"
status=ok
awk -v m="$client_p95" 'BEGIN { exit !(m < 1000) }' || status=over
summary_line masters "PATCH sent -> propagation seen by the client, median" "$client_median" ms \
    "< 1000" "$status"
summary_line masters "PATCH sent -> propagation seen by the client, p95" "$client_p95" ms \
    "< 1000" "$status"
rm -f "$out"/masters/phonebook-*.csv "$cookies"
