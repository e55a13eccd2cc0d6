#!/usr/bin/env bash
# bench/bench_load.sh: the operator floor's API paths under wrk (issue 10, "Load";
# docs/performance.md "Load (wrk)"). On the optimised build, against a database of its
# own (dropped at the end), with ncc-directory, ncc-calls, ncc-history, ncc-faq and the
# gateway on the bench ports:
#
#   (a) the 1,786 localgovFAQ FAQs imported (published, public) and BENCH_RECORDS
#       (200,000: one fiscal year at Nakano's volume) interaction records written in SQL
#       from the same texts (bench_generate_records), ncc-history started on them;
#   (b) an operator created and signed in; every wrk script of bench/load/ sends its
#       requests with that session (bench/load/common.lua lists the kinds): mixed (the
#       desk's ratio per call: 1 look-up of the call's record, 2 FAQ searches, 1 history
#       search, 3 record reads, 1 record created), faq, search, read, lookup, create;
#   (c) for each script, wrk with 1, 2, 4, ... BENCH_CONNECTIONS connections, BENCH_DURATION
#       seconds each (wrk has no rate control: more connections, more offered load),
#       recording requests/s, latency p50/p90/p99, answers that were not 2xx, and the CPU
#       (utime + stime from /proc) of every ncc daemon, of PostgreSQL (this database's
#       backends and the cluster's own processes), of wrk and of everything else. Two
#       steps in a row with p99 over BENCH_P99_MS (200) or with any error end that
#       script's ladder; the sustained rate is the highest requests/s of a step without
#       errors and with p99 under the limit. The whole ladder is repeated BENCH_REPS times
#       (interleaved: repetition, then script); the report gives medians.
#
#   bench/bench_load.sh [out folder]      (make bench-load)
# Environment: BUILD (default build), BENCH_RECORDS (200000), BENCH_DURATION (15),
# BENCH_CONNECTIONS ("1 2 4 8 16 32 64"), BENCH_REPS (3), BENCH_SCRIPTS ("mixed faq
# search read lookup create"), BENCH_P99_MS (200), BENCH_WRK_THREADS (2), FAQ_DATA,
# BENCH_PORT_OFFSET (20000). Needs wrk, curl, jq, python3 and psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_load.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

data=${FAQ_DATA:-$top/../shared/data/faq/localgovfaq_amagasaki}
if [ ! -f "$data/corpus_qa.jsonl" ] || [ ! -f "$data/dev_queries.json" ]; then
    say "skipped: the text data is not at $data (set FAQ_DATA)"
    exit 0
