-- bench/load/mixed.lua (bench/bench_load.sh): an operator's requests per call, in the
-- ratio the desk makes them (docs/performance.md "Load (wrk)"): the look-up of the
-- answered call's record after the pop, 2 FAQ searches, 1 history search, 3 record
-- reads (past records of the caller or of the search), 1 record created at wrap-up:
-- 8 requests per call. Every wrk thread walks through this list in turn.
mix = {"lookup", "faq", "search", "read", "faq", "read", "read", "create"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
