#!/usr/bin/env bash
# tests/chaos/copies.sh: two copies of every daemon at once, one copy killed, requests spread
# over both (issue 10; docs/reliability.md "Two copies of every daemon"). Run by
# `make chaos-copies` (not by `make test`: it takes a few minutes).
#
# Two copies (a, b) of each service (directory, calls, history, faq, sms, summary, report) and
# two gateways, optimised build, against one database in a PostgreSQL cluster of its own under
# var/copies (port COPIES_PG_PORT, default 5440). Copy a's ports are the defaults moved by
# COPIES_PORT_OFFSET_A (19000: RPC 26100+i, PUB 26200+i, health 28100+i, HTTP 27080), copy b's
# by COPIES_PORT_OFFSET_B (19500). Every client and subscriber endpoint list names both copies
# (NCC_<NAME>_RPC, NCC_<NAME>_PUB: docs/bus.md "Endpoints"). Two more gateways ("probes", the
# copy's offset + 200) reach only copy a, resp. only copy b, of ncc-history and ncc-faq, so
# the script can write through one copy and read through the other.
#
# Under a steady load spread over both gateways (tests/chaos/lib.sh: records with idempotency
# keys, FAQ searches, SMS with keys, each failed request repeated through the other gateway;
# two ncc-pbxsim, one per gateway, each repeating a failed webhook with its event_id):
#   1. kill -9 of copy a of each service in turn: directory, history, sms and report restarted
#      at once; calls, faq and summary left down until the round ends;
#   2. kill -9 of copy b of each service in turn: calls, faq and summary restarted at once;
#      directory, history, sms and report left down until the round ends;
#   3. kill -9 of gateway a, left down COPIES_GATEWAY_DOWN_S (8 s), started again; kill -9 of
#      gateway b, started again at once;
#   4. a rolling restart, as an upgrade does it: copy a of every daemon (services, then the
#      gateway) stopped with SIGTERM (it drains) and started again, one after the other, then
#      copy b;
#   5. with both copies up: records written through history a are found by a search through
#      history b and the other way round, FAQs created and edited through faq a are found
#      through faq b and the other way round (times measured), and a department created in
#      the directory is accepted in a record by both copies of ncc-history (their masters
#      caches follow the directory's events).
# Then the load stops and the reconciliation checks (tests/chaos/lib.sh): every call once, with
# its events once and, when answered, exactly one record (the events of ncc-calls applied once
# although two copies of ncc-history subscribe); every record and SMS answered 2xx stored
# exactly once; no key stored twice; every daemon ready at the end, no crash in any log.
# Prints the figures (also <out>/report.md) and exits non-zero when a check fails.
#
#   tests/chaos/copies.sh [out folder]                     (make chaos-copies)
# Environment: BUILD (default build), COPIES_PORT_OFFSET_A (19000), COPIES_PORT_OFFSET_B
# (19500), COPIES_PG_PORT (5440), COPIES_CALL_RATE (3, split over the gateways),
# COPIES_RECORD_RATE (5), COPIES_FAQ_RATE (5), COPIES_SMS_RATE (3), COPIES_GAP_S (4: load
# between faults), COPIES_GATEWAY_DOWN_S (8), COPIES_PROPAGATION_LIMIT_MS (1500: a change made
# through one copy found through the other). Needs curl, jq, psql, python3.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=copies.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"
# shellcheck source=tests/chaos/lib.sh
. "$top/tests/chaos/lib.sh"

