# Tests: every tests/<area>/test_*.c is one Criterion program.
TEST_LIBS := -lcriterion -lcurl
TEST_AREAS := unit integration security static

# tests/support/*.c: helpers every test may use (starting daemons, HTTP).
TEST_SUPPORT_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(sort $(wildcard tests/support/*.c)))
$(BUILD)/libncctest.a: $(TEST_SUPPORT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

define ncc_test_area
$(1)_TESTS := $$(patsubst tests/$(1)/%.c,$(BUILD)/tests/$(1)/%,$$(sort $$(wildcard tests/$(1)/test_*.c)))
$(BUILD)/tests/$(1)/%: $(BUILD)/obj/tests/$(1)/%.o $(BUILD)/libncctest.a $(BUILD)/libncc.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(TEST_LIBS) $$(NCC_LIBS) $$($$*_LIBS)
tests: $$($(1)_TESTS)
ALL_TESTS += $$($(1)_TESTS)
endef
$(foreach a,$(TEST_AREAS),$(eval $(call ncc_test_area,$(a))))
.PHONY: tests
-include $(wildcard tests/*/libs.mk)
