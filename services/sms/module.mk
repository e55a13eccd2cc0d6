# ncc-sms: SMS to residents, templates, providers (SMPP 3.4 with libsmpp34, the Twilio-form
# HTTP API with libcurl), delivery receipts, surveys (docs/sms.md).
sms_LIBS := -lsmpp34 -lcurl
$(eval $(call ncc_service,sms))