fi
out=${1:-$top/bench/results/load-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" "$out/wrk" "$out/data"
out=$(cd "$out" && pwd)
records=${BENCH_RECORDS:-200000}
duration=${BENCH_DURATION:-15}
read -r -a ladder <<<"${BENCH_CONNECTIONS:-1 2 4 8 16 32 64}"
reps=${BENCH_REPS:-3}
read -r -a scripts <<<"${BENCH_SCRIPTS:-mixed faq search read lookup create}"
p99_limit_ms=${BENCH_P99_MS:-200}
wrk_threads=${BENCH_WRK_THREADS:-2}
bindir=$(bench_bindir)
for tool in wrk curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in directory calls history faq gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
for s in "${scripts[@]}"; do
    [ -f "$top/bench/load/$s.lua" ] || die "no script bench/load/$s.lua"
done
max_conn=$(printf '%s\n' "${ladder[@]}" | sort -n | tail -n 1)
# One civetweb worker per kept-alive connection, and a few for the bench's own curl.
export NCC_GATEWAY_THREADS=$((max_conn > 56 ? max_conn + 8 : 64))
export NCC_BUS_TIMEOUT_MS=${NCC_BUS_TIMEOUT_MS:-30000}

# ncc-calls runs too, as in production (ncc-history follows its events).
bench_system_up load directory calls history faq
declare -A daemon_pid=([directory]=${pids[0]} [calls]=${pids[1]} [faq]=${pids[3]} [gateway]=${pids[4]})
owner=$NCC_DATABASE_OWNER_URL

# --- (a) the FAQs and the records ---------------------------------------------------------------
python3 bench/faq/eval.py csv "$data" "$out/data/faqs.csv" >/dev/null
imported=$(curl -s -b "$cookies" -H "X-CSRF-Token: $csrf" -H 'Content-Type: text/csv' \
    --data-binary @"$out/data/faqs.csv" "$api/faqs/import" | jq -r '.create // "error"')
[ "$imported" != error ] || die "the FAQ import failed"
rm -f "$out/data/faqs.csv"
say "imported $imported FAQs; generating $records records"
stop_pid "${pids[2]}"
bench_generate_records "$owner" "$records" "$data"
psql "$owner" -q -c "VACUUM ANALYZE history.records" >/dev/null
NCC_LOG_LEVEL=info "$bindir/ncc-history" >"$out/logs/load-history-2.log" 2>&1 </dev/null &
daemon_pid[history]=$!
pids+=("${daemon_pid[history]}")
for ((i = 0; i < 6000; i++)); do
    grep -q '"event":"search.built"' "$out/logs/load-history-2.log" && break
    is_alive "${daemon_pid[history]}" || die "ncc-history died (see $out/logs/load-history-2.log)"
    nap 0.05
done
grep -q '"event":"search.built"' "$out/logs/load-history-2.log" || die "the index was not built in 300 s"
say "ncc-history: $(grep -m1 '"event":"search.built"' "$out/logs/load-history-2.log" | jq -r .msg)"

# --- (b) the operator and the request data --------------------------------------------------------
op_password=Load-Operator-$$-Pass
call POST /users -H 'Content-Type: application/json' \
    -d "{\"login\":\"loadop\",\"name\":\"負荷オペレーター\",\"roles\":[\"operator\"],\"extension\":\"3999\",\"password\":\"$op_password\"}" |
    jq -e '.id' >/dev/null || die "cannot create the operator"
op_jar=$out/load-operator-cookies
op_csrf=$(curl -s -c "$op_jar" -H 'Content-Type: application/json' \
    -d "{\"login\":\"loadop\",\"password\":\"$op_password\"}" "$api/session" | jq -r '.csrf_token // empty')
[ -n "$op_csrf" ] || die "the operator cannot sign in"
op_cookie=$(awk '$6 == "ncc_session" { print $7 }' "$op_jar")
[ -n "$op_cookie" ] || die "no session cookie for the operator"
read -r id_min id_max < <(psql "$owner" -Atc "SELECT min(id), max(id) FROM history.records" | tr '|' ' ')
python3 - "$data/dev_queries.json" "$out/data" <<'EOF'
import json, sys, urllib.parse
queries = json.load(open(sys.argv[1], encoding="utf-8"))
with open(sys.argv[2] + "/faq_queries.txt", "w") as f:
    for q in queries.values():
        f.write(urllib.parse.quote(q, safe="") + "\n")
# History searches: the words of bench_history.sh (rare, common, one character) and
# others an operator types; several match a quarter of the records or more.
words = ["火葬", "引越", "選挙", "水道", "窓口", "手続", "申請", "児童", "犬", "税",
         "住民票", "保険", "年金", "ごみ", "保育", "介護", "転入", "印鑑", "駐車", "マイナンバー"]
with open(sys.argv[2] + "/history_words.txt", "w") as f:
    for w in words:
        f.write(urllib.parse.quote(w, safe="") + "\n")
EOF
export LOAD_COOKIE="ncc_session=$op_cookie" LOAD_CSRF=$op_csrf LOAD_DATA=$out/data \
    LOAD_ID_MIN=$id_min LOAD_ID_MAX=$id_max LOAD_LUA=$top/bench/load
base=${api%/api/v1}

# Each kind once with curl, so that a refusal stops the bench with its reason.
op() { curl -s -o "$out/data/check.json" -w '%{http_code}' -b "$op_jar" -H "X-CSRF-Token: $op_csrf" "$@"; }
check() { # LABEL STATUS
    [ "$2" = 200 ] || [ "$2" = 201 ] || die "$1 answered $2: $(head -c 300 "$out/data/check.json")"
}
check "FAQ search" "$(op "$api/faqs?q=$(head -n 1 "$out/data/faq_queries.txt")&per_page=20")"
check "history search" "$(op "$api/records?q=$(head -n 1 "$out/data/history_words.txt")")"
check "record read" "$(op "$api/records/$id_max")"
check "record create" "$(op -H 'Content-Type: application/json' -d \
    '{"channel":"phone","call_id":"load-check","idempotency_key":"load-check","status":"closed","inquiry":"確認","response":"確認"}' \
    "$api/records")"
check "call look-up" "$(op "$api/records?call_id=load-check&per_page=1")"
[ "$(jq -r '.total' "$out/data/check.json")" = 1 ] || die "the call look-up did not find the record just made"

# --- (c) the ladders ------------------------------------------------------------------------------
# CPU ticks (utime + stime) of a process; 0 once it is gone.
ticks() {
    local stat fields
    { stat=$(<"/proc/$1/stat"); } 2>/dev/null || {
        echo 0
        return
    }
    read -r -a fields <<<"${stat##*) }"
    echo $((fields[11] + fields[12]))
}
# PostgreSQL: this database's backends and the cluster's processes without a database
# (checkpointer, walwriter...: shared with other databases of the cluster, if any are busy).
pg_ticks() {
    local pid sum=0 args
    while read -r pid args; do
        case $args in
        *" $db_name "* | "postgres: checkpointer"* | "postgres: background writer"* | \
            "postgres: walwriter"* | "postgres: autovacuum launcher"* | \
            "postgres: logical replication launcher"* | /usr/lib/postgresql/*)
            sum=$((sum + $(ticks "$pid"))) ;;
        esac
    done < <(ps -eo pid=,args= | awk '$2 ~ /postgres/')
    echo "$sum"
}
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
components=(gateway directory history faq calls)
snapshot() { # prints: gateway directory history faq calls postgres machine (ticks)
    local c line=""
    for c in "${components[@]}"; do line+="$(ticks "${daemon_pid[$c]}") "; done
    echo "$line$(pg_ticks) $(machine_ticks)"
}
hz=$(getconf CLK_TCK)

results=$out/results.tsv
printf 'rep\tscript\tconnections\trequests\trps\tp50_ms\tp90_ms\tp99_ms\tmax_ms\tnon2xx\tsocket_errors\tcpu_ms_per_req\tgateway_ms\tdirectory_ms\thistory_ms\tfaq_ms\tcalls_ms\tpostgres_ms\twrk_ms\tothers_ms\tload1\tpass\n' >"$results"

run_step() { # REP SCRIPT CONNECTIONS -> appends a line; returns 1 when the step fails
    local rep=$1 script=$2 conns=$3 threads=$wrk_threads file line
    [ "$conns" -lt "$threads" ] && threads=$conns
    file=$out/wrk/r$rep-$script-c$conns.txt
    local load1 before after wrk_cpu
    load1=$(cut -d' ' -f1 /proc/loadavg)
    read -r -a before < <(snapshot)
    LOAD_RUN=$rep-$script-$conns-$$ LOAD_LABEL=$script-c$conns \
        /usr/bin/time -f '%U %S' -o "$file.time" \
        wrk -t"$threads" -c"$conns" -d"${duration}s" --timeout 10s -s "$top/bench/load/$script.lua" \
        "$base" >"$file" 2>&1 || true
    read -r -a after < <(snapshot)
    wrk_cpu=$(awk '{ printf "%d", ($1 + $2) * 1000 }' "$file.time" 2>/dev/null || echo 0)
    line=$(grep -m1 '^LOAD_RESULT' "$file") || {
        say "wrk gave no result for $script c$conns (see $file)"
        return 1
    }
    python3 - "$rep" "$script" "$conns" "$hz" "$wrk_cpu" "$load1" "$p99_limit_ms" "$line" \
        "${before[*]}" "${after[*]}" >>"$results" <<'EOF'
import sys
rep, script, conns, hz, wrk_ms, load1, limit, line, before, after = sys.argv[1:]
kv = dict(p.split("=", 1) for p in line.split()[1:])
b = [int(x) for x in before.split()]
a = [int(x) for x in after.split()]
ms = [(y - x) * 1000 / int(hz) for x, y in zip(b, a)]
n = int(kv["requests"])
per = lambda v: v / n if n else 0
system = sum(ms[:6])  # the five daemons and PostgreSQL
others = max(0.0, ms[6] - system - int(wrk_ms))
socket = sum(int(kv[k]) for k in ("errors_connect", "errors_read", "errors_write", "errors_timeout"))
non2xx = int(kv["non2xx"])
p99 = int(kv["p99_us"]) / 1000
ok = n > 0 and non2xx == 0 and socket == 0 and p99 < float(limit)
print("\t".join([rep, script, conns, str(n), kv["rps"],
    "%.1f" % (int(kv["p50_us"]) / 1000), "%.1f" % (int(kv["p90_us"]) / 1000), "%.1f" % p99,
    "%.1f" % (int(kv["max_us"]) / 1000), str(non2xx), str(socket),
    "%.2f" % per(system)] + ["%.2f" % per(v) for v in ms[:6]] +
    ["%.2f" % per(int(wrk_ms)), "%.2f" % per(others), load1, "yes" if ok else "no"]))
EOF
    tail -n 1 "$results" | awk -F'\t' '{ printf "%s c%s: %s req/s, p50 %s ms, p99 %s ms, non-2xx %s, CPU %s ms/request, load %s%s\n",
        $2, $3, $5, $6, $8, $10, $12, $21, ($22 == "yes" ? "" : "  (not sustained)") }' >&2
    [ "$(tail -n 1 "$results" | cut -f22)" = yes ]
}

# A warm-up: every civetweb worker's first bus and database connections, the caches.
LOAD_RUN=warm-$$ LOAD_LABEL=warm wrk -t2 -c"$max_conn" -d5s --timeout 10s \
    -s "$top/bench/load/mixed.lua" "$base" >"$out/wrk/warm-up.txt" 2>&1 || true

say "$reps repetitions of ${scripts[*]}; connections ${ladder[*]}; ${duration} s a step"
uptime >"$out/uptime-before.txt"
for ((rep = 1; rep <= reps; rep++)); do
    for script in "${scripts[@]}"; do
        fails=0
        for conns in "${ladder[@]}"; do
            if run_step "$rep" "$script" "$conns"; then
                fails=0
            else
                fails=$((fails + 1))
                [ "$fails" -lt 2 ] || break
            fi
        done
    done
done
uptime >"$out/uptime-after.txt"
final_records=$(psql "$owner" -Atc "SELECT count(*) FROM history.records")

# --- the report -----------------------------------------------------------------------------------
python3 - "$results" "$records" "$final_records" "$duration" "$p99_limit_ms" "$(nproc)" \
    "$(cat "$out/uptime-before.txt")" "$(cat "$out/uptime-after.txt")" >"$out/report.md" <<'EOF'
import csv, statistics, sys
path, records, final_records, duration, limit, cores, up_before, up_after = sys.argv[1:]
rows = list(csv.DictReader(open(path), delimiter="\t"))
med = lambda xs: statistics.median(xs) if xs else float("nan")
scripts = list(dict.fromkeys(r["script"] for r in rows))
reps = sorted({r["rep"] for r in rows})
print(f"# Load bench: {records} records at the start ({final_records} at the end), "
      f"{duration} s a step, {len(reps)} repetitions, {cores} cores")
print()
print(f"load before: `{up_before.strip()}`; after: `{up_after.strip()}`")
print()
print("Sustained rate: the highest requests/s of a step with no answer other than 2xx, no "
      f"socket error and p99 < {limit} ms; the median over the repetitions.")
print()
print("| script | sustained req/s (median; each repetition) | at connections | p50 / p99 ms there | "
      "CPU ms/request there (daemons + PostgreSQL) | highest req/s seen |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
sustained = {}
for s in scripts:
    best = []
    for rep in reps:
        ok = [r for r in rows if r["script"] == s and r["rep"] == rep and r["pass"] == "yes"]
        best.append(max(ok, key=lambda r: float(r["rps"])) if ok else None)
    rates = [float(b["rps"]) if b else 0.0 for b in best]
    m = med(rates)
    sustained[s] = m
    at = [b for b in best if b]
    top_seen = max(float(r["rps"]) for r in rows if r["script"] == s)
    print(f"| {s} | **{m:,.0f}** ({', '.join(f'{x:,.0f}' for x in rates)}) | "
          f"{'/'.join(b['connections'] for b in at) or '-'} | "
          f"{med([float(b['p50_ms']) for b in at]):.1f} / {med([float(b['p99_ms']) for b in at]):.1f} | "
          f"{med([float(b['cpu_ms_per_req']) for b in at]):.2f} | {top_seen:,.0f} |")
print()
print("Per step (medians over the repetitions that reached it; CPU in ms per request):")
print()
print("| script | conn. | runs | req/s | p50 ms | p99 ms | non-2xx | CPU ms/req | gateway | directory "
      "| history | faq | calls | postgres | wrk | others | load |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
      "| ---: | ---: | ---: |")
for s in scripts:
    conns = sorted({int(r["connections"]) for r in rows if r["script"] == s})
    for c in conns:
        rs = [r for r in rows if r["script"] == s and int(r["connections"]) == c]
        m = lambda k: med([float(r[k]) for r in rs])
        print(f"| {s} | {c} | {len(rs)} | {m('rps'):,.0f} | {m('p50_ms'):.1f} | {m('p99_ms'):.1f} | "
              f"{sum(int(r['non2xx']) + int(r['socket_errors']) for r in rs)} | {m('cpu_ms_per_req'):.2f} | "
              + " | ".join(f"{m(k):.2f}" for k in ("gateway_ms", "directory_ms", "history_ms", "faq_ms",
                                                   "calls_ms", "postgres_ms", "wrk_ms", "others_ms"))
              + f" | {m('load1'):.2f} |")
if "mixed" in sustained:
    # Nakano's busiest hour: about 900 calls (docs/performance.md "Calls"); 40 lines at
    # 6 minutes a call would be 400. 8 requests per call in the mixed ratio.
    peak = 900 * 8 / 3600
    m = sustained["mixed"]
    print()
    print(f"Nakano's peak: 900 calls in the busiest hour x 8 requests per call = {peak:.1f} requests/s; "
          f"10x = {10 * peak:.0f} requests/s. Mixed sustained {m:,.0f} requests/s: "
          f"{m / peak:,.0f}x the peak, {m / (10 * peak):,.0f}x ten times it.")
EOF
cat "$out/report.md"
say "results in $out (report.md, results.tsv, wrk/)"
