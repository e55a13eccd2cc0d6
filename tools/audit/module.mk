# ncc-audit: verifies the audit log's hash chain from outside the daemons
# (docs/directory.md). Shares the chain code with ncc-directory.
$(BUILD)/obj/tools/audit/main.o: CFLAGS += -Iservices/directory
$(eval $(call ncc_program,ncc-audit,tools/audit/main.c services/directory/audit_chain.c,))
