-- bench/load/create.lua (bench/bench_load.sh): record creation: POST /api/v1/records, each with its own call_id and idempotency_key.
mix = {"create"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
