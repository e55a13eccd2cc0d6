#!/usr/bin/env bash
# bench/faq/faq_ab.sh [revision] [data folder]: the FAQ search of `revision` (default HEAD)
# against the one in the working tree, timed in one process query by query (bench/faq/faq_ab.c,
# docs/faq.md "Figures"). Environment: BUILD (build), FAQ_EVAL_LARGE, ROUNDS, FILTER (see
# faq_ab.c). Only reads the repository (git show).
set -euo pipefail
cd "$(dirname "$0")/../.."
rev=${1:-HEAD}
data=${2:-../shared/data/faq/localgovfaq_amagasaki}
build=${BUILD:-build}
out=$build/bench/faq_ab
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$(dirname "$out")"
cflags=(-O2 -g -std=c17 -D_GNU_SOURCE -Iservices/faq)
git show "$rev:services/faq/faq_search.c" >"$tmp/a.c"
cc "${cflags[@]}" -c "$tmp/a.c" -o "$tmp/a.o"
# every function A defines becomes a_<name>
nm --defined-only -g "$tmp/a.o" | awk '{ print $3 " a_" $3 }' >"$tmp/renames"
objcopy --redefine-syms="$tmp/renames" "$tmp/a.o"
cc "${cflags[@]}" -c services/faq/faq_search.c -o "$tmp/b.o"
cc "${cflags[@]}" -o "$out" bench/faq/faq_ab.c "$tmp/a.o" "$tmp/b.o" -lmecab -lutf8proc -lczmq -lcjson -lm
echo "A: $rev ($(git rev-parse --short "$rev")), B: the working tree"
"$out" "$data"
