#!/usr/bin/env bash
# Runs the whole of ncc on this machine: a local PostgreSQL under var/ and every daemon.
#   scripts/run.sh foreground   start, print the URL and the first admin login, wait for Ctrl-C
#   scripts/run.sh background   start and return once every daemon is ready
#   scripts/run.sh stop         stop a background run (daemons, then PostgreSQL)
#   scripts/run.sh status       what is running and whether it is ready
#
# Binaries come from ${BUILD:-build}/bin (run `make` first). Logs go to var/log/<daemon>.log,
# pid files to var/run/<daemon>.pid. Secrets come from the environment or var/secrets.env
# (generated on first use; values in the environment win). NCC_DATABASE_URL in the
# environment means "use that database" (no local cluster is started); otherwise
# scripts/pg.sh starts the local one and var/env names it.
# Other settings: NCC_VAR (default <repo>/var), NCC_READY_TIMEOUT (seconds, default 30),
# NCC_STOP_TIMEOUT (seconds, default 30), and every daemon's own NCC_* variables.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
var=${NCC_VAR:-$top/var}
build=${BUILD:-build}
case $build in
/*) bindir=$build/bin ;;
*) bindir=$top/$build/bin ;;
esac
ready_timeout=${NCC_READY_TIMEOUT:-30}
stop_timeout=${NCC_STOP_TIMEOUT:-30}

# In port order: service i binds RPC 7100+i, PUB 7200+i, health 9100+i. The gateway comes last.
services=(directory calls history faq sms summary report)
daemons=("${services[@]}" gateway)

secret_names=(NCC_PBX_WEBHOOK_SECRET NCC_SMS_RECEIPT_SECRET NCC_DATA_KEYS NCC_BUS_ACTOR_KEY
    NCC_BLIND_INDEX_KEY
    NCC_BOOTSTRAP_ADMIN_LOGIN NCC_BOOTSTRAP_ADMIN_PASSWORD NCC_BOOTSTRAP_ADMIN_TOTP_SECRET)

say() {
    printf 'run.sh: %s\n' "$*" >&2
}

upper() {
    tr '[:lower:]' '[:upper:]' <<<"$1"
}

# host:port where daemon $1 answers /readyz (from its NCC_<NAME>_HEALTH_LISTEN if set).
health_addr() {
    local d=$1 i listen def
    if [ "$d" = gateway ]; then
        def=127.0.0.1:9190
    else
        for i in "${!services[@]}"; do
            [ "${services[$i]}" = "$d" ] && def=127.0.0.1:$((9100 + i))
        done
    fi
    local var_name
    var_name=NCC_$(upper "$d")_HEALTH_LISTEN
    listen=${!var_name:-$def}
    listen=${listen%%,*}     # the first of several listening ports
    listen=${listen%[a-z]}   # civetweb suffixes: 9101s, 9101r
    case $listen in
    *:*) ;;
    *) listen=127.0.0.1:$listen ;;
    esac
    local host=${listen%:*} port=${listen##*:}
    case $host in
    '' | 0.0.0.0 | '*') host=127.0.0.1 ;;
    '[::]') host='[::1]' ;;
    esac
    printf '%s:%s\n' "$host" "$port"
}

is_ready() {
    curl -fsS -o /dev/null -m 2 "http://$(health_addr "$1")/readyz" 2>/dev/null
}

# True while process $1 exists and has not exited (a zombie child counts as exited).
is_alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# The pid of daemon $1 from its pid file when that process is still this daemon, else nothing.
daemon_pid() {
    local d=$1 file=$var/run/$1.pid pid
    [ -f "$file" ] || return 0
    pid=$(cat "$file" 2>/dev/null) || return 0
    [[ $pid =~ ^[0-9]+$ ]] || return 0
    is_alive "$pid" || return 0
    # Guard against a recycled pid: the command line must name ncc-<daemon>.
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ncc-$d" || return 0
    printf '%s\n' "$pid"
}

show_log_tail() {
    local d=$1 log=$var/log/$1.log
    if [ -s "$log" ]; then
        say "last lines of $log:"
        tail -n 30 "$log" | sed 's/^/    /' >&2
    else
        say "$log is empty"
    fi
}

# --- secrets ---------------------------------------------------------------------

random_alnum() { # $1 characters from [A-Za-z0-9]
    local out=''
    while [ ${#out} -lt "$1" ]; do
        out+=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
    done
    printf '%s\n' "${out:0:$1}"
}

random_hex() { # $1 bytes as hex
    od -An -tx1 -N "$1" /dev/urandom | tr -d ' \n'
    echo
}

new_secret() {
    case $1 in
    NCC_DATA_KEYS) printf 'k1:%s\n' "$(head -c 32 /dev/urandom | base64 -w0)" ;;
    NCC_BUS_ACTOR_KEY | NCC_BLIND_INDEX_KEY) head -c 32 /dev/urandom | base64 -w0 && echo ;;
    NCC_PBX_WEBHOOK_SECRET | NCC_SMS_RECEIPT_SECRET) random_hex 32 ;;
    NCC_BOOTSTRAP_ADMIN_LOGIN) echo admin ;;
    NCC_BOOTSTRAP_ADMIN_PASSWORD) random_alnum 20 ;;
    NCC_BOOTSTRAP_ADMIN_TOTP_SECRET) head -c 20 /dev/urandom | base32 -w0 | tr -d '=' && echo ;;
    esac
}

# Reads var/secrets.env (NAME=value lines), adds a generated value for each secret
# that neither the environment nor the file has, and exports them all.
load_secrets() {
    local file=$var/secrets.env line name value
    mkdir -p "$var"
    (umask 077 && touch "$file")
    chmod 600 "$file"
    declare -gA file_values=()
    while IFS= read -r line || [ -n "$line" ]; do
        if [[ $line =~ ^(NCC_[A-Z0-9_]+)=(.*)$ ]]; then
            file_values[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
        fi
    done <"$file"
    for name in "${secret_names[@]}"; do
        if [ -n "${!name:-}" ]; then
            continue # the environment wins
        fi
        if [ -z "${file_values[$name]:-}" ]; then
            value=$(new_secret "$name")
            printf '%s=%s\n' "$name" "$value" >>"$file"
            file_values[$name]=$value
        fi
        export "$name=${file_values[$name]}"
    done
}

# A self-signed certificate for the gateway (NCC_TLS_CERT: key and certificate in one PEM)
# and the certificate alone for clients (var/tls/gateway.crt).
ensure_certificate() {
    export NCC_TLS_CERT=${NCC_TLS_CERT:-$var/tls/gateway.pem}
    [ -s "$NCC_TLS_CERT" ] && return 0
    local dir
    dir=$(dirname "$NCC_TLS_CERT")
    mkdir -p "$dir"
    (
        umask 077
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 825 \
            -subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
            -keyout "$dir/gateway.key.tmp" -out "$dir/gateway.crt.tmp" 2>/dev/null
        cat "$dir/gateway.key.tmp" "$dir/gateway.crt.tmp" >"$NCC_TLS_CERT"
        mv "$dir/gateway.crt.tmp" "$dir/gateway.crt"
        rm -f "$dir/gateway.key.tmp"
    ) || {
        say "cannot make a self-signed certificate in $dir (is openssl installed?)"
        exit 1
    }
    chmod 644 "$dir/gateway.crt"
}

# --- PostgreSQL ------------------------------------------------------------------

start_database() {
    mkdir -p "$var/run"
    if [ -n "${NCC_DATABASE_URL:-}" ]; then
        return 0 # given by the caller: not ours to start or stop
    fi
    "$top/scripts/pg.sh" start
    # shellcheck disable=SC1091
    . "$var/env"
    touch "$var/run/pg.owned"
}

stop_database() {
    if [ -f "$var/run/pg.owned" ]; then
        "$top/scripts/pg.sh" stop
        rm -f "$var/run/pg.owned"
    fi
}

# --- daemons ---------------------------------------------------------------------

start_daemon() {
    local d=$1 bin=$bindir/ncc-$1 log=$var/log/$1.log
    if [ -s "$log" ]; then
        mv -f "$log" "$log.old"
    fi
    # Its own session: Ctrl-C reaches this script, which then stops the daemons in order.
    setsid "$bin" >"$log" 2>&1 </dev/null &
    echo $! >"$var/run/$d.pid"
}

# SIGTERM to every running daemon (gateway first), then wait for them to exit.
stop_daemons() {
    local d pid i pids=() names=()
    for ((i = ${#daemons[@]} - 1; i >= 0; i--)); do
        d=${daemons[$i]}
        pid=$(daemon_pid "$d")
        if [ -n "$pid" ]; then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$d")
        elif [ -f "$var/run/$d.pid" ]; then
            say "ncc-$d had already stopped (see $var/log/$d.log)"
        fi
    done
    local deadline=$((SECONDS + stop_timeout)) left
    while :; do
        left=0
        for i in "${!pids[@]}"; do
            is_alive "${pids[$i]}" && left=1
        done
        [ $left = 0 ] && break
        if [ $SECONDS -ge $deadline ]; then
            for i in "${!pids[@]}"; do
                if is_alive "${pids[$i]}"; then
                    say "ncc-${names[$i]} did not stop within ${stop_timeout}s: SIGKILL"
                    kill -KILL "${pids[$i]}" 2>/dev/null || true
                fi
            done
            break
        fi
        sleep 0.1
    done
    # Reap our own children (foreground and a failed start) and report bad exits.
    for i in "${!pids[@]}"; do
        if wait "${pids[$i]}" 2>/dev/null; then
            :
        else
            local rc=$?
            # 127: not our child (a `stop` from another shell): nothing to report.
            if [ $rc != 127 ] && [ $rc != 143 ]; then
                say "ncc-${names[$i]} exited with status $rc (see $var/log/${names[$i]}.log)"
            fi
        fi
    done
    for d in "${daemons[@]}"; do
        rm -f "$var/run/$d.pid"
    done
}

# Starts everything and waits until every daemon is ready; on failure stops what
# it started, shows the culprit's log, and exits non-zero.
start_all() {
    local d missing=()
    for d in "${daemons[@]}"; do
        [ -x "$bindir/ncc-$d" ] || missing+=("$bindir/ncc-$d")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "not built: ${missing[*]} (run: make${BUILD:+ BUILD=$BUILD})"
        exit 1
    fi
    mkdir -p "$var/log" "$var/run"
    for d in "${daemons[@]}"; do
        if [ -n "$(daemon_pid "$d")" ]; then
            say "ncc-$d is already running (scripts/run.sh stop)"
            exit 1
        fi
        if is_ready "$d"; then
            say "something already answers on $(health_addr "$d") (ncc-$d's health port)"
            exit 1
        fi
    done
    load_secrets
    ensure_certificate
    export NCC_WEB_ROOT=${NCC_WEB_ROOT:-$top/gateway/web}
    start_database
    for d in "${daemons[@]}"; do
        start_daemon "$d"
    done
    local deadline=$((SECONDS + ready_timeout)) pending=("${daemons[@]}") next pid
    while [ ${#pending[@]} -gt 0 ]; do
        next=()
        for d in "${pending[@]}"; do
            pid=$(cat "$var/run/$d.pid")
            if ! is_alive "$pid"; then
                local rc=0
                wait "$pid" 2>/dev/null || rc=$?
                say "ncc-$d exited during start-up (status $rc)"
                show_log_tail "$d"
                stop_daemons
                stop_database
                exit 1
            fi
            is_ready "$d" || next+=("$d")
        done
        pending=("${next[@]+"${next[@]}"}")
        [ ${#pending[@]} -eq 0 ] && break
        if [ $SECONDS -ge $deadline ]; then
            for d in "${pending[@]}"; do
                say "ncc-$d is not ready after ${ready_timeout}s (http://$(health_addr "$d")/readyz)"
                curl -sS -m 2 "http://$(health_addr "$d")/readyz" 2>&1 | head -5 | sed 's/^/    /' >&2 || true
                show_log_tail "$d"
            done
            stop_daemons
            stop_database
            exit 1
        fi
        sleep 0.2
    done
}

print_welcome() {
    local port=${NCC_HTTPS_PORT:-8443}
    cat <<EOF

ncc is running: https://127.0.0.1:$port/
  The certificate is self-signed ($NCC_TLS_CERT): your browser will warn once.
  First admin login (made on the first start with an empty database):
    login:       $NCC_BOOTSTRAP_ADMIN_LOGIN
    password:    $NCC_BOOTSTRAP_ADMIN_PASSWORD
    TOTP secret: $NCC_BOOTSTRAP_ADMIN_TOTP_SECRET  (add it to an authenticator app)
  These come from $var/secrets.env or your environment.
  Logs: $var/log/<daemon>.log
EOF
}

foreground() {
    local stopping=0 rc=0 d pid
    trap 'stopping=1' INT TERM
    start_all
    print_welcome
    echo "  Press Ctrl-C to stop."
    while [ $stopping = 0 ]; do
        sleep 1 &
        wait $! 2>/dev/null || true
        [ $stopping = 1 ] && break
        for d in "${daemons[@]}"; do
            pid=$(cat "$var/run/$d.pid" 2>/dev/null || true)
            if [ -n "$pid" ] && ! is_alive "$pid"; then
                local status=0
                wait "$pid" 2>/dev/null || status=$?
                say "ncc-$d stopped unexpectedly (status $status)"
                show_log_tail "$d"
                rm -f "$var/run/$d.pid"
                rc=1
                stopping=1
            fi
        done
    done
    trap - INT TERM
    echo
    say "stopping"
    stop_daemons
    stop_database
    say "stopped"
    exit $rc
}

background() {
    start_all
    print_welcome
    echo "  Stop with: scripts/run.sh stop"
}

stop() {
    stop_daemons
    stop_database
}

status() {
    local d pid rc=0
    for d in "${daemons[@]}"; do
        pid=$(daemon_pid "$d")
        if [ -z "$pid" ]; then
            printf '%-10s stopped\n' "$d"
            rc=1
        elif is_ready "$d"; then
            printf '%-10s running (pid %s), ready\n' "$d" "$pid"
        else
            printf '%-10s running (pid %s), not ready\n' "$d" "$pid"
            rc=1
        fi
    done
    if "$top/scripts/pg.sh" status; then
        printf '%-10s running\n' postgresql
    else
        printf '%-10s stopped\n' postgresql
    fi
    return $rc
}

case "${1:-}" in
foreground) foreground ;;
background) background ;;
stop) stop ;;
status) status ;;
*)
    echo "usage: $0 foreground|background|stop|status" >&2
    exit 2
    ;;
esac
