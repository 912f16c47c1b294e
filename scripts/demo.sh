#!/usr/bin/env bash
# `make run`: show xalloc replacing malloc in real programs, in under a minute.
#
#  1. proves the library is what malloc() calls inside a preloaded process;
#  2. runs a Python workload (every object through malloc) with and without
#     xalloc, compares the output, and shows time and peak RSS of each;
#  3. compiles and runs a generated C program with gcc under xalloc;
#  4. prints xalloc's own statistics for the compiler of the gcc run
#     (XALLOC_STATS_FILE: one report per process, named by its pid).
set -euo pipefail

self=$(readlink -f -- "${BASH_SOURCE[0]}")
scripts=$(dirname -- "$self")
workloads=$scripts/workloads
run=$scripts/xalloc-run
root=$(dirname -- "$scripts")
so=${XALLOC_SO:-$root/target/release/libxalloc.so}
[ -f "$so" ] || { echo "demo: $so is not built; run 'make build'" >&2; exit 2; }
so=$(readlink -f -- "$so")
export XALLOC_SO=$so

PY=$(python3 -c 'import sys; print(sys.executable)')
tmp=$(mktemp -d "${TMPDIR:-/tmp}/xalloc-demo.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

have_time=
[ -x /usr/bin/time ] && have_time=1
timed() { # timed LABEL OUTFILE CMD... : run, print wall time and peak RSS
    local label=$1 out=$2
    shift 2
    if [ -n "$have_time" ]; then
        /usr/bin/time -f '%e %M' -o "$tmp/t" "$@" > "$out"
        read -r secs kb < "$tmp/t"
        printf '  %-22s %6.2f s  peak RSS %7.1f MiB\n' "$label" "$secs" "$(awk -v k="$kb" 'BEGIN { print k / 1024 }')"
    else
        "$@" > "$out"
        printf '  %-22s done\n' "$label"
    fi
}

echo "== library: $so ($(du -h "$so" | cut -f1))"
echo
echo "== 1. is malloc() in a preloaded process xalloc's?"
"$run" "$PY" - <<'EOF'
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
owns = libc.xa_owns
owns.restype, owns.argtypes = ctypes.c_int, [ctypes.c_void_p]
for size in (16, 4000, 300000, 8 << 20):
    p = libc.malloc(size)
    print("  malloc(%8d) = %#x   xa_owns -> %d" % (size, p, owns(p)))
    assert owns(p), "malloc did not come from xalloc"
    libc.free(p)
EOF
echo
echo "== 2. Python workload (PYTHONMALLOC=malloc: every object via malloc)"
export PYTHONMALLOC=malloc
timed "python3 (glibc malloc)" "$tmp/py.base" "$PY" "$workloads/pyload.py" --scale 1
timed "python3 (xalloc)" "$tmp/py.xa" "$run" "$PY" "$workloads/pyload.py" --scale 1
unset PYTHONMALLOC
sed 's/^/  | /' "$tmp/py.xa"
if cmp -s "$tmp/py.base" "$tmp/py.xa"; then
    echo "  output identical with and without xalloc"
else
    echo "  OUTPUT DIFFERS:"
    diff "$tmp/py.base" "$tmp/py.xa" | sed 's/^/  /'
    exit 1
fi
echo
echo "== 3. gcc -O1 on a generated C file of 200 functions, under xalloc"
"$PY" "$workloads/gen_c.py" --funcs 200 > "$tmp/prog.c"
echo "  $(wc -l < "$tmp/prog.c") lines of C"
timed "gcc (glibc malloc)" /dev/null gcc -O1 -c "$tmp/prog.c" -o "$tmp/prog.base.o"
# XALLOC_STATS_FILE: each process (gcc, cc1, as) writes xalloc's statistics at exit to its own file
XALLOC_STATS_FILE="$tmp/stats.%p" timed "gcc (xalloc)" /dev/null "$run" gcc -O1 -c "$tmp/prog.c" -o "$tmp/prog.o"
"$run" gcc "$tmp/prog.o" -o "$tmp/prog"
"$run" "$tmp/prog" | sed 's/^/  | /'
if cmp -s "$tmp/prog.o" "$tmp/prog.base.o"; then
    echo "  object file identical with and without xalloc"
else
    echo "  OBJECT FILES DIFFER"
    exit 1
fi
echo
echo "== 4. xalloc statistics at exit of the compiler (cc1), XALLOC_STATS_FILE=.../stats.%p"
cc1_stats=$(grep -l 'statistics: .*cc1 (pid' "$tmp"/stats.* 2> /dev/null | head -n 1 || true)
if [ -n "$cc1_stats" ]; then
    sed 's/^/  /' "$cc1_stats"
else
    echo "  (no statistics written)"
fi
echo
echo "make run: OK"