out=${1:-$top/var/copies/results/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs" "$out/load"
bindir=$(bench_bindir)
declare -A offset=([a]=${COPIES_PORT_OFFSET_A:-19000} [b]=${COPIES_PORT_OFFSET_B:-19500})
call_rate=${COPIES_CALL_RATE:-3}
record_rate=${COPIES_RECORD_RATE:-5}
faq_rate=${COPIES_FAQ_RATE:-5}
sms_rate=${COPIES_SMS_RATE:-3}
gap_s=${COPIES_GAP_S:-4}
gateway_down_s=${COPIES_GATEWAY_DOWN_S:-8}
propagation_limit_ms=${COPIES_PROPAGATION_LIMIT_MS:-1500}
run=p$$
services=("${bench_services[@]}")
for tool in curl jq psql python3; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in "${services[@]}" gateway pbxsim; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done

# --- ports -----------------------------------------------------------------------------------------
# copy_ports COPY: the ports of a copy (a, b; pa, pb: the probe gateways).
copy_offset() {
    case $1 in
    a | b) echo "${offset[$1]}" ;;
    pa | pb) echo $((${offset[${1#p}]} + 200)) ;;
    esac
}
svc_port() { # SERVICE KIND(rpc|pub|health) COPY
    local base
    case $2 in rpc) base=7100 ;; pub) base=7200 ;; health) base=9100 ;; esac
    echo $((base + $(service_index "$1") + $(copy_offset "$3")))
}
health_port() { # DAEMON COPY
    if [ "$1" = gateway ]; then echo $((9190 + $(copy_offset "$2"))); else svc_port "$1" health "$2"; fi
}
http_port_of() { echo $((8080 + $(copy_offset "$1"))); }

all_ports=()
for c in a b; do
    for d in "${services[@]}"; do
        all_ports+=("$(svc_port "$d" rpc "$c")" "$(svc_port "$d" pub "$c")" "$(svc_port "$d" health "$c")")
    done
done
for c in a b pa pb; do
    all_ports+=("$(http_port_of "$c")" "$((8443 + $(copy_offset "$c")))" "$(health_port gateway "$c")")
done

# --- PostgreSQL of our own -------------------------------------------------------------------------
export NCC_VAR=$top/var/copies NCC_PG_PORT=${COPIES_PG_PORT:-5440}
mkdir -p "$NCC_VAR"
scripts/pg.sh status || require_free_ports "$NCC_PG_PORT"
scripts/pg.sh start || die "cannot start the cluster (scripts/pg.sh with NCC_VAR=$NCC_VAR)"
# shellcheck disable=SC1091
. "$NCC_VAR/env"
require_free_ports "${all_ports[@]}"

# --- the system: one database, every daemon twice ---------------------------------------------------
load_bench_secrets
export NCC_LOG_LEVEL=${NCC_LOG_LEVEL:-warn}
export NCC_GATEWAY_THREADS=64
export NCC_TLS_CERT=$out/tls/copies.pem NCC_WEB_ROOT=$top/gateway/web NCC_STAFF_ALLOW_CIDRS=127.0.0.0/8
make_certificate "$NCC_TLS_CERT"
# SMS: no provider (messages wait queued: storage is what is reconciled), no rate limits.
export NCC_SMS_PROVIDER=none NCC_SMS_OPERATOR_PER_MINUTE=100000 NCC_SMS_PER_NUMBER_PER_HOUR=1000
db_name=copies_$$
admin_url=$NCC_DATABASE_OWNER_URL
NCC_DATABASE_URL=$(scripts/pg.sh fresh "$db_name" | grep '^postgresql://') || die "scripts/pg.sh fresh $db_name failed"
NCC_DATABASE_OWNER_URL=$(scripts/pg.sh owner-url "$db_name" | grep '^postgresql://')
export NCC_DATABASE_URL NCC_DATABASE_OWNER_URL
export NCC_BOOTSTRAP_ADMIN_LOGIN=copiesadmin NCC_BOOTSTRAP_ADMIN_PASSWORD=Copies-$$-Admin-Pass
export NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
export NCC_ARGON2_MEMORY_KIB=${NCC_ARGON2_MEMORY_KIB:-4096}
owner=$NCC_DATABASE_OWNER_URL
q() { psql "$owner" -X -qAtc "$1"; }
# Every client and subscriber connects to both copies.
for d in "${services[@]}"; do
    up=$(upper "$d")
    export "NCC_${up}_RPC=tcp://127.0.0.1:$(svc_port "$d" rpc a),tcp://127.0.0.1:$(svc_port "$d" rpc b)"
    export "NCC_${up}_PUB=tcp://127.0.0.1:$(svc_port "$d" pub a),tcp://127.0.0.1:$(svc_port "$d" pub b)"
done

declare -A pid_of=()
# start_copy DAEMON COPY: ncc-DAEMON bound to COPY's ports (pa, pb: a gateway that reaches only
# copy a, resp. b, of ncc-history and ncc-faq), its log in $out/logs/DAEMON-COPY.log.
start_copy() {
    local d=$1 c=$2 o
    o=$(copy_offset "$c")
    (
        for s in "${services[@]}"; do
            up=$(upper "$s")
            export "NCC_${up}_RPC_BIND=tcp://127.0.0.1:$(svc_port "$s" rpc "$c")"
            export "NCC_${up}_PUB_BIND=tcp://127.0.0.1:$(svc_port "$s" pub "$c")"
            export "NCC_${up}_HEALTH_LISTEN=127.0.0.1:$(svc_port "$s" health "$c")"
        done
        export NCC_HTTP_LISTEN=127.0.0.1:$((8080 + o)) NCC_HTTPS_LISTEN=127.0.0.1:$((8443 + o))s
        export NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:$((9190 + o))
        if [ "$c" = pa ] || [ "$c" = pb ]; then
            for s in history faq; do
                export "NCC_$(upper "$s")_RPC=tcp://127.0.0.1:$(svc_port "$s" rpc "${c#p}")"
            done
        fi
        exec "$bindir/ncc-$d" >>"$out/logs/$d-$c.log" 2>&1 </dev/null
    ) &
    pid_of[$d-$c]=$!
}
now_us() { echo "${EPOCHREALTIME/./}"; }
# wait_ready DAEMON COPY SINCE_US: waits (at most 60 s) for its /readyz; prints the ms since SINCE_US.
wait_copy_ready() {
    local port deadline=$(($(now_us) + 60000000))
    port=$(health_port "$1" "$2")
    until http_ok 127.0.0.1 "$port" /readyz; do
        [ "$(now_us)" -lt "$deadline" ] || { echo -1; return 1; }
        nap 0.01
    done
    echo $((($(now_us) - $3) / 1000))
}
copies=()
for c in a b; do
    for d in "${services[@]}" gateway; do copies+=("$d-$c"); done
done
copies+=(gateway-pa gateway-pb)
loaders=()
copies_cleanup() {
    local p k
    for p in "${loaders[@]+"${loaders[@]}"}"; do kill "$p" 2>/dev/null || true; done
    for p in "${loaders[@]+"${loaders[@]}"}"; do wait "$p" 2>/dev/null || true; done
    for k in "${!pid_of[@]}"; do
        [ -n "${pid_of[$k]}" ] && stop_pid "${pid_of[$k]}"
    done
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
    scripts/pg.sh stop >/dev/null 2>&1 || true
}
trap copies_cleanup EXIT

say "starting two copies of every daemon (and two probe gateways) on database $db_name"
start_all=$(now_us)
for k in "${copies[@]}"; do start_copy "${k%-*}" "${k##*-}"; done
for k in "${copies[@]}"; do
    ms=$(wait_copy_ready "${k%-*}" "${k##*-}" "$start_all") || die "ncc-$k is not ready (see $out/logs/$k.log)"
done
say "all ${#copies[@]} daemons ready after $ms ms"

# --- the administrator, through gateway a --------------------------------------------------------
declare -A api_of=()
for c in a b pa pb; do api_of[$c]=http://127.0.0.1:$(http_port_of "$c")/api/v1; done
cookies=$out/cookies
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
        "${api_of[a]}/session" | jq -r '.csrf_token // empty')
    [ -n "$csrf" ] && break
    nap 0.1
done
[ -n "$csrf" ] || die "cannot sign in as the administrator"
call_via() { # COPY METHOD PATH [curl args...]: as the administrator through that gateway
    local c=$1 method=$2 path=$3
    shift 3
    curl -s -m 15 -b "$cookies" -H "X-CSRF-Token: $csrf" -X "$method" "$@" "${api_of[$c]}$path"
}
# The session made through gateway a works through gateway b (sessions are in the database).
me=$(curl -s -b "$cookies" "${api_of[b]}/me")
jq -e .user.id <<<"$me" >/dev/null || die "the session made through gateway a is not known to gateway b: $me"

# Operators with extensions (the answered calls go to them), an SMS template, two FAQs.
extensions=()
for o in 1 2 3 4; do
    ext=$((3100 + o))
    call_via a POST /users -H 'Content-Type: application/json' \
        -d "{\"login\":\"copyop$o\",\"name\":\"オペレーター$o\",\"roles\":[\"operator\"],\"extension\":\"$ext\",\"password\":\"Copies-Operator-$o-$$-Pass\"}" |
        jq -e .id >/dev/null || die "cannot create operator copyop$o"
    extensions+=("$ext")
done
tid=$(call_via b POST /sms-templates -H 'Content-Type: application/json' \
    -d '{"name":"copies","body":"{n}: 中野区役所からのお知らせです。"}' | jq -r .id)
[ "$tid" -gt 0 ] 2>/dev/null || die "cannot create the SMS template"
for text in '住民票の写しはどこで取れますか|区民課の窓口、コンビニ交付でも取れます' \
    '粗大ごみの出し方|粗大ごみ受付センターに申し込んでください'; do
    fid=$(call_via a POST /faqs -H 'Content-Type: application/json' \
        -d "{\"question\":\"${text%%|*}\",\"answer\":\"${text#*|}\",\"visibility\":\"public\"}" | jq -r .id)
    call_via b POST "/faqs/$fid/approve" -H 'Content-Type: application/json' -d '{"version":1}' >/dev/null
done

# --- the load: both gateways -------------------------------------------------------------------------
apis=("${api_of[a]}" "${api_of[b]}")
# Faults: 14 service kills, 2 gateway kills, 16 rolling restarts, the cross-copy checks; about:
expected_s=$((14 * (gap_s + 2) + gateway_down_s + 3 * gap_s + 16 * 2 + 6 + 20))
calls_each=$(awk -v r="$call_rate" -v s="$expected_s" 'BEGIN { printf "%d", r * s / 2 }')
calls=$((2 * calls_each))
ext_list=$(IFS=,; echo "${extensions[*]}")
say "load for about ${expected_s} s: $calls calls at $call_rate/s over both gateways, records $record_rate/s, FAQ searches $faq_rate/s, SMS $sms_rate/s"
for c in a b; do
    "$bindir/ncc-pbxsim" --url "http://127.0.0.1:$(http_port_of "$c")" --secret "$NCC_PBX_WEBHOOK_SECRET" \
        --calls "$calls_each" --concurrency 8 --segments 2 \
        --rate "$(awk -v r="$call_rate" 'BEGIN { printf "%.3f", r / 2 }')" --retry 90 \
        --extensions "$ext_list" --run "$run-$c" >"$out/load/pbxsim-$c.json" 2>"$out/load/pbxsim-$c.err" &
    loaders+=($!)
done
pbxsim_pids=("${loaders[@]}")
record_loop &
loaders+=($!)
faq_loop &
loaders+=($!)
sms_loop &
loaders+=($!)
nap "$gap_s"

# --- the faults ------------------------------------------------------------------------------------
faults=$out/faults.tsv
printf 'fault\tdaemon\tcopy\tdown (ms)\tback to ready (ms)\tstarted (us)\n' >"$faults"
# kill_copy DAEMON COPY: kill -9, reaped. Prints when (us).
unexpected=$out/unexpected-exits.log
: >"$unexpected"
kill_copy() {
    local k=$1-$2 status=0
    if ! is_alive "${pid_of[$k]}"; then
        # Ended on its own: counted (a check below), its exit status kept (128 + signal).
        wait "${pid_of[$k]}" 2>/dev/null || status=$?
        printf 'ncc-%s (pid %s) had ended before its kill: exit status %s\n' "$k" "${pid_of[$k]}" "$status" | tee -a "$unexpected" >&2
    else
        kill -KILL "${pid_of[$k]}" 2>/dev/null || true
        wait "${pid_of[$k]}" 2>/dev/null || true
    fi
    pid_of[$k]=
}
# restart_copy DAEMON COPY STOPPED_US [FAULT]: starts it again, waits for /readyz, logs the fault.
restart_copy() {
    local d=$1 c=$2 killed=$3 fault=${4:-kill -9} started ms
    started=$(now_us)
    start_copy "$d" "$c"
    ms=$(wait_copy_ready "$d" "$c" "$started") || true
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$fault" "$d" "$c" $(((started - killed) / 1000)) "$ms" "$killed" >>"$faults"
    say "$fault ncc-$d copy $c: down $(((started - killed) / 1000)) ms, ready again $ms ms after its start"
}
declare -A killed_at=()
round() { # COPY SERVICES-LEFT-DOWN...
    local c=$1 d k left
    shift
    for d in "${services[@]}"; do
        kill_copy "$d" "$c"
        killed_at[$d]=$(now_us)
        left=no
        for k in "$@"; do [ "$k" = "$d" ] && left=yes; done
        if [ $left = no ]; then
            restart_copy "$d" "$c" "${killed_at[$d]}"
        else
            say "kill -9 ncc-$d copy $c: left down (copy $([ "$c" = a ] && echo b || echo a) alone)"
        fi
        nap "$gap_s"
    done
    for d in "$@"; do restart_copy "$d" "$c" "${killed_at[$d]}"; done
    nap "$gap_s"
}
round a calls faq summary
round b directory history sms report

t=$(now_us)
kill_copy gateway a
say "kill -9 ncc-gateway copy a: left down $gateway_down_s s"
nap "$gateway_down_s"
restart_copy gateway a "$t"
nap "$gap_s"
t=$(now_us)
kill_copy gateway b
restart_copy gateway b "$t"
nap "$gap_s"
# A rolling restart, as an upgrade does it: copy a of every daemon stopped (SIGTERM: it drains)
# and started again, one after the other, then copy b.
for c in a b; do
    for d in "${services[@]}" gateway; do
        t=$(now_us)
        is_alive "${pid_of[$d-$c]}" || kill_copy "$d" "$c" # ended on its own: logged
        [ -z "${pid_of[$d-$c]}" ] || stop_pid "${pid_of[$d-$c]}"
        pid_of[$d-$c]=
        restart_copy "$d" "$c" "$t" "SIGTERM, start"
        nap 1
    done
done
nap "$gap_s"
faults_end=$(now_us)

# --- one copy writes, the other reads ----------------------------------------------------------------
# wait_found COPY PATH: polls GET PATH through that gateway until .total > 0; prints the ms it
# took (from $t0), or -1 after 10 s.
wait_found() {
    local c=$1 path=$2 total
    while :; do
        total=$(call_via "$c" GET "$path" | jq -r '.total // 0' 2>/dev/null || echo 0)
        [ "${total:-0}" -gt 0 ] 2>/dev/null && { echo $((($(now_us) - t0) / 1000)); return 0; }
        [ $(($(now_us) - t0)) -lt 10000000 ] || { echo -1; return 0; }
        nap 0.02
    done
}
prop=$out/propagation.tsv
printf 'what\twritten through\tread through\tms\n' >"$prop"
for i in 1 2 3 4 5 6 7 8 9 10; do
    if [ $((i % 2)) = 1 ]; then w=a r=b; else w=b r=a; fi
    word=copyprobe${run}x${i}z
    t0=$(now_us)
    call_via "p$w" POST /records -H 'Content-Type: application/json' \
        -d "{\"channel\":\"visit\",\"inquiry\":\"$word 転入届について\"}" | jq -e .id >/dev/null ||
        say "probe record $i not created through history $w"
    printf 'record search\t%s\t%s\t%s\n' "$w" "$r" "$(wait_found "p$r" "/records?q=$word")" >>"$prop"
done
for i in 1 2 3 4 5 6; do
    if [ $((i % 2)) = 1 ]; then w=a r=b; else w=b r=a; fi
    word=faqprobe${run}x${i}z
    t0=$(now_us)
    created=$(call_via "p$w" POST /faqs -H 'Content-Type: application/json' \
        -d "{\"question\":\"$word 児童手当の申請\",\"answer\":\"子育て支援課で受け付けます\",\"visibility\":\"internal\"}")
    fid=$(jq -r '.id // empty' <<<"$created")
    printf 'FAQ created\t%s\t%s\t%s\n' "$w" "$r" "$(wait_found "p$r" "/faqs?q=$word&log=false")" >>"$prop"
    [ -n "$fid" ] || continue
    # The same FAQ edited through the other copy, read back through the first.
    word=faqedit${run}x${i}z
    t0=$(now_us)
    call_via "p$r" PATCH "/faqs/$fid" -H 'Content-Type: application/json' \
        -d "{\"answer\":\"$word 子育て支援課で受け付けます\",\"version\":$(jq -r .version <<<"$created")}" >/dev/null
    printf 'FAQ edited\t%s\t%s\t%s\n' "$r" "$w" "$(wait_found "p$w" "/faqs?q=$word&log=false")" >>"$prop"
done
# A new department: both copies of ncc-history must accept it in a record (their masters caches
# follow ncc.directory.MasterChanged). Given 2 s to arrive.
dept=CPY$$
call_via a POST /departments -H 'Content-Type: application/json' \
    -d "{\"code\":\"$dept\",\"name\":\"複製試験課\"}" | jq -e .code >/dev/null || say "cannot create department $dept"
nap 2
master_ok=0 master_tries=0
master_refusals=$out/load/department-refusals.log
for i in 1 2 3 4 5 6 7 8; do
    for c in a b; do
        master_tries=$((master_tries + 1))
        status=$(call_via "p$c" POST /records -H 'Content-Type: application/json' -o "$out/load/dept.body" -w '%{http_code}' \
            -d "{\"channel\":\"visit\",\"department_id\":\"$dept\",\"inquiry\":\"deptprobe 新しい課 $i\"}")
        if [ "${status:0:1}" = 2 ]; then
            master_ok=$((master_ok + 1))
        else
            printf 'history %s: %s %s\n' "$c" "$status" "$(head -c 300 "$out/load/dept.body")" >>"$master_refusals"
        fi
    done
done

# --- settle and reconcile ------------------------------------------------------------------------------
say "faults done; stopping the load (the two ncc-pbxsim finish their calls)"
for p in "${loaders[@]:2}"; do kill "$p" 2>/dev/null || true; done
for p in "${loaders[@]:2}"; do wait "$p" 2>/dev/null || true; done
for p in "${pbxsim_pids[@]}"; do wait "$p" || true; done
loaders=()
answered=0 pbx_errors=0 pbx_retries=0 pbx_events=0
for c in a b; do
    [ -s "$out/load/pbxsim-$c.json" ] || die "ncc-pbxsim ($c) printed nothing: $(head -c 400 "$out/load/pbxsim-$c.err")"
    answered=$((answered + $(jq -r .answered "$out/load/pbxsim-$c.json")))
    pbx_errors=$((pbx_errors + $(jq -r .errors "$out/load/pbxsim-$c.json")))
    pbx_retries=$((pbx_retries + $(jq -r .retries "$out/load/pbxsim-$c.json")))
    pbx_events=$((pbx_events + $(jq -r .events "$out/load/pbxsim-$c.json")))
done
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
all_ready=yes
for k in "${copies[@]}"; do
    is_alive "${pid_of[$k]}" || kill_copy "${k%-*}" "${k##*-}" # ended on its own: logged
    http_ok 127.0.0.1 "$(health_port "${k%-*}" "${k##*-}")" /readyz || all_ready="no ($k)"
done
sanitizer_report='ERROR: (AddressSanitizer|LeakSanitizer)|SUMMARY: UndefinedBehaviorSanitizer|[.](c|h):[0-9]+:[0-9]+: runtime error:'
crashes=$( (grep -Eal "$sanitizer_report|Segmentation fault|Aborted" "$out"/logs/*.log 2>/dev/null || true) | wc -l)
touch "$out/load/records-fail.log" "$out/load/sms-fail.log"
rec_tries_failed=$(wc -l <"$out/load/records-fail.log")
sms_tries_failed=$(wc -l <"$out/load/sms-fail.log")
prop_bad=$(awk -F'\t' -v l="$propagation_limit_ms" 'NR > 1 && ($4 < 0 || $4 > l)' "$prop" | wc -l)
prop_n=$(($(wc -l <"$prop") - 1))
prop_max() { awk -F'\t' -v w="$1" 'NR > 1 && index($1, w) == 1 { if ($4 > m || m == "") m = $4 } END { print m + 0 }' "$prop"; }
replays=$(cat "$out"/logs/*.log | grep -c "bus.events_lost\|bus.event_failed" || true)

{
    echo "# Two copies of every daemon: run $run, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $build"
    echo
    echo "| fault | daemon | copy | down (ms) | back to ready (ms) | records: failed tries (final errors) | SMS: failed tries | FAQ searches: errors |"
    echo "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"
    # Errors answered between a fault's start and the next one's (by time of answer).
    sort -t$'\t' -k6,6n "$faults" | awk -v rfail="$out/load/records-fail.log" -v rlog="$out/load/records.log" \
        -v sfail="$out/load/sms-fail.log" -v flog="$out/load/faqs.log" -v end="$faults_end" '
        function load(file, col, arr, n,   l, f) { n = 0
            while ((getline l < file) > 0) { split(l, f, " "); if (col == 0 || f[2] !~ /^2/) arr[++n] = f[col ? col : 4] }
            return n }
        function count(arr, n, from, to,   j, c) { c = 0; for (j = 1; j <= n; j++) if (arr[j] >= from && arr[j] < to) c++; return c }
        BEGIN { FS = "\t"; nrf = load(rfail, 0, rf); nre = load(rlog, 4, re); nsf = load(sfail, 0, sf); nfe = load(flog, 4, fe) }
        $1 != "fault" { n++; line[n] = $0; t[n] = $6 }
        END { t[n + 1] = end
              for (i = 1; i <= n; i++) { split(line[i], f, "\t")
                  printf "| %s | %s | %s | %s | %s | %d (%d) | %d | %d |\n", f[1], f[2], f[3], f[4], f[5],
                      count(rf, nrf, t[i], t[i + 1]), count(re, nre, t[i], t[i + 1]), count(sf, nsf, t[i], t[i + 1]),
                      count(fe, nfe, t[i], t[i + 1]) } }'
    echo
    echo "\"down\": from the kill to the start of the new process (the other copy alone meanwhile); errors: tries answered with an error (or not at all) between this fault and the next, each repeated by the client (through the other gateway); \"final errors\": requests the client gave up on."
    echo
    echo "Load: calls $call_rate/s over two gateways ($calls calls, $pbx_events webhook requests, $pbx_retries retried), records $record_rate/s, FAQ searches $faq_rate/s, SMS $sms_rate/s, spread over both gateways; records of the calls settled ${settle_ms} ms after the last call."
    echo
    echo "| check | figure | |"
    echo "| --- | --- | --- |"
    check_load "$calls" "$answered" "$pbx_errors"
    check "changes made through one copy found through the other within $propagation_limit_ms ms ($prop_n: records $(prop_max record) ms, FAQs $(prop_max FAQ) ms at most)" "$prop_bad" 0
    check "records with a new department accepted by both copies of ncc-history ($master_tries tries)" "$master_ok" "$master_tries"
    check "every daemon (16 + 2 probe gateways) ready at the end" "$all_ready" yes
    check "daemons that ended on their own" "$(wc -l <"$unexpected")" 0
    check "daemon logs with a crash or sanitizer report" "$crashes" 0
    echo
    echo "Errors seen by clients (each repeated with the same key until answered): records $rec_tries_failed failed tries, $rec_err of $rec_asked finally answered with an error (${err_codes:-none}), of which stored anyway: $rec_err_stored; SMS $sms_tries_failed failed tries; FAQ searches $((faq_asked - faq_ok)) of $faq_asked (${faq_codes:-none}); webhooks $pbx_retries repeated by the PBX."
    echo "Lost (answered 2xx, not stored): records $((rec_ok - rec_ok_once)), SMS $((sms_ok - sms_ok_once)), calls $((calls - calls_distinct)). Duplicated: records $rec_dup, SMS $sms_dup, calls $((calls_stored - calls_distinct)), records of calls $((records_calls - records_calls_distinct))."
    echo "Bus warnings in the logs (bus.event_failed, bus.events_lost): $replays."
    echo
    echo "Propagation (ms from sending the write through one copy to the first read through the other copy that found it; reads every 20 ms):"
    echo
    echo '| what | written through | read through | ms |'
    echo '| --- | --- | --- | ---: |'
    awk -F'\t' 'NR > 1 { printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }' "$prop"
    if [ -s "$master_refusals" ]; then
        echo
        echo "Records with the new department refused:"
        echo
        sed 's/^/    /' "$master_refusals"
    fi
} >"$out/report.md"
cat "$out/report.md"
if [ ${#failed[@]} -gt 0 ]; then
    say "FAILED: ${failed[*]} (logs in $out)"
    exit 1
fi
say "passed; report: $out/report.md"
