# shellcheck shell=bash
# tests/chaos/faults2.sh: two more faults for tests/chaos/chaos.sh (issue 10; docs/reliability.md),
# sourced by it, sharing its system, load and reconciliation:
#
#   outbox (CHAOS_OUTBOX=1, the default): ncc-history, the subscriber of ncc-calls' events, is
#     stopped (SIGTERM) while, on top of the steady load, ncc-pbxsim sends CHAOS_OUTBOX_CALLS
#     calls (3000) as fast as they are taken, each with CHAOS_OUTBOX_SEGMENTS transcript
#     segments (6): about 9 events a call pile up in ncc-calls' outbox. Then ncc-history is
#     started and measured while it catches up: time until its cursor reaches ncc-calls' last
#     sequence number, events received by replay (ncc_events_replayed_total; replays ask 500
#     at a time), its memory (VmRSS sampled every 0.1 s, VmHWM), and record searches through the
#     gateway (GET /api/v1/records?q=, 10 a second) answered meanwhile and their latency.
#     Reconciled: every call of the burst stored once, every answered one exactly one record.
#   retention (with the outbox fault; CHAOS_PRUNE_CALLS=20, 0 skips it): events pruned before
#     their subscriber read them. NCC_OUTBOX_RETENTION_HOURS counts hours (1 at least), so the
#     test ages the events instead of waiting: with ncc-history stopped, CHAOS_PRUNE_CALLS calls
#     are made, their outbox rows (found by call id in the payload) get published_at moved
#     400 hours back (past the default 336), ncc-calls is restarted (it prunes at its first
#     timer tick, then hourly), ncc-history is started: it must log bus.events_lost, skip those
#     events (no record for those calls) and apply every later one.
#   partition (CHAOS_PARTITION=auto, the default: on when run as root with ip and iptables;
#     1 forces it, 0 skips it): ncc-history runs in a network namespace of its own joined to
#     this one by a veth pair (10.231.K.0/29, K from CHAOS_PORT_OFFSET); every other daemon
#     also binds its bus on the veth, PostgreSQL listens on it, and ncc-calls reaches
#     ncc-history from an address of its own (tcp://src;dst) so that the two can be cut apart.
#     Under load, iptables in the namespace drops (silently, as a broken network does):
#       1. every packet between ncc-history and ncc-calls (both ways) for CHAOS_CUT_S (15 s);
#       2. every packet on the link (ncc-history cut from every daemon and from PostgreSQL)
#          for CHAOS_CUT_S;
#     then lets them through again and measures when every daemon is ready and when
#     ncc-history has caught up with ncc-calls' events. The namespace, the veth pair, the
#     /readyz forwarder and PostgreSQL's extra listen address are removed at exit.
#
# CHAOS_CLASSIC=0 skips chaos.sh's own faults (kills, PostgreSQL restart, pauses) for a
# shorter run of these. Expects chaos.sh's variables and functions (q, start_daemon, pid_of,
# wait_all_ready, now_us, check, bench/lib.sh).
# shellcheck disable=SC2154,SC2034 # the variables come from chaos.sh and bench/lib.sh

faults2_settings() {
    classic=${CHAOS_CLASSIC:-1}
    outbox_on=${CHAOS_OUTBOX:-1}
    outbox_calls=${CHAOS_OUTBOX_CALLS:-3000}
    outbox_segments=${CHAOS_OUTBOX_SEGMENTS:-6}
    catchup_limit_s=${CHAOS_CATCHUP_LIMIT_S:-300}
    prune_calls=${CHAOS_PRUNE_CALLS:-20}
    partition_on=${CHAOS_PARTITION:-auto}
    cut_s=${CHAOS_CUT_S:-15}
    partition_note=
    local why=
    if [ "$(id -u)" != 0 ]; then
        why="not run as root"
    elif ! command -v ip >/dev/null || ! command -v iptables >/dev/null; then
        why="ip or iptables is not installed (apt-get install -y iptables)"
    elif ! ip netns list >/dev/null 2>&1; then
        why="ip netns does not work here"
    fi
    if [ "$partition_on" = auto ]; then
        partition_on=1
        [ -z "$why" ] || { partition_on=0 partition_note="partition skipped: $why"; }
    elif [ "$partition_on" = 1 ] && [ -n "$why" ]; then
        die "CHAOS_PARTITION=1 but $why (CHAOS_PARTITION=0 skips it)"
    fi
    f2_k=$(((BENCH_PORT_OFFSET / 100) % 250))
    f2_ns=nccchaos$f2_k
    f2_veth=nccchaos${f2_k}h # this side; the namespace's end is ...n
    f2_host=10.231.$f2_k.1 f2_nsip=10.231.$f2_k.2 f2_calls_src=10.231.$f2_k.3
}

