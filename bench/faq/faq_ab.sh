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
cflags=(-O2 -g -std=c17 -D_GNU_SOURCE)
# A: the search of `rev` (faq_search.c, and faq_analysis.c once it was split off), as one
# object whose every global becomes a_<name>
mkdir -p "$tmp/a" "$tmp/b"
for f in faq_search.c faq_search.h faq_analysis.c faq_analysis.h; do
    git show "$rev:services/faq/$f" >"$tmp/a/$f" 2>/dev/null || rm -f "$tmp/a/$f"
done
for f in "$tmp"/a/*.c; do cc "${cflags[@]}" -I"$tmp/a" -c "$f" -o "${f%.c}.o"; done
ld -r -o "$tmp/a.o" "$tmp"/a/*.o
nm --defined-only -g "$tmp/a.o" | awk '{ print $3 " a_" $3 }' >"$tmp/renames"
objcopy --redefine-syms="$tmp/renames" "$tmp/a.o"
# B: the working tree's
for f in services/faq/faq_search.c services/faq/faq_analysis.c; do
    cc "${cflags[@]}" -Iservices/faq -c "$f" -o "$tmp/b/$(basename "${f%.c}").o"
done
cc "${cflags[@]}" -Iservices/faq -o "$out" bench/faq/faq_ab.c "$tmp/a.o" "$tmp"/b/*.o \
    -lmecab -lutf8proc -lczmq -lcjson -lm
echo "A: $rev ($(git rev-parse --short "$rev")), B: the working tree"
"$out" "$data"
