# ncc-calls: call events from the cloud PBX, the call state machine, screen pop, transcripts, recordings.
$(eval $(call ncc_service,calls))
