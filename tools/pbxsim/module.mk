# ncc-pbxsim: a PBX as docs/pbx-integration.md describes it (signed call events and transcripts,
# and the operators' push streams), for tests, bench/bench_calls.sh and PBX vendors.
$(eval $(call ncc_program,ncc-pbxsim,tools/pbxsim/main.c,-lcurl))
