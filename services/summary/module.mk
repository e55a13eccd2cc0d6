# ncc-summary: personal-data masking, call summaries, emotion, FAQ suggestions.
summary_LIBS := -lmecab -lutf8proc -lcurl
$(eval $(call ncc_service,summary))

# emotion.c builds the lexicon in with .incbin: rebuild it when the file changes.
$(BUILD)/obj/services/summary/emotion.o: services/summary/emotion_lexicon.tsv

# The unit tests link the service's own objects (not main.c and the service).
SUMMARY_CORE_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,services/summary/mask.c \
    services/summary/emotion.c services/summary/extractive.c services/summary/openai.c \
    services/summary/summarizer.c)
test_masking_LIBS := -lmecab -lutf8proc
$(BUILD)/tests/unit/test_masking: $(BUILD)/obj/services/summary/mask.o
test_summarizer_LIBS := -lmecab -lutf8proc -lcurl
$(BUILD)/tests/unit/test_summarizer: $(SUMMARY_CORE_OBJ)

# bench/bench_summary.c: masking + extractive summary of a 10-minute call
# (make bench-summary runs it and bench/bench_summary.sh, docs/performance.md).
$(BUILD)/bench/bench_summary: $(BUILD)/obj/bench/bench_summary.o $(SUMMARY_CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lmecab -lutf8proc -lcurl -lczmq -lcjson -lm

.PHONY: bench-summary
bench-summary: $(BUILD)/bench/bench_summary $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-calls \
               $(BUILD)/bin/ncc-summary $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_summary.sh
