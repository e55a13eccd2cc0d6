# shellcheck shell=bash
# tests/chaos/lib.sh: the load and the reconciliation shared by tests/chaos/chaos.sh and
# tests/chaos/copies.sh (sourced after bench/lib.sh, not run).
#
# The callers set: $out (results folder; the loops log into $out/load), $run (the run's
# marker), $cookies and $csrf (a signed-in administrator), $tid (an SMS template with {n}),
# record_rate, faq_rate, sms_rate (requests a second), and the array `apis`: the gateways'
# /api/v1 URLs. Request n goes to apis[n % count]; each repeat of a failed request goes to the
# next gateway of the list (a client behind a load balancer), so one gateway may be down.
# shellcheck disable=SC2154,SC2034 # out, run, cookies, csrf, tid and the rates come from the caller; the figures go to it

# Each loop logs one line per request: number, HTTP status (000: no answer), id or key, the
# time of the answer (records, FAQ: microseconds) or the number of tries (SMS), and the index
# in `apis` of the gateway that gave the last answer. Records and SMS also log each failed try
# that was repeated (records-fail.log, sms-fail.log: number, try, status, time, gateway).
record_loop() {
    local n=0 status body id tries g
    while :; do
        body=$out/load/record.body
        tries=0
        # With an idempotency key, so a failed request is sent again until it is answered
        # (the same key answers the record it made, if the failed one was stored anyway).
        while :; do
            g=$(((n + tries) % ${#apis[@]}))
            tries=$((tries + 1))
            status=$(curl -s -m 15 -b "$cookies" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
                -o "$body" -w '%{http_code}' -X POST "${apis[$g]}/records" \
                -d "{\"channel\":\"visit\",\"inquiry\":\"chaos-$run-rec-$n 住民票について\",\"idempotency_key\":\"chaos-$run-rec-$n\"}") || true
            case $status in 2?? | 4??) break ;; esac
            [ $tries -lt 100 ] || break
            printf '%s %s %s %s %s\n' "$n" "$tries" "${status:-000}" "${EPOCHREALTIME/./}" "$g" >>"$out/load/records-fail.log"
            nap 0.3
        done
        id=$(jq -r '.id // empty' "$body" 2>/dev/null || true)
        printf '%s %s %s %s %s\n' "$n" "${status:-000}" "${id:--}" "${EPOCHREALTIME/./}" "$g" >>"$out/load/records.log"
        n=$((n + 1))
        nap "$(awk -v r="$record_rate" 'BEGIN { printf "%.3f", 1 / r }')"
    done
}
faq_loop() {
    local n=0 status g words=(住民票 粗大ごみ 印鑑 マイナンバー)
    while :; do
        g=$((n % ${#apis[@]}))
        status=$(curl -s -m 15 -b "$cookies" -o /dev/null -w '%{http_code}' -G \
            --data-urlencode "q=${words[$((n % 4))]}" --data-urlencode log=false "${apis[$g]}/faqs") || true
        printf '%s %s - %s %s\n' "$n" "${status:-000}" "${EPOCHREALTIME/./}" "$g" >>"$out/load/faqs.log"
        n=$((n + 1))
        nap "$(awk -v r="$faq_rate" 'BEGIN { printf "%.3f", 1 / r }')"
    done
}
sms_loop() {
    local n=0 status key body tries g
    while :; do
        key=chaos-$run-sms-$n
        body=$out/load/sms.body
        tries=0
        while :; do
            g=$(((n + tries) % ${#apis[@]}))
            tries=$((tries + 1))
            status=$(curl -s -m 15 -b "$cookies" -H "X-CSRF-Token: $csrf" -H 'Content-Type: application/json' \
                -o "$body" -w '%{http_code}' -X POST "${apis[$g]}/sms" \
                -d "{\"to\":\"090$(printf '%08d' "$n")\",\"template_id\":$tid,\"variables\":[{\"name\":\"n\",\"value\":\"$n\"}],\"idempotency_key\":\"$key\"}") || true
            case $status in 2?? | 4??) break ;; esac
            [ $tries -lt 100 ] || break
            printf '%s %s %s %s %s\n' "$n" "$tries" "${status:-000}" "${EPOCHREALTIME/./}" "$g" >>"$out/load/sms-fail.log"
            nap 0.3
        done
        printf '%s %s %s %s %s\n' "$n" "${status:-000}" "$key" "$tries" "$g" >>"$out/load/sms.log"
        n=$((n + 1))
        nap "$(awk -v r="$sms_rate" 'BEGIN { printf "%.3f", 1 / r }')"
    done
}

# check NAME GOT WANT: one line of the report's table; a failure is added to `failed`.
failed=()
check() {
    if [ "$2" = "$3" ]; then
        printf '| %s | %s | ok |\n' "$1" "$2"
    else
        printf '| %s | %s (want %s) | **FAILED** |\n' "$1" "$2" "$3"
        failed+=("$1")
    fi
}

# reconcile_requests: the records, SMS and FAQ searches asked (the loops' logs) against the
# database (q SQL: one query as the owner). Sets rec_asked, rec_ok, rec_err, rec_ok_once,
# rec_dup, rec_err_stored, err_codes, sms_asked, sms_ok, sms_retried, sms_ok_once, sms_dup,
# faq_asked, faq_ok, faq_codes; writes $out/load/records-{2xx,err,stored}.tsv and sms-stored.tsv.
reconcile_requests() {
    # The records asked through the API: accepted (2xx) ones must be stored once under their id.
    awk '$2 ~ /^2/ { print $1 "\t" $3 }' "$out/load/records.log" >"$out/load/records-2xx.tsv"
    awk '$2 !~ /^2/ { print $1 "\t" $2 }' "$out/load/records.log" >"$out/load/records-err.tsv"
    q "SELECT split_part(inquiry, ' ', 1), id FROM history.records WHERE inquiry LIKE 'chaos-$run-rec-%'" |
        awk -F'|' '{ sub("chaos-'"$run"'-rec-", "", $1); print $1 "\t" $2 }' | sort -n >"$out/load/records-stored.tsv"
    rec_asked=$(wc -l <"$out/load/records.log")
    rec_ok=$(wc -l <"$out/load/records-2xx.tsv")
    rec_err=$(wc -l <"$out/load/records-err.tsv")
    rec_ok_once=$(awk -F'\t' 'NR == FNR { n[$1]++; id[$1] = $2; next } { if (n[$1] == 1 && id[$1] == $2) ok++ } END { print ok + 0 }' \
        "$out/load/records-stored.tsv" "$out/load/records-2xx.tsv")
    rec_dup=$(awk -F'\t' '{ n[$1]++ } END { d = 0; for (k in n) if (n[k] > 1) d++; print d }' "$out/load/records-stored.tsv")
    rec_err_stored=$(awk -F'\t' 'NR == FNR { n[$1]++; next } ($1 in n) { s++ } END { print s + 0 }' \
        "$out/load/records-stored.tsv" "$out/load/records-err.tsv")
    err_codes=$(awk '$2 !~ /^2/ { c[$2]++ } END { for (k in c) printf "%s%s×%d", (s++ ? ", " : ""), k, c[k] }' "$out/load/records.log")
    # SMS: every key answered 2xx stored once.
    sms_asked=$(wc -l <"$out/load/sms.log")
    sms_ok=$(awk '$2 ~ /^2/' "$out/load/sms.log" | wc -l)
    sms_retried=$(awk '$4 > 1' "$out/load/sms.log" | wc -l)
    q "SELECT idempotency_key, count(*) FROM sms.messages WHERE idempotency_key LIKE 'chaos-$run-sms-%' GROUP BY 1" |
        tr '|' '\t' >"$out/load/sms-stored.tsv"
    sms_ok_once=$(awk 'NR == FNR { split($0, f, "\t"); n[f[1]] = f[2]; next } $2 ~ /^2/ && n[$3] == 1 { ok++ } END { print ok + 0 }' \
        "$out/load/sms-stored.tsv" "$out/load/sms.log")
    sms_dup=$(awk -F'\t' '$2 > 1' "$out/load/sms-stored.tsv" | wc -l)
    # FAQ searches: how many were answered 2xx.
    faq_asked=$(wc -l <"$out/load/faqs.log")
    faq_ok=$(awk '$2 ~ /^2/' "$out/load/faqs.log" | wc -l)
    faq_codes=$(awk '$2 !~ /^2/ { c[$2]++ } END { for (k in c) printf "%s%s×%d", (s++ ? ", " : ""), k, c[k] }' "$out/load/faqs.log")
}

# reconcile_calls CALLS ANSWERED: the calls of ncc-pbxsim (call ids sim-$run-...) in ncc-calls
# and ncc-history. Sets calls_stored, calls_distinct, calls_ended, calls_abandoned,
# events_stored, events_expected, records_calls, records_calls_distinct.
reconcile_calls() {
    local sent=$1 answered=$2
    calls_stored=$(q "SELECT count(*) FROM calls.calls WHERE call_id LIKE 'sim-$run-%'")
    calls_distinct=$(q "SELECT count(DISTINCT call_id) FROM calls.calls WHERE call_id LIKE 'sim-$run-%'")
    calls_ended=$(q "SELECT count(*) FROM calls.calls WHERE call_id LIKE 'sim-$run-%' AND state = 'ended'")
    calls_abandoned=$(q "SELECT count(*) FROM calls.calls WHERE call_id LIKE 'sim-$run-%' AND state = 'abandoned'")
    events_stored=$(q "SELECT count(*) FROM calls.call_events WHERE call_id LIKE 'sim-$run-%'")
    events_expected=$((sent * 2 + answered))
    records_calls=$(q "SELECT count(*) FROM history.records WHERE call_id LIKE 'sim-$run-%'")
    records_calls_distinct=$(q "SELECT count(DISTINCT call_id) FROM history.records WHERE call_id LIKE 'sim-$run-%'")
}

# The lines of the check table shared by both reports (after reconcile_requests and
# reconcile_calls): CALLS ANSWERED PBX_ERRORS.
check_load() {
    local sent=$1 answered=$2 pbx_errors=$3
    check "calls sent / stored in ncc-calls" "$calls_stored" "$sent"
    check "calls stored twice" "$((calls_stored - calls_distinct))" 0
    check "answered calls ended" "$calls_ended" "$answered"
    check "unanswered calls abandoned" "$calls_abandoned" "$((sent - answered))"
    check "call events stored (2 per call + 1 per answered call)" "$events_stored" "$events_expected"
    check "webhook requests still failing after retries" "$pbx_errors" 0
    check "answered calls ($answered) / their interaction records" "$records_calls" "$answered"
    check "calls with more than one record" "$((records_calls - records_calls_distinct))" 0
    check "records answered 2xx ($rec_ok of $rec_asked) stored exactly once under their id" "$rec_ok_once" "$rec_ok"
    check "records stored more than once" "$rec_dup" 0
    check "SMS answered 2xx ($sms_ok of $sms_asked; $sms_retried needed a repeat) stored once per key" "$sms_ok_once" "$sms_ok"
    check "SMS keys stored more than once" "$sms_dup" 0
    check "SMS never answered 2xx (after 100 tries)" "$((sms_asked - sms_ok))" 0
}
