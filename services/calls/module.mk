# ncc-calls: call events from the cloud PBX, the call state machine, screen pop, transcripts
# (stored encrypted, exported as MeCab tokens for text mining), recordings.
calls_LIBS := -lmecab -lcurl
$(eval $(call ncc_service,calls))
