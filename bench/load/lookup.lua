-- bench/load/lookup.lua (bench/bench_load.sh): the desk's look-up after the screen pop: GET /api/v1/records?call_id=&per_page=1.
mix = {"lookup"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
