#!/usr/bin/env bash
# The README's flame graph and heap map: CPython (Debian's /usr/bin/python3, its objects
# allocated with malloc: PYTHONMALLOC=malloc) building word lists, an index, JSON and regex
# matches; the script dumps the profile and the heap map itself at its peak (ctypes calls
# xa_prof_dump and xa_heap_map), and xalloc-prof draws them into docs/images/.
#
#   scripts/profile-demo/python.sh      (after `cargo build --release --workspace`)
set -euo pipefail
cd "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/../.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
XALLOC_DEMO_OUT=$out LD_PRELOAD=$PWD/target/release/libxalloc.so PYTHONMALLOC=malloc \
    XALLOC_PROF=1 XALLOC_PROF_FILE=/dev/null /usr/bin/python3 scripts/profile-demo/python-work.py
prof=target/release/xalloc-prof
$prof top "$out/python.heap" -n 12
$prof flame "$out/python.heap" -o docs/images/python-flame.svg --title "CPython 3.11: live bytes by stack (xalloc-prof flame)"
$prof heapmap "$out/python.map" -o docs/images/python-heapmap.png
