# Extra objects of the unit tests in tests/unit (linked as prerequisites of the program).
# test_sms_text: the pure text functions of ncc-sms (numbers, templates, counting, parts).
$(BUILD)/tests/unit/test_sms_text: $(BUILD)/obj/services/sms/text.o
# test_history_search: the text normalisation of ncc-history's search index (services/history/search.c).
$(BUILD)/tests/unit/test_history_search: $(BUILD)/obj/services/history/search.o
test_history_search_LIBS := $(BUILD)/libncc.a -lutf8proc $(NCC_LIBS)
# test_faq_learned: the FAQ search index with learned words (services/faq/faq_search.c, MeCab).
$(BUILD)/tests/unit/test_faq_learned: $(BUILD)/obj/services/faq/faq_search.o $(BUILD)/obj/services/faq/faq_analysis.o
test_faq_learned_LIBS := -lmecab -lutf8proc $(NCC_LIBS)
# test_faq_search: ncc-faq's search against a reference computed in the test (services/faq/faq_search.c).
$(BUILD)/tests/unit/test_faq_search: $(BUILD)/obj/services/faq/faq_search.o $(BUILD)/obj/services/faq/faq_analysis.o
test_faq_search_LIBS := -lmecab -lutf8proc
