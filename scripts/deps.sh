#!/usr/bin/env bash
# Installs the Debian 12 packages ncc needs to build, run and test, only when
# some are missing (one dpkg-query when all are present: well under a second).
#   scripts/deps.sh            check, and install what is missing
#   scripts/deps.sh --check    only list what is missing (exit 1 if anything is)
# NCC_DEPS_EXTRA="pkg ..." adds packages (make fuzz: clang and its libFuzzer runtime).
# NCC_DEPS_NO_BROWSER=1 leaves out chromium, nodejs and npm (the browser tests).
set -euo pipefail

packages=(
    # build
    build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev
    libzmq3-dev libczmq-dev libpq-dev libcivetweb-dev libssl-dev libcjson-dev
    libcurl4-openssl-dev libargon2-dev libutf8proc-dev
    libsmpp34-dev
    mecab libmecab-dev mecab-ipadic-utf8 libgroonga-dev groonga libxlsxwriter-dev
    # database
    postgresql-15 postgresql-client-15
    # tests and tools
    libcriterion-dev libyaml-dev wrk clang-format curl ca-certificates openssl
    # backups (scripts/backup.sh, scripts/restore.sh; docs/decisions.md D13)
    age
)
if [ "${NCC_DEPS_NO_BROWSER:-0}" != 1 ]; then
    packages+=(chromium fonts-noto-cjk)
fi
# NCC_DEPS_EXTRA: more packages for one target (make fuzz asks for clang).
# shellcheck disable=SC2206
packages+=(${NCC_DEPS_EXTRA:-})

missing=()
# Installed packages print "ii"; unknown or removed ones print something else or nothing.
installed=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' "${packages[@]}" 2>/dev/null |
    awk '$1 == "ii" { print $2 }') || true
for p in "${packages[@]}"; do
    if ! grep -qxF "$p" <<<"$installed"; then
        missing+=("$p")
    fi
done
# node and npm: any install will do (NodeSource's nodejs provides npm and
# conflicts with Debian's npm package), so look for the commands.
if [ "${NCC_DEPS_NO_BROWSER:-0}" != 1 ]; then
    command -v node >/dev/null 2>&1 || missing+=(nodejs)
    command -v npm >/dev/null 2>&1 || missing+=(npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "${1:-}" = --check ]; then
    echo "deps.sh: missing: ${missing[*]}"
    exit 1
fi

echo "deps.sh: installing ${missing[*]}"
if [ "$(id -u)" = 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "deps.sh: these Debian packages are missing and I am not root (and there is no sudo):" >&2
    echo "    apt-get install ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
# Debian's postgresql package may start a system cluster on 5432: harmless,
# ncc's own cluster (scripts/pg.sh) listens on 5433.
