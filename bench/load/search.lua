-- bench/load/search.lua (bench/bench_load.sh): history search: GET /api/v1/records?q=<a word> over the generated records.
mix = {"search"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
