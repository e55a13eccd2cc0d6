# shellcheck shell=bash
# bench/lib.sh: helpers shared by bench/run.sh, bench/gateway.sh and
# bench/daemons.sh (sourced, not run). Expects $top (the repository), $build
# (the build folder, relative to $top or absolute) and, for summary_line,
# $summary (the summary TSV).
# shellcheck disable=SC2154 # top, build and summary come from the caller

# The services in port order: service i defaults to RPC 7100+i, PUB 7200+i and
# health 9100+i. The bench moves every port by $bench_port_offset (default
# 20000: 27100+i, 27200+i, 29100+i) so it never meets a `make run`.
bench_services=(directory calls history faq sms summary report)
bench_port_offset=${BENCH_PORT_OFFSET:-20000}

say() {
    printf '%s: %s\n' "${bench_name:-bench}" "$*" >&2
}

die() {
    say "$*"
    exit 1
}

upper() {
    tr '[:lower:]' '[:upper:]' <<<"$1"
}

bench_bindir() {
    case $build in
    /*) printf '%s/bin\n' "$build" ;;
    *) printf '%s/%s/bin\n' "$top" "$build" ;;
    esac
}

# The index of service $1 in bench_services, or nothing.
service_index() {
    local i
    for i in "${!bench_services[@]}"; do
        if [ "${bench_services[$i]}" = "$1" ]; then
            printf '%s\n' "$i"
            return 0
        fi
    done
    return 1
}

bench_rpc_port() { echo $((7100 + $1 + bench_port_offset)); }
bench_pub_port() { echo $((7200 + $1 + bench_port_offset)); }
bench_health_port() { echo $((9100 + $1 + bench_port_offset)); }

# Exports, for every service, the variables that point its binds and its
# peers at the bench ports (a daemon started afterwards inherits them).
export_bench_endpoints() {
    local i name up
    for i in "${!bench_services[@]}"; do
        name=${bench_services[$i]}
        up=$(upper "$name")
        export "NCC_${up}_RPC_BIND=tcp://127.0.0.1:$(bench_rpc_port "$i")"
        export "NCC_${up}_PUB_BIND=tcp://127.0.0.1:$(bench_pub_port "$i")"
        export "NCC_${up}_HEALTH_LISTEN=127.0.0.1:$(bench_health_port "$i")"
        export "NCC_${up}_RPC=tcp://127.0.0.1:$(bench_rpc_port "$i")"
        export "NCC_${up}_PUB=tcp://127.0.0.1:$(bench_pub_port "$i")"
    done
}

# True when something listens on 127.0.0.1:$1 (TCP).
port_in_use() {
    { exec {probe_fd}<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    exec {probe_fd}>&-
    return 0
}

# Fails with a clear message when any of the ports is taken.
require_free_ports() {
    local port
    for port in "$@"; do
        if port_in_use "$port"; then
            die "port $port on 127.0.0.1 is in use (another bench or daemon?); set BENCH_PORT_OFFSET"
        fi
    done
}

# A fork-free sleep: read with a timeout on a pipe that never gets data.
exec {bench_sleep_fd}<> <(:)
nap() {
    read -r -t "$1" -u "$bench_sleep_fd" _ || true
}

# True when http://$1:$2$3 answers 200 (plain HTTP/1.0 over bash's /dev/tcp,
# so polling forks nothing).
http_ok() {
    local host=$1 port=$2 path=$3 fd line
    { exec {fd}<>"/dev/tcp/$host/$port"; } 2>/dev/null || return 1
    printf 'GET %s HTTP/1.0\r\nHost: %s:%s\r\n\r\n' "$path" "$host" "$port" 1>&"$fd" 2>/dev/null || {
        exec {fd}>&-
        return 1
    }
    IFS= read -r -t 2 -u "$fd" line || line=
    exec {fd}>&-
    [[ $line == HTTP/1.?" 200"* ]]
}

# True while process $1 is alive (a zombie counts as dead).
is_alive() {
    local state
    kill -0 "$1" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# Waits until http://127.0.0.1:$2/readyz answers 200 while process $1 lives,
# polling every 2 ms, for at most $3 seconds. Prints the microseconds from
# $4 (an $EPOCHREALTIME taken just before the exec) to the first 200.
wait_ready() {
    local pid=$1 port=$2 limit=$3 start=$4 now
    local deadline=$((${start/./} + limit * 1000000))
    while :; do
        if http_ok 127.0.0.1 "$port" /readyz; then
            now=${EPOCHREALTIME/./}
            echo $((now - ${start/./}))
            return 0
        fi
        is_alive "$pid" || return 1
        now=${EPOCHREALTIME/./}
        [ "$now" -lt "$deadline" ] || return 1
        nap 0.002
    done
}

# SIGTERM to process $1 (ours), then wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 1000; i++)); do
        is_alive "$pid" || break
        nap 0.01
    done
    if is_alive "$pid"; then
        say "pid $pid did not stop within 10 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

# The median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
        if (NR == 0) { print "nan"; exit }
        if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# Appends one summary line: area, figure, value, unit, goal, status.
summary_line() {
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$summary"
}

# The secrets the daemons read (as scripts/run.sh keeps them): from the
# environment, else var/secrets.env. A missing key is generated for this run
# only (never written to var/); the bootstrap admin's login is only passed on
# when it exists, so the bench never creates an admin nobody knows.
load_bench_secrets() {
    local file=$top/var/secrets.env line name
    local names=(NCC_PBX_WEBHOOK_SECRET NCC_SMS_RECEIPT_SECRET NCC_DATA_KEYS NCC_BUS_ACTOR_KEY
        NCC_BLIND_INDEX_KEY)
    declare -A from_file=()
    if [ -r "$file" ]; then
        while IFS= read -r line || [ -n "$line" ]; do
            if [[ $line =~ ^(NCC_[A-Z0-9_]+)=(.*)$ ]]; then
                from_file[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
            fi
        done <"$file"
    fi
    for name in "${names[@]}"; do
        [ -n "${!name:-}" ] && continue
        if [ -n "${from_file[$name]:-}" ]; then
            export "$name=${from_file[$name]}"
        elif [ "$name" = NCC_DATA_KEYS ]; then
            export "$name=k1:$(head -c 32 /dev/urandom | base64 -w0)"
        elif [ "$name" = NCC_BUS_ACTOR_KEY ] || [ "$name" = NCC_BLIND_INDEX_KEY ]; then
            export "$name=$(head -c 32 /dev/urandom | base64 -w0)"
        else
            export "$name=$(od -An -tx1 -N 32 /dev/urandom | tr -d ' \n')"
        fi
    done
    # The actor key is base64 of 32 bytes (ncc/crypto.h); a key of another
    # shape would stop every daemon, so the bench uses a fresh one instead.
    if [ "$(base64 -d 2>/dev/null <<<"$NCC_BUS_ACTOR_KEY" | wc -c)" != 32 ]; then
        say "NCC_BUS_ACTOR_KEY is not base64 of 32 bytes: using a fresh key for this run"
        export "NCC_BUS_ACTOR_KEY=$(head -c 32 /dev/urandom | base64 -w0)"
    fi
    # Every other setting the file holds (the bootstrap admin's login, a key
    # added after this script was written), unless the environment has it.
    for name in "${!from_file[@]}"; do
        if [ -z "${!name:-}" ]; then
            export "$name=${from_file[$name]}"
        fi
    done
}

# A self-signed EC P-256 certificate, key and certificate in one PEM (the form
# civetweb and the gateway take), made once per results folder: $1.
make_certificate() {
    local pem=$1 dir
    [ -s "$pem" ] && return 0
    dir=$(dirname "$pem")
    mkdir -p "$dir"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
            -keyout "$pem.key" -out "$pem.crt" 2>/dev/null &&
            cat "$pem.key" "$pem.crt" >"$pem" &&
            rm -f "$pem.key"
    ) || die "cannot make a self-signed certificate (is openssl installed?)"
}

# bench_system_up NAME SERVICE...: the system for one benchmark, on the
# optimised build: a database of its own (scripts/pg.sh fresh bench_NAME_<pid>,
# dropped at exit), the bench ports, a first administrator the bench knows
# (benchadmin, TOTP JBSWY3DP...), the given services and the gateway started
# with their logs in $out/logs/NAME-<daemon>.log, and the administrator signed
# in. Afterwards: $api (the gateway's /api/v1 URL, plain HTTP), $http_port,
# $gateway_health_port, $pids (the daemons, stopped at exit with the
# database dropped), call METHOD PATH [curl args...] as the administrator,
# totp (its current code). Expects $out and $bindir.
bench_system_up() {
    name=$1
    shift
    if [ -z "${NCC_DATABASE_URL:-}" ]; then
        scripts/pg.sh start >/dev/null
        # shellcheck disable=SC1091
        . var/env
    fi
    load_bench_secrets
    export_bench_endpoints
    export NCC_LOG_LEVEL=${NCC_LOG_LEVEL:-warn}

    http_port=$((8080 + bench_port_offset))
    gateway_health_port=$((9190 + bench_port_offset))
    export NCC_HTTP_LISTEN=127.0.0.1:$http_port
    export NCC_HTTPS_LISTEN=127.0.0.1:$((8443 + bench_port_offset))s
    export NCC_GATEWAY_HEALTH_LISTEN=127.0.0.1:$gateway_health_port
    export NCC_TLS_CERT=$out/tls/bench.pem
    export NCC_WEB_ROOT=$top/gateway/web
    export NCC_STAFF_ALLOW_CIDRS=127.0.0.0/8
    make_certificate "$NCC_TLS_CERT"
    ports=("$http_port" "$gateway_health_port" "$((8443 + bench_port_offset))")
    for i in "${!bench_services[@]}"; do
        ports+=("$(bench_rpc_port "$i")" "$(bench_pub_port "$i")" "$(bench_health_port "$i")")
    done
    require_free_ports "${ports[@]}"

    # A database of our own, with a first administrator we know.
    db_name=bench_${name}_$$
    admin_url=${NCC_DATABASE_OWNER_URL:-$NCC_DATABASE_URL}
    NCC_DATABASE_URL=$(scripts/pg.sh fresh "$db_name" | grep '^postgresql://') ||
        die "scripts/pg.sh fresh $db_name failed"
    NCC_DATABASE_OWNER_URL=$(scripts/pg.sh owner-url "$db_name" | grep '^postgresql://')
    export NCC_DATABASE_URL NCC_DATABASE_OWNER_URL
    export NCC_BOOTSTRAP_ADMIN_LOGIN=benchadmin
    export NCC_BOOTSTRAP_ADMIN_PASSWORD=Bench-${name}-$$-Pass
    export NCC_BOOTSTRAP_ADMIN_TOTP_SECRET=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP
    export NCC_ARGON2_MEMORY_KIB=${NCC_ARGON2_MEMORY_KIB:-4096}

    pids=()
    cleanup() {
        local pid
        for pid in "${pids[@]+"${pids[@]}"}"; do
            stop_pid "$pid"
        done
        psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db_name WITH (FORCE)" >/dev/null 2>&1 || true
    }
    trap cleanup EXIT

    for d in "$@" gateway; do
        "$bindir/ncc-$d" >"$out/logs/$name-$d.log" 2>&1 </dev/null &
        pids+=($!)
    done
    for d in "$@" gateway; do
        if [ "$d" = gateway ]; then port=$gateway_health_port; else
            port=$(bench_health_port "$(service_index "$d")")
        fi
        for ((i = 0; i < 3000; i++)); do
            http_ok 127.0.0.1 "$port" /readyz && break
            nap 0.01
        done
        http_ok 127.0.0.1 "$port" /readyz || die "ncc-$d is not ready (see $out/logs/$name-$d.log)"
    done

    api=http://127.0.0.1:$http_port/api/v1
    cookies=$out/$name-cookies
    totp() {
        python3 - "$NCC_BOOTSTRAP_ADMIN_TOTP_SECRET" <<'EOF'
import base64, hashlib, hmac, struct, sys, time
key = base64.b32decode(sys.argv[1])
digest = hmac.new(key, struct.pack(">Q", int(time.time()) // 30), hashlib.sha1).digest()
offset = digest[-1] & 15
print("%06d" % ((struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1000000))
EOF
    }
    # The first administrator appears just after the directory is ready.
    csrf=
    for ((i = 0; i < 100; i++)); do
        csrf=$(curl -s -c "$cookies" -H 'Content-Type: application/json' \
            -d "{\"login\":\"$NCC_BOOTSTRAP_ADMIN_LOGIN\",\"password\":\"$NCC_BOOTSTRAP_ADMIN_PASSWORD\",\"totp\":\"$(totp)\"}" \
            "$api/session" | jq -r '.csrf_token // empty')
        [ -n "$csrf" ] && break
        nap 0.1
    done
    [ -n "$csrf" ] || die "cannot sign in as the bench administrator"
    call() { # METHOD PATH [curl args...]
        local method=$1 path=$2
        shift 2
        curl -s -b "$cookies" -H "X-CSRF-Token: $csrf" -X "$method" "$@" "$api$path"
    }
}

# bench_generate_records OWNER_URL COUNT DATA_FOLDER: COUNT interaction records of fiscal
# year 2027 written into history.records in SQL from the localgovFAQ texts of DATA_FOLDER
# (resident questions and the city's answers: inquiry about 40, response 120, summary 60
# characters), in started_at order as records arrive, and the receipt counter after them.
# Used by bench_history.sh and bench_backup.sh.
bench_generate_records() {
    psql "$1" -q -v ON_ERROR_STOP=1 -v records="$2" \
        -v queries="$(cat "$3/dev_queries.json")" >/dev/null <<SQL
CREATE TEMP TABLE raw (line text);
\copy raw FROM '$3/corpus_qa.jsonl' WITH (FORMAT csv, QUOTE E'\x01', DELIMITER E'\x02')
CREATE TEMP TABLE qa AS
    SELECT row_number() OVER () AS n, line::jsonb->>'Question' AS q,
           replace(line::jsonb->>'Answer', E'\n', '') AS a
    FROM raw;
CREATE TEMP TABLE dq AS
    SELECT row_number() OVER () AS n, value AS q FROM jsonb_each_text(:'queries'::jsonb);
SELECT count(*) AS nqa FROM qa \gset
SELECT count(*) AS ndq FROM dq \gset
INSERT INTO history.records (receipt_id, channel, operator_id, operator_name, started_at,
    ended_at, wrapup_ended_at, department_id, category, reception_type, handling_type,
    inquiry, response, summary, status, source)
SELECT 'R2027-' || lpad(g::text, 7, '0'),
       (ARRAY['phone','phone','phone','phone','phone','form','visit','chat','line'])[1 + g % 9],
       1 + g % 40, 'オペレーター' || (1 + g % 40),
       t, t + interval '4 minutes', t + interval '7 minutes',
       'D' || lpad((1 + g % 45)::text, 2, '0'), 'C' || lpad((1 + (g / 7) % 20)::text, 2, '0'),
       'R01', 'H01',
       CASE WHEN g % 2 = 0 THEN dq.q ELSE qa.q END,
       substr(qa2.a, 1 + (g % greatest(1, length(qa2.a) - 120)), 120),
       left(qa3.q, 60),
       (ARRAY['closed','closed','closed','in_progress','open'])[1 + g % 5],
       'import'
FROM generate_series(1, :records) g
CROSS JOIN LATERAL (SELECT '2027-04-01T00:00:00+09:00'::timestamptz
    + ((hashint4(g) & 2147483647) % 31536000) * interval '1 second' AS t) tt
JOIN qa ON qa.n = 1 + (hashint4(g * 3) & 2147483647) % :nqa
JOIN qa qa2 ON qa2.n = 1 + (hashint4(g * 5) & 2147483647) % :nqa
JOIN qa qa3 ON qa3.n = 1 + (hashint4(g * 7) & 2147483647) % :nqa
JOIN dq ON dq.n = 1 + (hashint4(g * 11) & 2147483647) % :ndq
ORDER BY t; -- records arrive as the year goes: the table's order follows started_at
INSERT INTO history.receipt_counters VALUES (2027, :records)
    ON CONFLICT (fiscal_year) DO UPDATE SET last_number = excluded.last_number;
SQL
}
