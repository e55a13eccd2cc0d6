# libFuzzer targets (clang). `make fuzz` builds and runs each for FUZZ_SECONDS.
# Not part of `make test`: see fuzz/README.md and docs/security.md for figures.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -g -O1 -std=c17 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -Icommon/include -I$(GEN)
FUZZ_JSON_SRC := fuzz/fuzz_json.c common/src/json.c common/src/registry.c \
                 $(PROTO_C) $(GEN)/ncc_registry.c
$(BUILD)/fuzz/fuzz_json: $(FUZZ_JSON_SRC) | $(GENERATED_HEADERS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_JSON_SRC) -lprotobuf-c -lcjson -lm
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_json

# The CSV reader, encoding detection and writer (iconv is in glibc).
FUZZ_CSV_SRC := fuzz/fuzz_csv.c common/src/csv.c
$(BUILD)/fuzz/fuzz_csv: $(FUZZ_CSV_SRC) common/include/ncc/csv.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_CSV_SRC)
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_csv

# The X-NCC-Signature parser and checker.
FUZZ_WEBHOOK_SRC := fuzz/fuzz_webhook.c common/src/webhook.c
$(BUILD)/fuzz/fuzz_webhook: $(FUZZ_WEBHOOK_SRC) common/include/ncc/webhook.h
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_WEBHOOK_SRC) -lcrypto
FUZZ_TARGETS += $(BUILD)/fuzz/fuzz_webhook

fuzz-deps:
	NCC_DEPS_EXTRA="clang libclang-rt-14-dev" scripts/deps.sh
$(FUZZ_TARGETS): | fuzz-deps
.PHONY: fuzz-deps

fuzz: $(FUZZ_TARGETS)
	@for t in $(FUZZ_TARGETS); do \
	    name=$$(basename $$t); corpus=$(BUILD)/fuzz/corpus-$$name; mkdir -p $$corpus; \
	    seeds=fuzz/corpus/$${name#fuzz_}; dict=fuzz/$$name.dict; \
	    echo "== $$name for $(FUZZ_SECONDS) s"; \
	    $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -artifact_prefix=$(BUILD)/fuzz/ \
	        $$( [ -f $$dict ] && echo -dict=$$dict ) $$corpus $$( [ -d $$seeds ] && echo $$seeds ) \
	        2>&1 | grep -E 'stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY|crash-' ; \
	done
