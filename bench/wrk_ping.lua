-- wrk script for the gateway benchmark (bench/gateway.sh, docs/performance.md):
-- POST /api/v1/services/<service>/ping with a small JSON body on every
-- keep-alive connection, and one machine-readable result line from done().
--
--   wrk -t2 -c64 -d10s -s bench/wrk_ping.lua https://127.0.0.1:28443
--
-- Environment (all optional):
--   NCC_BENCH_SERVICE  the service pinged (default directory)
--   NCC_BENCH_COOKIE   a Cookie header (a signed-in session), when the route needs one
--   NCC_BENCH_CSRF     the X-CSRF-Token that goes with that session
--   NCC_BENCH_LABEL    a label echoed in the result line

local service = os.getenv("NCC_BENCH_SERVICE") or "directory"
local cookie = os.getenv("NCC_BENCH_COOKIE")
local csrf = os.getenv("NCC_BENCH_CSRF")
local label = os.getenv("NCC_BENCH_LABEL") or "-"

wrk.method = "POST"
wrk.path = "/api/v1/services/" .. service .. "/ping"
wrk.body = '{"message":"ping from wrk"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
if cookie and cookie ~= "" then
   wrk.headers["Cookie"] = cookie
end
if csrf and csrf ~= "" then
   wrk.headers["X-CSRF-Token"] = csrf
end

-- No response() function: defining one makes wrk parse every answer in Lua,
-- which costs CPU on the same two cores. wrk still counts non-2xx/3xx answers
-- as status errors, and bench/gateway.sh refuses a run that has any.

-- One line that bench/gateway.sh parses: rates and latency percentiles in
-- microseconds (wrk's latency histogram).
function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   io.write(string.format(
      "NCC_RESULT label=%s requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d mean_us=%.1f errors_connect=%d errors_read=%d errors_write=%d " ..
      "errors_status=%d errors_timeout=%d bytes=%d\n",
      label, summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout,
      summary.bytes))
end
