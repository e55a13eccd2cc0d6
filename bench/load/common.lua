-- bench/load/common.lua: what every wrk script of bench/bench_load.sh shares
-- (docs/performance.md "Load (wrk)"). Each script sets `mix`, a list of request
-- kinds that every wrk thread walks through in turn, then loads this file:
--
--   mix = {"faq"}
--   dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
--
-- Request kinds (all signed in as one operator, as the desk asks them):
--   faq     GET /api/v1/faqs?q=<a resident's question>&per_page=20 (the FAQ view)
--   search  GET /api/v1/records?q=<word>  (history search: relevance, the first 50)
--   read    GET /api/v1/records/{id}      (a record of the generated range)
--   create  POST /api/v1/records          (a phone record with a call_id and a unique
--                                          idempotency_key)
--   lookup  GET /api/v1/records?call_id=<id>&per_page=1 (the desk's look-up of the
--                                          answered call's record, after the pop)
--
-- Environment (bench/bench_load.sh sets it):
--   LOAD_COOKIE    the Cookie header of the operator's session
--   LOAD_CSRF      its X-CSRF-Token
--   LOAD_DATA      a folder with faq_queries.txt and history_words.txt (URL-encoded,
--                  one a line)
--   LOAD_ID_MIN, LOAD_ID_MAX  the record ids that reads pick from (uniformly)
--   LOAD_RUN       a word unique to this wrk run (idempotency keys and call ids)
--   LOAD_LABEL     echoed in the result line
--
-- done() prints one line that bench/bench_load.sh parses:
--   LOAD_RESULT label=... requests=... rps=... p50_us=... p99_us=... non2xx=...
-- and one LOAD_KIND line per kind (requests answered, not 2xx, the first refusal).

local cookie = os.getenv("LOAD_COOKIE") or ""
local csrf = os.getenv("LOAD_CSRF") or ""
local data = os.getenv("LOAD_DATA") or "."
local id_min = tonumber(os.getenv("LOAD_ID_MIN") or "1")
local id_max = tonumber(os.getenv("LOAD_ID_MAX") or "1")
local run = os.getenv("LOAD_RUN") or tostring(os.time())
local label = os.getenv("LOAD_LABEL") or "-"

local function lines(name)
   local list = {}
   local f = io.open(data .. "/" .. name, "r")
   if f then
      for line in f:lines() do
         if line ~= "" then list[#list + 1] = line end
      end
      f:close()
   end
   if #list == 0 then list[1] = "%E7%AA%93%E5%8F%A3" end -- 窓口
   return list
end

local faq_queries = lines("faq_queries.txt")
local history_words = lines("history_words.txt")

-- Record texts: a few inquiries and responses as an operator types them.
local inquiries = {
   "住民票の写しを郵送で取り寄せたい。必要な書類と手数料を知りたい。",
   "転入の手続きに必要な持ち物について問い合わせ。",
   "粗大ごみの収集日と申し込み方法を知りたい。",
   "児童手当の申請期限について。",
   "国民健康保険の保険料の支払い方法を変えたい。",
   "マイナンバーカードの受け取り場所と時間。",
}
local responses = {
   "手続きの窓口と必要書類を案内した。",
   "担当課の電話番号を案内し、転送した。",
   "FAQの内容を読み上げて案内した。解決。",
}

local common_headers = {
   ["Cookie"] = cookie,
   ["Accept"] = "application/json",
}
local post_headers = {
   ["Cookie"] = cookie,
   ["Accept"] = "application/json",
   ["Content-Type"] = "application/json",
   ["X-CSRF-Token"] = csrf,
}

-- Per thread: its number, the place in the mix, counters.
local thread_id = 0
local step = 0
local created = 0
local last_call = nil
local pending = {}      -- kinds of the requests sent and not yet answered, in order
local head, tail = 1, 0
counts = {}             -- kind -> answers (read by done() through thread:get)
failed = {}             -- kind -> answers that were not 2xx
first_error = {}        -- kind -> "status body..." of the first of them

local threads = {}
function setup(thread)
   thread:set("load_thread", #threads + 1)
   threads[#threads + 1] = thread
end

function init(args)
   thread_id = tonumber(rawget(_G, "load_thread")) or 0
   math.randomseed(os.time() * 1000 + thread_id)
   step = thread_id -- threads start at different places of the mix
end

local function pick(list)
   return list[math.random(#list)]
end

local builders = {
   faq = function()
      return wrk.format("GET", "/api/v1/faqs?q=" .. pick(faq_queries) .. "&per_page=20", common_headers)
   end,
   search = function()
      return wrk.format("GET", "/api/v1/records?q=" .. pick(history_words), common_headers)
   end,
   read = function()
      return wrk.format("GET", "/api/v1/records/" .. math.random(id_min, id_max), common_headers)
   end,
   create = function()
      created = created + 1
      local key = string.format("load-%s-%d-%d", run, thread_id, created)
      last_call = key
      local body = string.format(
         '{"channel":"phone","call_id":"%s","idempotency_key":"%s","status":"closed",' ..
         '"inquiry":"%s","response":"%s"}', key, key, pick(inquiries), pick(responses))
      return wrk.format("POST", "/api/v1/records", post_headers, body)
   end,
   lookup = function()
      -- The call whose record this thread made last (found), else one never made.
      local call = last_call or string.format("load-%s-%d-none", run, thread_id)
      return wrk.format("GET", "/api/v1/records?call_id=" .. call .. "&per_page=1", common_headers)
   end,
}

function request()
   step = step + 1
   local kind = mix[(step - 1) % #mix + 1]
   tail = tail + 1
   pending[tail] = kind
   return builders[kind]()
end

-- wrk answers each connection's requests in order but interleaves connections, so the
-- kind of an answer is only known exactly with one connection per thread; with more, the
-- per-kind counts are the mix's and the refusals are attributed approximately (the
-- first refusal's body says what it was).
function response(status, headers, body)
   local kind = "?"
   if head <= tail then
      kind = pending[head]
      pending[head] = nil
      head = head + 1
   end
   counts[kind] = (counts[kind] or 0) + 1
   if status < 200 or status > 299 then
      failed[kind] = (failed[kind] or 0) + 1
      if not first_error[kind] then
         first_error[kind] = tostring(status) .. " " .. string.sub(body or "", 1, 200)
      end
   end
end

function done(summary, latency, requests)
   local seconds = summary.duration / 1e6
   local e = summary.errors
   local total_counts, total_failed, errors = {}, {}, {}
   local non2xx = 0
   for _, t in ipairs(threads) do
      for k, v in pairs(t:get("counts") or {}) do total_counts[k] = (total_counts[k] or 0) + v end
      for k, v in pairs(t:get("failed") or {}) do
         total_failed[k] = (total_failed[k] or 0) + v
         non2xx = non2xx + v
      end
      for k, v in pairs(t:get("first_error") or {}) do
         if not errors[k] then errors[k] = v end
      end
   end
   io.write(string.format(
      "LOAD_RESULT label=%s requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d " ..
      "max_us=%d mean_us=%.1f non2xx=%d errors_connect=%d errors_read=%d errors_write=%d " ..
      "errors_status=%d errors_timeout=%d\n",
      label, summary.requests, seconds, summary.requests / seconds,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, non2xx, e.connect, e.read, e.write, e.status, e.timeout))
   for k, v in pairs(total_counts) do
      io.write(string.format("LOAD_KIND label=%s kind=%s answers=%d non2xx=%d first_error=%s\n",
         label, k, v, total_failed[k] or 0,
         (errors[k] or "-"):gsub("[\r\n\t]", " ")))
   end
end
