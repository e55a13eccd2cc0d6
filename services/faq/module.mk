# ncc-faq: operator and public FAQ, Japanese search (MeCab + utf8proc), versions and approval.
faq_LIBS := -lmecab -lutf8proc
$(eval $(call ncc_service,faq))

# bench/faq/faq_eval: the search measured in-process on an evaluation set (docs/faq.md).
$(BUILD)/bench/faq_eval: $(BUILD)/obj/bench/faq/faq_eval.o $(BUILD)/obj/services/faq/faq_search.o \
                      $(BUILD)/obj/services/faq/faq_analysis.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lmecab -lutf8proc -lczmq -lcjson -lm
