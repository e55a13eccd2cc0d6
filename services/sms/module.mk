# ncc-sms: SMS to residents, templates, providers, delivery receipts, surveys.
$(eval $(call ncc_service,sms))