# Extra seconds of call load the faults here need (chaos.sh sizes ncc-pbxsim's run with it).
faults2_seconds() {
    local s=0
    [ "$outbox_on" = 1 ] && s=$((s + outbox_calls / 15 + 60))
    [ "$outbox_on" = 1 ] && [ "$prune_calls" -gt 0 ] && s=$((s + 40))
    [ "$partition_on" = 1 ] && s=$((s + 2 * (cut_s + 15)))
    echo "$s"
}

f2_pg_su() {
    runuser -u postgres -- psql -h "$(readlink -f "$NCC_VAR/pg")" -p "$NCC_PG_PORT" -U postgres -X -qAtc "$1"
}
f2_pg_restart() {
    runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$pg_data" -l "$NCC_VAR/pg/server.log" \
        -m fast -w restart >/dev/null
}
f2_net_down() {
    ip link del "$f2_veth" 2>/dev/null || true
    ip netns del "$f2_ns" 2>/dev/null || true
}

# The network namespace, PostgreSQL on the veth, and wrappers in $out/bin that start each
# daemon with its binds and peers (ncc-history inside the namespace); bindir points there.
faults2_setup() {
    [ "$partition_on" = 1 ] || return 0
    local real=$bindir i name up d rpc pub
    f2_net_down # what an interrupted run left
    ip netns add "$f2_ns"
    ip link add "$f2_veth" type veth peer name "${f2_veth%h}n"
    ip link set "${f2_veth%h}n" netns "$f2_ns"
    ip addr add "$f2_host/29" dev "$f2_veth"
    ip addr add "$f2_calls_src/29" dev "$f2_veth"
    ip link set "$f2_veth" up
    ip -n "$f2_ns" addr add "$f2_nsip/29" dev "${f2_veth%h}n"
    ip -n "$f2_ns" link set "${f2_veth%h}n" up
    ip -n "$f2_ns" link set lo up
    f2_pg_su "ALTER SYSTEM SET listen_addresses = '127.0.0.1,$f2_host'"
    sed -i '/# chaos partition$/d' "$pg_data/pg_hba.conf"
    echo "host all all $f2_nsip/32 scram-sha-256 # chaos partition" >>"$pg_data/pg_hba.conf"
    f2_pg_restart || die "cannot restart the chaos cluster with listen_addresses on $f2_host"
    mkdir -p "$out/bin" "$out/partition"
    ln -sf "$real/ncc-pbxsim" "$out/bin/ncc-pbxsim"
    local hrpc hpub hhealth
    i=$(service_index history)
    hrpc=$(bench_rpc_port "$i") hpub=$(bench_pub_port "$i") hhealth=$(bench_health_port "$i")
    # ncc-history: in the namespace, peers and PostgreSQL on the veth, /readyz forwarded to
    # 127.0.0.1 in this namespace (one forwarder for the run, started with the first daemon).
    {
        echo '#!/bin/sh'
        echo "export NCC_HISTORY_RPC_BIND=tcp://$f2_nsip:$hrpc NCC_HISTORY_PUB_BIND=tcp://$f2_nsip:$hpub"
        echo "export NCC_HISTORY_HEALTH_LISTEN=$f2_nsip:$hhealth"
        for i in "${!bench_services[@]}"; do
            name=${bench_services[$i]}
            [ "$name" = history ] && continue
            up=$(upper "$name")
            echo "export NCC_${up}_RPC=tcp://$f2_host:$(bench_rpc_port "$i") NCC_${up}_PUB=tcp://$f2_host:$(bench_pub_port "$i")"
        done
        echo "NCC_DATABASE_URL=\$(printf %s \"\$NCC_DATABASE_URL\" | sed 's/@127[.]0[.]0[.]1:/@$f2_host:/')"
        echo "NCC_DATABASE_OWNER_URL=\$(printf %s \"\$NCC_DATABASE_OWNER_URL\" | sed 's/@127[.]0[.]0[.]1:/@$f2_host:/')"
        echo 'export NCC_DATABASE_URL NCC_DATABASE_OWNER_URL'
        echo "if [ ! -s '$out/partition/forwarder.pid' ]; then"
        echo "    python3 '$out/partition/forward.py' 127.0.0.1 $hhealth $f2_nsip $hhealth </dev/null >>'$out/logs/forwarder.log' 2>&1 &"
        echo "    echo \$! >'$out/partition/forwarder.pid'"
        echo 'fi'
        echo "exec ip netns exec $f2_ns '$real/ncc-history' \"\$@\""
    } >"$out/bin/ncc-history"
    # The others: the bus also on the veth, ncc-history in the namespace (ncc-calls from
    # an address of its own, so that iptables can tell its packets from the gateway's).
    for d in "${bench_services[@]}" gateway; do
        [ "$d" = history ] && continue
        {
            echo '#!/bin/sh'
            if i=$(service_index "$d"); then
                up=$(upper "$d") rpc=$(bench_rpc_port "$i") pub=$(bench_pub_port "$i")
                echo "export NCC_${up}_RPC_BIND=tcp://127.0.0.1:$rpc,tcp://$f2_host:$rpc"
                echo "export NCC_${up}_PUB_BIND=tcp://127.0.0.1:$pub,tcp://$f2_host:$pub"
            fi
            if [ "$d" = calls ]; then
                echo "export NCC_HISTORY_RPC='tcp://$f2_calls_src:0;$f2_nsip:$hrpc'"
            else
                echo "export NCC_HISTORY_RPC=tcp://$f2_nsip:$hrpc"
            fi
            echo "export NCC_HISTORY_PUB=tcp://$f2_nsip:$hpub"
            echo "exec '$real/ncc-$d' \"\$@\""
        } >"$out/bin/ncc-$d"
    done
    chmod +x "$out/bin"/ncc-*
    cat >"$out/partition/forward.py" <<'EOF'
# TCP forwarder: listen HOST PORT, connect to HOST2 PORT2 (the chaos test's view of /readyz of
# a daemon in another network namespace).
import asyncio, sys

async def pipe(reader, writer):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except Exception:
        pass
    finally:
        writer.close()

async def handle(reader, writer):
    try:
        r2, w2 = await asyncio.wait_for(asyncio.open_connection(sys.argv[3], int(sys.argv[4])), 1)
    except Exception:
        # Unreachable: answer 503 after the request (closing at once would make the client's
        # write fail with SIGPIPE, which kills a shell's http_ok).
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
            writer.write(b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        except Exception:
            pass
        writer.close()
        return
    await asyncio.gather(pipe(reader, w2), pipe(r2, writer))

async def main():
    server = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    await server.serve_forever()

asyncio.run(main())
EOF
    bindir=$out/bin
    say "partition: ncc-history in namespace $f2_ns ($f2_nsip), the others on $f2_host; ncc-calls reaches it from $f2_calls_src"
}

faults2_cleanup() {
    [ "$partition_on" = 1 ] || return 0
    [ -s "$out/partition/forwarder.pid" ] && kill "$(cat "$out/partition/forwarder.pid")" 2>/dev/null
    f2_net_down
    sed -i '/# chaos partition$/d' "$pg_data/pg_hba.conf" 2>/dev/null || true
    f2_pg_su "ALTER SYSTEM RESET listen_addresses" 2>/dev/null || true
}

f2_cursor() { q "SELECT coalesce(max(last_seq), 0) FROM history.inbox_cursor WHERE publisher = 'calls'"; }
f2_last() { q "SELECT last_seq FROM calls.outbox_state"; }
f2_rss() { awk -v k="$2" '$1 == k ":" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
f2_metric() { # NAME: ncc-history's counter (its /metrics)
    curl -s -m 2 "http://127.0.0.1:$(health_port history)/metrics" | awk -v n="$1" 'index($1, n) == 1 && substr($1, length(n) + 1) ~ /^($|[{])/ { v += $2 } END { print v + 0 }'
}
# Record searches through the gateway, 10 a second: number, status, seconds, time answered
# and time sent (us).
f2_search_loop() {
    local n=0 line sent words=(住民票 粗大ごみ 印鑑 マイナンバー)
    while :; do
        sent=${EPOCHREALTIME/./}
        line=$(curl -s -m 15 -b "$cookies" -o /dev/null -w '%{http_code} %{time_total}' -G \
            --data-urlencode "q=${words[$((n % 4))]}" --data-urlencode per_page=20 "$api/records") || true
        printf '%s %s %s %s\n' "$n" "${line:-000 15}" "${EPOCHREALTIME/./}" "$sent" >>"$1"
        n=$((n + 1))
        nap 0.1
    done
}
# Count, errors, p50, p99, max (ms) of the searches logged in $1 sent between $2 and $3 (us).
f2_search_stats() {
    awk -v a="$2" -v b="$3" '$5 >= a && $5 <= b { n++; t[n] = $3 * 1000; if ($2 !~ /^2/) e++ }
        END { if (!n) { print "0 0 0 0 0"; exit }
              for (i = 1; i <= n; i++) for (j = i; j > 1 && t[j - 1] > t[j]; j--) { x = t[j]; t[j] = t[j - 1]; t[j - 1] = x }
              p50 = t[int((n - 1) * 0.5) + 1]; p99 = t[int((n - 1) * 0.99) + 1]
              printf "%d %d %.0f %.0f %.0f\n", n, e, p50, p99, t[n] }' "$1"
}
# Waits until ncc-history's cursor for ncc-calls reaches $1 (at most $2 s), sampling its
# memory into $3; prints the milliseconds since $4 (us), or -1.
f2_wait_cursor() {
    local target=$1 limit=$2 samples=$3 since=$4 cur deadline
    deadline=$(($(now_us) + limit * 1000000))
    while :; do
        cur=$(f2_cursor)
        [ -n "$samples" ] && printf '%s\t%s\t%s\n' "$(($(now_us) - since))" "$cur" "$(f2_rss "${pid_of[history]}" VmRSS)" >>"$samples"
        [ "$cur" -ge "$target" ] && break
        [ "$(now_us)" -lt "$deadline" ] || { echo -1; return 1; }
        nap 0.1
    done
    echo $((($(now_us) - since) / 1000))
}

f2_outbox() {
    local burst_json=$out/load/pbxsim-outbox.json searches=$out/load/outbox-searches.log
    local samples=$out/load/outbox-catchup.tsv stopped_at started_at caught_at search_pid
    say "outbox: stopping ncc-history; $outbox_calls calls as fast as they are taken"
    stopped_at=$(now_us)
    stop_pid "${pid_of[history]}"
    local c0 l0
    c0=$(f2_cursor) l0=$(f2_last)
    "$bindir/ncc-pbxsim" --url "http://127.0.0.1:$http_port" --secret "$NCC_PBX_WEBHOOK_SECRET" \
        --calls "$outbox_calls" --concurrency 16 --segments "$outbox_segments" --retry 90 \
        --extensions "$ext_list" --run "${run}o" >"$burst_json" 2>"$out/load/pbxsim-outbox.err" || true
    nap 1 # the last flush
    ob_burst_s=$((($(now_us) - stopped_at) / 1000000))
    ob_last=$(f2_last)
    ob_cursor=$(f2_cursor)
    ob_backlog=$((ob_last - ob_cursor))
    ob_burst_events=$((ob_last - l0))
    ob_outbox_rows=$(q "SELECT count(*) FROM calls.outbox")
    ob_outbox_size=$(q "SELECT pg_size_pretty(pg_total_relation_size('calls.outbox'))")
    ob_answered=$(jq -r '.answered // 0' "$burst_json")
    ob_rate=$(jq -r '.calls_per_s // 0' "$burst_json")
    say "outbox: $ob_backlog events behind (burst $ob_burst_events events, ${ob_rate} calls/s); starting ncc-history"
    f2_search_loop "$searches" &
    search_pid=$!
    loaders+=("$search_pid")
    started_at=$(now_us)
    start_daemon history
    printf 't_us\tcursor\tVmRSS_kB\n' >"$samples"
    ob_ready_ms=$(wait_all_ready "$started_at") || true
    ob_caught_ms=$(f2_wait_cursor "$ob_last" "$catchup_limit_s" "$samples" "$started_at") || true
    caught_at=$(now_us)
    # Until the searches are answered again (at most 60 s more).
    local until=$(($(now_us) + 60000000))
    while [ "$(now_us)" -lt "$until" ] &&
        ! awk -v a="$caught_at" '$5 >= a && $2 ~ /^2/ { f = 1 } END { exit !f }' "$searches"; do
        nap 0.2
    done
    kill "$search_pid" 2>/dev/null || true
    wait "$search_pid" 2>/dev/null || true
    unset 'loaders[-1]'
    ob_rss_max=$(awk -F'\t' 'NR > 1 && $3 > m { m = $3 } END { print m + 0 }' "$samples")
    ob_hwm=$(f2_rss "${pid_of[history]}" VmHWM)
    ob_rss_after=$(f2_rss "${pid_of[history]}" VmRSS)
    ob_replayed=$(f2_metric ncc_events_replayed_total)
    ob_applied=$(f2_metric ncc_events_applied_total)
    read -r ob_s_n ob_s_err ob_s_p50 ob_s_p99 ob_s_max < <(f2_search_stats "$searches" "$started_at" "$caught_at")
    ob_first_ok_ms=$(awk -v a="$started_at" '$5 >= a && $2 ~ /^2/ { print int(($4 - a) / 1000); exit }' "$searches")
    ob_s_codes=$(awk -v a="$started_at" -v b="$caught_at" '$5 >= a && $5 <= b && $2 !~ /^2/ { c[$2]++ }
        END { for (k in c) printf "%s%s×%d", (s++ ? ", " : ""), k, c[k] }' "$searches")
    say "outbox: ncc-history ready after $ob_ready_ms ms, caught up after $ob_caught_ms ms ($ob_replayed replayed); searches p99 $ob_s_p99 ms, $ob_s_err errors of $ob_s_n"
    printf 'outbox: ncc-history stopped for %s calls (%s events), started\thistory\t%s\t%s\n' \
        "$outbox_calls" "$ob_backlog" "$ob_ready_ms" "$stopped_at" >>"$faults"
    nap "$gap_s"
}

f2_prune() {
    [ "$prune_calls" -gt 0 ] || return 0
    local stopped_at started_at c0 deadline
    say "retention: stopping ncc-history; $prune_calls calls whose events are then aged past the retention"
    stopped_at=$(now_us)
    stop_pid "${pid_of[history]}"
    pr_log_before=$(grep -c 'bus.events_lost' "$out/logs/chaos-history.log" || true)
    "$bindir/ncc-pbxsim" --url "http://127.0.0.1:$http_port" --secret "$NCC_PBX_WEBHOOK_SECRET" \
        --calls "$prune_calls" --concurrency 4 --segments 2 --retry 90 \
        --extensions "$ext_list" --run "${run}p" >"$out/load/pbxsim-prune.json" 2>"$out/load/pbxsim-prune.err" || true
    nap 1
    c0=$(f2_cursor)
    # Events of these calls carry their call id in the payload.
    pr_aged=$(q "WITH u AS (UPDATE calls.outbox SET published_at = published_at - interval '400 hours'
        WHERE seq > $c0 AND position(convert_to('sim-${run}p-', 'UTF8') in payload) > 0 RETURNING 1)
        SELECT count(*) FROM u")
    pr_answered=$(jq -r '.answered // 0' "$out/load/pbxsim-prune.json")
    stop_pid "${pid_of[calls]}"
    start_daemon calls
    deadline=$(($(now_us) + 30000000))
    until [ "$(q "SELECT count(*) FROM calls.outbox WHERE published_at < now() - interval '300 hours'")" = 0 ]; do
        [ "$(now_us)" -lt "$deadline" ] || break
        nap 0.2
    done
    pr_left=$(q "SELECT count(*) FROM calls.outbox WHERE published_at < now() - interval '300 hours'")
    pr_last=$(f2_last)
    started_at=$(now_us)
    start_daemon history
    pr_ready_ms=$(wait_all_ready "$started_at") || true
    pr_caught_ms=$(f2_wait_cursor "$pr_last" 120 "" "$started_at") || true
    pr_lost_logs=$(($(grep -c 'bus.events_lost' "$out/logs/chaos-history.log" || true) - pr_log_before))
    pr_records=$(q "SELECT count(*) FROM history.records WHERE call_id LIKE 'sim-${run}p-%'")
    say "retention: $pr_aged events aged and $((pr_aged - pr_left)) pruned; ncc-history logged bus.events_lost $pr_lost_logs times, caught up after $pr_caught_ms ms"
    printf 'retention: %s events pruned unread, ncc-calls and ncc-history restarted\thistory\t%s\t%s\n' \
        "$pr_aged" "$pr_ready_ms" "$stopped_at" >>"$faults"
    nap "$gap_s"
}

f2_partition() {
    local kind cut_at restored_at ready_ms caught_ms target what
    local nsx=(ip netns exec "$f2_ns")
    # Is ncc-calls' connection to ncc-history from its own address? (tcp://src;dst)
    pa_calls_src_seen=$("${nsx[@]}" ss -Htn state established "src $f2_nsip" "dst $f2_calls_src" | wc -l)
    pa_rows=()
    local searches=$out/load/partition-searches.log search_pid sn se sp50 sp99 smax codes
    f2_search_loop "$searches" &
    search_pid=$!
    loaders+=("$search_pid")
    for kind in calls all; do
        if [ "$kind" = calls ]; then
            local i c
            c=$(service_index calls)
            "${nsx[@]}" iptables -A INPUT -s "$f2_calls_src" -j DROP
            "${nsx[@]}" iptables -A OUTPUT -d "$f2_calls_src" -j DROP
            "${nsx[@]}" iptables -A OUTPUT -d "$f2_host" -p tcp -m multiport \
                --dports "$(bench_rpc_port "$c"),$(bench_pub_port "$c")" -j DROP
            "${nsx[@]}" iptables -A INPUT -s "$f2_host" -p tcp -m multiport \
                --sports "$(bench_rpc_port "$c"),$(bench_pub_port "$c")" -j DROP
            what="network cut ncc-history ↔ ncc-calls $cut_s s"
        else
            "${nsx[@]}" iptables -A INPUT -i "${f2_veth%h}n" -j DROP
            "${nsx[@]}" iptables -A OUTPUT -o "${f2_veth%h}n" -j DROP
            what="network cut ncc-history ↔ everything (PostgreSQL too) $cut_s s"
        fi
        say "partition: $what"
        cut_at=$(now_us)
        local hist_ready_during=0 probes=0
        while [ "$(now_us)" -lt $((cut_at + cut_s * 1000000)) ]; do
            probes=$((probes + 1))
            http_ok 127.0.0.1 "$(health_port history)" /readyz && hist_ready_during=$((hist_ready_during + 1))
            nap 0.5
        done
        "${nsx[@]}" iptables -F
        restored_at=$(now_us)
        ready_ms=$(wait_all_ready "$restored_at") || true
        target=$(f2_last)
        caught_ms=$(f2_wait_cursor "$target" 120 "" "$restored_at") || true
        say "partition: restored; every daemon ready after $ready_ms ms, ncc-history caught up with ncc-calls after $caught_ms ms"
        printf '%s\thistory\t%s\t%s\n' "$what" "$ready_ms" "$cut_at" >>"$faults"
        read -r sn se sp50 sp99 smax < <(f2_search_stats "$searches" "$cut_at" "$restored_at")
        codes=$(awk -v a="$cut_at" -v b="$restored_at" '$5 >= a && $5 <= b && $2 !~ /^2/ { c[$2]++ }
            END { for (k in c) printf "%s%s×%d", (s++ ? ", " : ""), k, c[k] }' "$searches")
        pa_rows+=("| $what | $hist_ready_during of $probes | $sn: $se failed (${codes:-none}), p50 $sp50 ms, max $smax ms | $ready_ms | $caught_ms |")
        nap "$gap_s"
    done
    kill "$search_pid" 2>/dev/null || true
    wait "$search_pid" 2>/dev/null || true
    unset 'loaders[-1]'
    pa_pops_without=$(grep -c 'calls.history_unavailable' "$out/logs/chaos-calls.log" || true)
}

faults2_run() {
    [ "$outbox_on" = 1 ] && { f2_outbox; f2_prune; }
    [ "$partition_on" = 1 ] && f2_partition
    return 0
}

# Rows of chaos.sh's check table.
faults2_checks() {
    if [ "$outbox_on" = 1 ]; then
        local ob_calls ob_distinct ob_records ob_rec_distinct
        ob_calls=$(q "SELECT count(*) FROM calls.calls WHERE call_id LIKE 'sim-${run}o-%'")
        ob_distinct=$(q "SELECT count(DISTINCT call_id) FROM calls.calls WHERE call_id LIKE 'sim-${run}o-%'")
        ob_records=$(q "SELECT count(*) FROM history.records WHERE call_id LIKE 'sim-${run}o-%'")
        ob_rec_distinct=$(q "SELECT count(DISTINCT call_id) FROM history.records WHERE call_id LIKE 'sim-${run}o-%'")
        check "outbox burst: calls sent / stored once" "$ob_distinct of $ob_calls" "$outbox_calls of $outbox_calls"
        check "outbox burst: answered calls ($ob_answered) / their records, none doubled" "$ob_rec_distinct of $ob_records" "$ob_answered of $ob_answered"
        check "outbox: ncc-history caught up with $ob_backlog events within ${catchup_limit_s} s" "$([ "$ob_caught_ms" -ge 0 ] && echo yes || echo no)" yes
        check "outbox: record searches failed during the catch-up" "$ob_s_err" 0
        if [ "$prune_calls" -gt 0 ]; then
            check "retention: events aged / pruned by ncc-calls" "$pr_aged / $((pr_aged - pr_left))" "$pr_aged / $pr_aged"
            check "retention: ncc-history logged bus.events_lost" "$([ "$pr_lost_logs" -gt 0 ] && echo yes || echo no)" yes
            check "retention: records of the calls whose events were pruned (lost, as documented)" "$pr_records" 0
            check "retention: ncc-history caught up past the pruned events" "$([ "$pr_caught_ms" -ge 0 ] && echo yes || echo no)" yes
        fi
    fi
    if [ "$partition_on" = 1 ]; then
        check "partition: ncc-calls reached ncc-history from its own address" "$([ "$pa_calls_src_seen" -gt 0 ] && echo yes || echo no)" yes
    fi
    return 0
}

# Paragraphs after the check table.
faults2_report() {
    if [ "$outbox_on" = 1 ]; then
        echo
        echo "Outbox: ncc-history stopped while $outbox_calls calls (${ob_rate} calls/s, $outbox_segments segments each) and the steady load ran for ${ob_burst_s} s: ncc-calls' outbox held $ob_outbox_rows rows ($ob_outbox_size), ncc-history $ob_backlog events behind ($ob_burst_events from the burst). Started again: ready after $ob_ready_ms ms, caught up after $ob_caught_ms ms; $ob_replayed events received by replay (at most 500 a request: at least $(((ob_replayed + 499) / 500)) requests), $ob_applied applied; memory VmRSS at most $ob_rss_max kB while catching up (VmHWM $ob_hwm kB, $ob_rss_after kB after). Record searches during the catch-up: $ob_s_n sent, $ob_s_err failed (${ob_s_codes:-none}), p50 $ob_s_p50 ms, p99 $ob_s_p99 ms, max $ob_s_max ms; the first search answered 2xx came ${ob_first_ok_ms:-?} ms after the start."
        if [ "$prune_calls" -gt 0 ]; then
            echo
            echo "Retention: $prune_calls calls ($pr_answered answered) made while ncc-history was stopped; their $pr_aged events aged 400 h and $((pr_aged - pr_left)) pruned by ncc-calls at its restart; ncc-history logged bus.events_lost $pr_lost_logs times, made $pr_records records for those calls, and caught up with the later events after $pr_caught_ms ms."
        fi
    fi
    if [ "$partition_on" = 1 ]; then
        echo
        echo "| network cut ($cut_s s, packets dropped) | ncc-history /readyz 200 during the cut (probes) | record searches sent during the cut | every daemon ready after the restore (ms) | ncc-history caught up with ncc-calls after the restore (ms) |"
        echo "| --- | ---: | --- | ---: | ---: |"
        printf '%s\n' "${pa_rows[@]}"
        echo
        echo "Screen pops without caller history (ncc-calls' calls.history_unavailable warnings) over the run: $pa_pops_without."
    elif [ -n "$partition_note" ]; then
        echo
        echo "$partition_note."
    fi
    return 0
}
