-- bench/load/faq.lua (bench/bench_load.sh): FAQ search: GET /api/v1/faqs?q=<one of the 525 localgovFAQ dev questions>&per_page=20.
mix = {"faq"}
dofile((os.getenv("LOAD_LUA") or "bench/load") .. "/common.lua")
