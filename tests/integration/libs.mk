# Extra libraries of the integration tests (tests/module.mk links $(<test>_LIBS)).
# test_sms talks to its own SMSC (tests/support/sms_smsc.c, libsmpp34).
test_sms_LIBS := -lsmpp34
