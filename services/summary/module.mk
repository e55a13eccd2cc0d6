# ncc-summary: personal-data masking, call summaries, sentiment.
$(eval $(call ncc_service,summary))
