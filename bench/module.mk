# Benchmarks (docs/performance.md).
#   make bench                     build the daemons, the gateway and the bench
#                                  programs in release mode and run bench/run.sh
#   make bench BUILD=build/bench   the same in another build folder
# bench/run.sh writes bench/results/<date>/ (git-ignored) and prints a summary.
# Settings for a shorter or partial run: BENCH_ONLY=bus,gateway,daemons,
# BENCH_REPS, BENCH_DURATION (seconds per wrk run); see bench/run.sh.

BENCH_PROGRAMS := $(BUILD)/bench/bench_bus $(BUILD)/bench/bare_civetweb

$(BUILD)/bench/bench_bus: $(BUILD)/obj/bench/bench_bus.o $(BUILD)/libncc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NCC_LIBS)

# Debian's civetweb 1.15 needs the gateway's OpenSSL 3 shim for TLS (see
# gateway/tls_compat.c): the bare server links the same file with the same
# flags, so both take the same TLS path.
$(BUILD)/bench/bare_civetweb: $(BUILD)/obj/bench/bare_civetweb.o $(BUILD)/obj/gateway/tls_compat.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(GATEWAY_LDFLAGS) -lcivetweb -lssl -lcrypto -ldl -lpthread

# bench/bench_history.sh's client (make bench-history, in the top Makefile).
$(BUILD)/bench/bench_history: $(BUILD)/obj/bench/bench_history.o $(BUILD)/libncc.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(NCC_LIBS)

.PHONY: bench-programs
bench-programs: $(BENCH_PROGRAMS)

ifneq ($(SANITIZE),)
bench:
	@echo "make bench measures the optimised build: run it without SANITIZE=$(SANITIZE)" >&2
	@exit 1
else
bench: $(BENCH_PROGRAMS) $(PROGRAMS)
	BUILD=$(BUILD) bench/run.sh
endif

# bench/bench_sms.sh and bench/bench_sms_fault.sh (make bench-sms, make bench-sms-fault;
# docs/sms.md "Figures"): the API client, and the test SMSC as a process of its own.
$(BUILD)/bench/bench_sms: $(BUILD)/obj/bench/bench_sms.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcurl -lpthread

$(BUILD)/bench/bench_sms_smsc: $(BUILD)/obj/bench/bench_sms_smsc.o $(BUILD)/obj/tests/support/sms_smsc.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lsmpp34 -lpthread
