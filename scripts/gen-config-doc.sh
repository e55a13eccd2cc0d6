#!/usr/bin/env bash
# Writes docs/configuration.md from the daemons' own settings tables
# (`ncc-<name> --help`), so the documented defaults are the real ones.
#   scripts/gen-config-doc.sh [BUILD_DIR]    (default build; run `make` first)
# tests/static/test_config_doc.c fails when a setting is missing from the file.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build}/bin
out=docs/configuration.md
daemons=(gateway directory calls history faq sms summary report)
for d in "${daemons[@]}"; do
    [ -x "$bin/ncc-$d" ] || { echo "gen-config-doc: $bin/ncc-$d missing: run make" >&2; exit 1; }
done
{
    cat <<'HEAD'
# Configuration

Every daemon reads its settings from environment variables; `ncc-<name> --help` prints the same
list. This file is generated from those tables by `scripts/gen-config-doc.sh` (do not edit the
per-daemon sections by hand; `tests/static/test_config_doc.c` checks that nothing is missing).

- Secrets (marked *secret*) are never logged and never belong in the repository: `make run` keeps
  local ones in `var/secrets.env` (mode 600); a deployment keeps them in its secret store
  (docs/deployment.md).
- `NCC_CONFIG_FILE` names an optional file of `NCC_NAME=value` lines (as systemd's
  EnvironmentFile). It is read at start and again on `SIGHUP`; settings marked *reloadable* then
  change without a restart, the others need one. A bad value on reload is refused and the running
  configuration kept.
- Where daemons find each other: `NCC_<NAME>_RPC` and `NCC_<NAME>_PUB` (NAME = DIRECTORY, CALLS,
  HISTORY, FAQ, SMS, SUMMARY, REPORT) are comma-separated ZeroMQ endpoint lists, one per running
  copy of that service; the defaults are the service's own `*_RPC_BIND` / `*_PUB_BIND` defaults
  below (`tcp://127.0.0.1:71xx` and `:72xx`), so one machine needs no settings at all.
- Clocks must be synchronised (NTP): bus requests older than 300 s are refused.

## Scripts (`make run`, `make test`)

| variable | default | meaning |
| --- | --- | --- |
| `NCC_VAR` | `<repo>/var` | where the local PostgreSQL cluster, logs, pid files, TLS files and `secrets.env` live |
| `NCC_PG_PORT` | `5433` | port of the local PostgreSQL cluster (127.0.0.1 only) |
| `NCC_PG_BIN` | `/usr/lib/postgresql/15/bin` | PostgreSQL server programs |
| `NCC_READY_TIMEOUT` | `30` | seconds `run.sh` waits for every daemon's `/readyz` |
| `NCC_STOP_TIMEOUT` | `10` | seconds `run.sh stop` waits before SIGKILL |
| `NCC_TEST_JOBS` | `1` | Criterion jobs per test binary |
| `NCC_TEST_TIMEOUT` | `600` | seconds one test binary may run |
| `NCC_DEPS_NO_BROWSER` | unset | `1` leaves chromium and node out of `scripts/deps.sh` |
| `NCC_DEPS_EXTRA` | unset | more Debian packages for `scripts/deps.sh` (`make fuzz` asks for clang) |
| `NCC_BACKUP_KEY` | unset | *secret*: the age secret key (`AGE-SECRET-KEY-1...`, from `age-keygen`) that `make restore` decrypts with and, without `NCC_BACKUP_RECIPIENT`, `make backup` encrypts to; kept as docs/reliability.md "Keys" says |
| `NCC_BACKUP_RECIPIENT` | unset | the public half of that key (`age1...`, `age-keygen -y`): `make backup` encrypts to it, so the machine that makes backups needs no secret |
| `NCC_BACKUP_DIR` | `$NCC_VAR/backups` | where `make backup` writes `ncc-<database>-<UTC time>.backup` |
| `NCC_BACKUP_COMPRESS` | `1` | gzip level of the dump inside a backup, 0–9 (6 makes the file about a quarter smaller and the backup about four times slower) |

Tests also receive `NCC_TEST_GATEWAY_URL`, `NCC_TEST_CA_FILE`, `NCC_TEST_BIN_DIR` and
`NCC_SOURCE_DIR` from `scripts/test.sh`.
HEAD
    for d in "${daemons[@]}"; do
        printf '\n## ncc-%s\n\n' "$d"
        printf '| variable | type | default | reload | meaning |\n| --- | --- | --- | --- | --- |\n'
        "$bin/ncc-$d" --help | awk '
            /^  NCC_/ {
                if (name != "") emit()
                name = $1; rest = $0; sub(/^  NCC_[A-Z0-9_]+  \(/, "", rest); sub(/\)$/, "", rest)
                type = rest; sub(/,.*/, "", type)
                def = "none"; if (match(rest, /default "[^"]*"/)) def = "`" substr(rest, RSTART + 9, RLENGTH - 10) "`"
                reload = (rest ~ /reloadable/) ? "SIGHUP" : "restart"
                if (rest ~ /secret/) type = type ", *secret*"
                help = ""; next
            }
            /^      / && name != "" { line = $0; sub(/^ +/, "", line); help = help (help == "" ? "" : " ") line; next }
            function emit() { gsub(/\|/, "\\|", help); gsub(/\|/, "\\|", type); printf "| `%s` | %s | %s | %s | %s |\n", name, type, def, reload, help; name = "" }
            END { if (name != "") emit() }'
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out"
