#!/usr/bin/env bash
# Instructions per malloc+free pair, counted with callgrind (deterministic), for xalloc and any
# other allocator libraries given as arguments ("glibc" means no preload).
# Usage: scripts/fastpath-count.sh [sizes...] -- [glibc|/path/lib.so ...]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install valgrind)" >&2; exit 1; }
sizes=(16 64 256 4096)
libs=(glibc "$root/target/release/libxalloc.so")
if [ $# -gt 0 ]; then
  sizes=(); while [ $# -gt 0 ] && [ "$1" != "--" ]; do sizes+=("$1"); shift; done
  if [ "${1:-}" = "--" ]; then shift; libs=("$@"); fi
fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
gcc -O2 -fno-builtin -o "$tmp/fastpath" "$here/fastpath.c"
count() { # lib size n
  local pre=()
  [ "$1" = glibc ] || pre=(env LD_PRELOAD="$1")
  "${pre[@]}" valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" "$tmp/fastpath" "$2" "$3" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
printf '%-40s' allocator; for s in "${sizes[@]}"; do printf '%8s' "${s}B"; done; echo
for lib in "${libs[@]}"; do
  printf '%-40s' "$(basename "$lib")"
  for s in "${sizes[@]}"; do
    a=$(count "$lib" "$s" 100000); b=$(count "$lib" "$s" 300000)
    printf '%8s' "$(( (b - a) / 200000 ))"
  done
  echo
done
