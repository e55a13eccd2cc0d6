# libncc.a: the bus, JSON conversion, config, logging, database, health, service frame.
$(eval $(call ncc_embed_sql,common,common))
COMMON_SRC := $(sort $(wildcard common/src/*.c)) $(PROTO_C) $(GEN)/ncc_registry.c $(GEN)/sql_common.c
COMMON_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(COMMON_SRC))

$(BUILD)/libncc.a: $(COMMON_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
all: $(BUILD)/libncc.a
