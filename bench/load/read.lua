-- bench/load/read.lua (bench/bench_load.sh): record reads: GET /api/v1/records/{id}, ids uniform over the generated records.
mix = {"read"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
