# ncc: one non-recursive Makefile (see docs/build.md).
#   make            build every daemon into $(BUILD)/bin
#   make run        install what is missing, build, start PostgreSQL and every daemon
#   make test       the same set-up, then every test under ASan+UBSan
#   make SANITIZE=address,undefined BUILD=build/asan   a sanitised build
# Each component adds itself in its own module.mk; sources are found by wildcard.

BUILD    ?= build
SANITIZE ?=
CC       ?= gcc
PROTOC_C ?= protoc-c

OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c17 -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE -fPIC \
            -MMD -MP -Icommon/include -Itests/support -I$(BUILD)/gen -I/usr/include/postgresql
LDFLAGS  ?=
ifneq ($(SANITIZE),)
CFLAGS   += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=$(SANITIZE)
endif

# Libraries every daemon links (all from Debian's -dev packages; see scripts/deps.sh).
NCC_LIBS := -lczmq -lzmq -lprotobuf-c -lpq -lcjson -lcivetweb -lssl -lcrypto -lpthread -lm

GEN      := $(BUILD)/gen
PROTO    := $(sort $(wildcard proto/*.proto))
PROTO_C  := $(patsubst proto/%.proto,$(GEN)/%.pb-c.c,$(PROTO))
PROTO_H  := $(PROTO_C:.c=.h)

# Everything that must exist before any object compiles (generated headers).
GENERATED_HEADERS := $(PROTO_H)

.PHONY: all run stop test test-unit test-integration bench fuzz format check-format clean deps db
all:

# --- generated code -----------------------------------------------------------
$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	$(PROTOC_C) --proto_path=proto --c_out=$(GEN) $<

# One table of every message descriptor, so the gateway and the bus can turn a
# type name ("ncc.Ping") into its descriptor without per-message code.
$(GEN)/ncc_registry.c: $(PROTO_H) scripts/gen-registry.sh
	@mkdir -p $(GEN)
	scripts/gen-registry.sh $(GEN) $(notdir $(PROTO_H)) > $@.tmp && mv $@.tmp $@

# SQL migrations embedded in the binary: $(GEN)/sql_<name>.c from <dir>/sql/*.sql.
define ncc_embed_sql
$(GEN)/sql_$(1).c: $$(sort $$(wildcard $(2)/sql/*.sql)) scripts/gen-sql.sh
	@mkdir -p $(GEN)
	scripts/gen-sql.sh $(1) $$(sort $$(wildcard $(2)/sql/*.sql)) > $$@.tmp && mv $$@.tmp $$@
endef

# --- objects --------------------------------------------------------------------
$(BUILD)/obj/%.o: %.c | $(GENERATED_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# A daemon: $(call ncc_program,<binary name>,<source list>,<extra libs>)
define ncc_program
$(BUILD)/bin/$(1): $(patsubst %.c,$(BUILD)/obj/%.o,$(2)) $(BUILD)/libncc.a
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $(3) $$(NCC_LIBS)
all: $(BUILD)/bin/$(1)
PROGRAMS += $(BUILD)/bin/$(1)
endef

# A service: services/<svc>/*.c + its embedded migrations -> ncc-<svc>.
define ncc_service
$(call ncc_embed_sql,$(1),services/$(1))
$(call ncc_program,ncc-$(1),$(wildcard services/$(1)/*.c) $(GEN)/sql_$(1).c,$($(1)_LIBS))
SERVICES += $(1)
endef

include common/module.mk
include gateway/module.mk
include $(sort $(wildcard services/*/module.mk))
include tests/module.mk
include bench/module.mk
# make bench-faq: FAQ search quality and speed on the localgovFAQ data (docs/faq.md)
.PHONY: bench-faq
bench-faq: $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-faq $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_faq.sh
# make bench-history: search, freshness and CSV export over 2 million records beside pg_trgm
# (docs/history.md "Figures"); BENCH_RECORDS for another size
.PHONY: bench-history
bench-history: $(BUILD)/bench/bench_history $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-history $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_history.sh
# make bench-report: the monthly report over a fiscal year at 10x (2,000,000 contacts), the
# batch, the live push lag (docs/performance.md "Reports (issue 9)"); BENCH_CONTACTS for another size
.PHONY: bench-report report
bench-report: $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-calls $(BUILD)/bin/ncc-history $(BUILD)/bin/ncc-faq $(BUILD)/bin/ncc-sms $(BUILD)/bin/ncc-report $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_report.sh
# make report: an example batch run (docs/kpi.md "Batch runs"), last month's figures as XLSX
# into var/reports/ from the database of var/env; REPORT_KIND=daily REPORT_PERIOD=2027-03-31
# REPORT_OUT=... for another. Exit codes: 2 bad arguments, 3 cannot write, 4 database.
REPORT_KIND ?= monthly
REPORT_PERIOD ?= $(shell date -d "$$(date +%Y-%m-01) -1 day" +%Y-%m)
REPORT_OUT ?= var/reports/report-$(REPORT_KIND)-$(REPORT_PERIOD).xlsx
report: $(BUILD)/bin/ncc-report
	@mkdir -p $(dir $(REPORT_OUT))
	set -a; [ -n "$$NCC_DATABASE_URL" ] || . var/env; \
	$(BUILD)/bin/ncc-report --batch $(REPORT_KIND) --period $(REPORT_PERIOD) --out $(REPORT_OUT)
