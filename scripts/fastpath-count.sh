#!/usr/bin/env bash
# Instructions per malloc+free pair, counted with callgrind (deterministic), for xalloc and any
# other allocator libraries given as arguments ("glibc" means no preload).
# Usage: scripts/fastpath-count.sh [--new [plain]] [--keep K] [sizes...] -- [glibc|/path/lib.so ...]
#
# --new: count C++ `::operator new` + `::operator delete(p, size)` pairs instead
# (scripts/fastpath-new.cc; `--new plain` uses the unsized `operator delete(p)`).
#
# --keep K: K blocks of the probed size stay live through the loop (default 0: the loop frees the
# only live block of its page each time, which sends allocators that retire empty pages down
# their slow path; 8 measures every allocator's plain fast path).
#
# Each cell is "pair/inside": `pair` is the whole loop iteration of scripts/fastpath.c (malloc,
# free, the calls, the loop), `inside` the same less the loop's own instructions in `main`, i.e.
# what malloc and free execute (PLT stubs included). Both are differences of two runs (100 000
# and 300 000 pairs), so start-up costs cancel. scripts/bench/bench.py reads this output.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
for tool in valgrind callgrind_annotate; do
  command -v $tool >/dev/null || { echo "$tool is required (apt-get install valgrind)" >&2; exit 1; }
done
sizes=(16 64 256 4096)
libs=(glibc "$root/target/release/libxalloc.so")
keep=0
probe=c
delete=sized
if [ "${1:-}" = "--new" ]; then
  probe=cxx; shift
  if [ "${1:-}" = "plain" ]; then delete=plain; shift; fi
fi
if [ "${1:-}" = "--keep" ]; then keep=$2; shift 2; fi
if [ $# -gt 0 ]; then
  sizes=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do sizes+=("$1"); shift; done
  if [ "${1:-}" = "--" ]; then shift; libs=("$@"); fi
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
if [ "$probe" = cxx ]; then
  g++ -O2 -o "$tmp/fastpath" "$here/fastpath-new.cc"
else
  gcc -O2 -fno-builtin -o "$tmp/fastpath" "$here/fastpath.c"
fi
count() { # lib size n -> "total main-self"
  local pre=() total
  [ "$1" = glibc ] || pre=(env LD_PRELOAD="$1")
  total=$("${pre[@]}" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$tmp/fastpath" "$2" "$3" "$keep" "$delete" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p')
  echo "$total $(callgrind_annotate "$tmp/cg.out" | awk '/:main \[.*fastpath\]/ { gsub(",", "", $1); print $1; exit }')"
}
printf '%-32s' allocator; for s in "${sizes[@]}"; do printf '%12s' "${s}B"; done; echo
for lib in "${libs[@]}"; do
  printf '%-32s' "$(basename "$lib")"
  for s in "${sizes[@]}"; do
    read -r a ma < <(count "$lib" "$s" 100000)
    read -r b mb < <(count "$lib" "$s" 300000)
    pair=$(( (b - a) / 200000 )); loop=$(( (mb - ma) / 200000 ))
    printf '%12s' "$pair/$((pair - loop))"
  done
  echo
done
