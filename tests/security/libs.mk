# tests/security: every test program also links the shared helpers of
# tests/security/security.c, as a small archive. tests/module.mk links $(<test>_LIBS)
# last, so the archive is named there again, followed by what the helpers need.
SECURITY_LIB := $(BUILD)/libnccsecurity.a
$(SECURITY_LIB): $(BUILD)/obj/tests/security/security.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(foreach t,$(security_TESTS),$(eval $(notdir $(t))_LIBS += $(SECURITY_LIB) $(BUILD)/libncctest.a $(BUILD)/libncc.a $(NCC_LIBS)))
$(security_TESTS): $(SECURITY_LIB)