# make bench-sms: SMS send throughput to a local SMPP peer and queue latency; make
# bench-sms-fault: 10,000 sends while ncc-sms and the peer are killed at random (docs/sms.md)
.PHONY: bench-sms bench-sms-fault
bench-sms: $(BUILD)/bench/bench_sms $(BUILD)/bench/bench_sms_smsc $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-sms $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_sms.sh
bench-sms-fault: $(BUILD)/bench/bench_sms $(BUILD)/bench/bench_sms_smsc $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-sms $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_sms_fault.sh
# make chaos: kill, pause and restart daemons and PostgreSQL under load, then reconcile
# (tests/chaos/chaos.sh, docs/reliability.md; a few minutes, not part of make test)
.PHONY: chaos
chaos: all
	BUILD=$(BUILD) tests/chaos/chaos.sh
# make chaos-copies: two copies of every daemon on one database, one copy killed in turn
# under load, then reconcile (tests/chaos/copies.sh, docs/reliability.md; a few minutes)
.PHONY: chaos-copies
chaos-copies: all
	BUILD=$(BUILD) tests/chaos/copies.sh
# make bench-backup: backup and restore of 2 million records (docs/performance.md "Backups")
.PHONY: bench-backup
bench-backup: all
	BUILD=$(BUILD) bench/bench_backup.sh
# make bench-load: the operator floor's API paths under wrk, the sustained rate at p99 < 200 ms
# and CPU per request (bench/load/*.lua; docs/performance.md "Load (wrk)")
.PHONY: bench-load
bench-load: $(BUILD)/bin/ncc-directory $(BUILD)/bin/ncc-calls $(BUILD)/bin/ncc-history $(BUILD)/bin/ncc-faq $(BUILD)/bin/ncc-gateway
	BUILD=$(BUILD) bench/bench_load.sh
include fuzz/module.mk
include $(sort $(wildcard tools/*/module.mk))

# --- set-up and run -------------------------------------------------------------
# The browser client's chart library (docs/web.md): `npm ci` in gateway/web-vendor, copied
# into the git-ignored gateway/web/vendor/ that the gateway serves; again when the lock changes.
all: gateway/web-vendor/node_modules/.ncc-installed
gateway/web-vendor/node_modules/.ncc-installed: gateway/web-vendor/package-lock.json scripts/web-vendor.sh
	scripts/web-vendor.sh

deps:
	scripts/deps.sh

run: deps
	$(MAKE) all
	scripts/run.sh foreground

stop:
	scripts/run.sh stop

# make backup: an encrypted backup of the database (scripts/backup.sh; docs/operations.md
# "Backups"). make restore FILE=<backup> [DB=<local database>] [FORCE=1]: restore and verify it.
.PHONY: backup restore
backup:
	scripts/backup.sh $(if $(DB),--database $(DB)) $(if $(OUT),--output $(OUT))

restore:
	@test -n "$(FILE)" || { echo "usage: make restore FILE=<backup file> [DB=<database>] [FORCE=1]" >&2; exit 2; }
	scripts/restore.sh $(if $(DB),--database $(DB)) $(if $(FORCE),--force) "$(FILE)"

test: deps
	scripts/test.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	@bad=$$(for f in $$(git ls-files '*.c' '*.h'); do clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "not in .clang-format style:"; echo "$$bad"; exit 1; fi

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
