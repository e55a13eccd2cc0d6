#!/usr/bin/env bash
# bench/bench_summary.sh: ncc-summary's figures (issue 7, docs/performance.md
# "Summary"), on the optimised build:
#
#   (a) bench_summary (in process): masking and the extractive summary of a
#       10-minute call transcript (about 3,000 characters in about 120
#       segments), p50/p95 of 50 runs; goal under 50 ms together;
#   (b) end of call -> final summary stored: with ncc-directory, ncc-calls,
#       ncc-summary and the gateway running on a database of their own, each
#       of BENCH_SUMMARY_CALLS (20) calls is rung, answered, given the whole
#       10-minute transcript as the PBX sends it (signed, batches of 40), and
#       once ncc-summary has masked every segment, ended; the time from the
#       `ended` webhook's answer to the final summary being readable at
#       GET /api/v1/calls/{id}/summary (polled every 5 ms); goal under 1 s.
#
#   bench/bench_summary.sh [out folder]      (make bench-summary)
# Environment: BUILD (default build), BENCH_SUMMARY_CALLS, BENCH_PORT_OFFSET
# (20000). Needs curl, jq, python3 and psql.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
build=${BUILD:-build}
bench_name=bench_summary.sh
# shellcheck source=bench/lib.sh
. "$top/bench/lib.sh"

out=${1:-$top/bench/results/summary-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out/logs"
summary=$out/summary.tsv
calls=${BENCH_SUMMARY_CALLS:-20}
bindir=$(bench_bindir)
client=$(dirname "$bindir")/bench/bench_summary
for tool in curl jq python3 psql; do
    command -v "$tool" >/dev/null || die "$tool is not installed"
done
for d in directory calls summary gateway; do
    [ -x "$bindir/ncc-$d" ] || die "$bindir/ncc-$d is not built (make BUILD=$build)"
done
[ -x "$client" ] || die "$client is not built (make BUILD=$build bench-summary)"

# --- (a) ----------------------------------------------------------------------------------
say "masking and extractive summary of a 10-minute transcript (in process)"
"$client" 50 | tee "$out/inprocess.tsv"
line=$(grep '^masking + summary' "$out/inprocess.tsv")
p50=$(cut -f2 <<<"$line")
p95=$(cut -f3 <<<"$line")
status=ok
awk -v m="$p95" 'BEGIN { exit !(m < 50) }' || status=over
summary_line summary "masking + extractive summary, 10-minute call, p50" "$p50" ms "< 50" "$status"
summary_line summary "masking + extractive summary, 10-minute call, p95" "$p95" ms "< 50" "$status"

# --- (b) ----------------------------------------------------------------------------------
export NCC_SUMMARY_DEBOUNCE_MS=${NCC_SUMMARY_DEBOUNCE_MS:-2000}
bench_system_up summary directory calls summary
secret=${NCC_PBX_WEBHOOK_SECRET:?the bench secrets have no NCC_PBX_WEBHOOK_SECRET}
call POST /users -H 'Content-Type: application/json' \
    -d "{\"login\":\"benchop1\",\"name\":\"オペレーター1\",\"roles\":[\"operator\"],\"extension\":\"3001\",\"password\":\"Bench-Operator-$$-Pass\"}" |
    jq -e '.id' >/dev/null || die "cannot create the operator"
"$client" --transcript x >"$out/transcript.json"
session=$(awk '$6 == "ncc_session" { print $7 }' "$cookies")
python3 - "$api" "$secret" "$session" "$calls" "$out/transcript.json" "$NCC_DATABASE_OWNER_URL" \
    >"$out/end-to-stored.txt" <<'PY'
import hashlib, hmac, json, subprocess, sys, time, urllib.request
api, secret, session, calls, transcript, db = sys.argv[1:7]
segments = json.load(open(transcript))["segments"]

def post(path, body):
    data = json.dumps(body, ensure_ascii=False).encode()
    t = str(int(time.time()))
    sig = hmac.new(secret.encode(), t.encode() + b"." + data, hashlib.sha256).hexdigest()
    req = urllib.request.Request(api + path, data=data, method="POST", headers={
        "Content-Type": "application/json", "X-NCC-Signature": "t=%s,v1=%s" % (t, sig)})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)

def summary(call_id):
    req = urllib.request.Request(api + "/calls/%s/summary" % call_id,
                                 headers={"Cookie": "ncc_session=" + session})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError:
        return None

def masked(call_id):
    out = subprocess.run(["psql", db, "-qAtc", "SELECT segments FROM summary.calls WHERE call_id = '%s'" % call_id],
                         capture_output=True, text=True).stdout.strip()
    return int(out or 0)

run = str(int(time.time()))
times = []
for c in range(int(calls)):
    cid = "bench-%s-%d" % (run, c)
    ev = lambda n, ty, at, **kw: post("/pbx/events", dict(event_id="%s-%s" % (cid, n), type=ty, call_id=cid,
                                                           occurred_at=at, **kw))
    ev("r", "ringing", "2027-04-05T10:00:00+09:00", **{"from": "090-0000-0000"})
    ev("a", "answered", "2027-04-05T10:00:05+09:00", agent_extension="3001")
    for i in range(0, len(segments), 40):
        post("/calls/%s/transcript" % cid, {"segments": segments[i:i + 40]})
    deadline = time.time() + 30
    while masked(cid) < len(segments) and time.time() < deadline:
        time.sleep(0.02)
    start = time.time()
    ev("e", "ended", "2027-04-05T10:10:05+09:00")
    while True:
        s = summary(cid)
        if s and s.get("final"):
            break
        if time.time() - start > 30:
            sys.exit("no final summary for %s after 30 s" % cid)
        time.sleep(0.005)
    times.append((time.time() - start) * 1000)
times.sort()
print("%.1f %.1f %.1f" % (times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.95))], times[-1]))
print("final summary: " + s["summary"].replace("\n", " / "))
PY
read -r e50 e95 emax <"$out/end-to-stored.txt"
say "end of call -> final summary readable: p50 $e50 ms, p95 $e95 ms, max $emax ms ($calls calls)"
say "$(tail -1 "$out/end-to-stored.txt")"
status=ok
awk -v m="$e95" 'BEGIN { exit !(m < 1000) }' || status=over
summary_line summary "end of call -> final summary stored, p50 ($calls calls)" "$e50" ms "< 1000" "$status"
summary_line summary "end of call -> final summary stored, p95" "$e95" ms "< 1000" "$status"
say "figures in $summary"
