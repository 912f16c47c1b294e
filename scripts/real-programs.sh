#!/usr/bin/env bash
# Run real programs with and without xalloc and compare what they produce.
#
#   scripts/real-programs.sh               # every program
#   scripts/real-programs.sh gcc git       # only these
#   scripts/real-programs.sh --list        # names of the programs
#   scripts/real-programs.sh --keep ...    # keep the work directory afterwards
#
# Each program runs twice on the same generated input: once as the system
# ships it (glibc malloc) and once under scripts/xalloc-run (LD_PRELOAD of
# target/release/libxalloc.so, or $XALLOC_SO). A program passes when both
# runs exit 0 and their results (the program's output, checksums of the
# files it produced, test-suite pass counts) are identical. Each run is
# bounded by a timeout; wall time and peak RSS come from /usr/bin/time.
#
# Before anything else a probe proves that the library really replaces
# malloc in a preloaded process (malloc() returns blocks for which
# xa_owns() is true), and every run under the library checks that the
# library is mapped in its own process. XALLOC_SKIP_PROBE=1 skips the probe,
# for trying the script with another malloc library as XALLOC_SO.
#
# Missing tools are installed with apt-get when running as root. The last
# line is "N passed, M failed[, K skipped]"; the exit status is 1 when any
# program failed.
set -uo pipefail

self=$(readlink -f -- "${BASH_SOURCE[0]}")
scripts=$(dirname -- "$self")
root=$(dirname -- "$scripts")
workloads=$scripts/workloads
xalloc_run=$scripts/xalloc-run

# name:function:timeout-seconds, in the order they run
CASES=(
    "python-regrtest:python_regrtest:300"
    "python:python_workload:120"
    "gcc:gcc_big:240"
    "g++:gxx:180"
    "git:git_history:180"
    "perl:perl_workload:120"
    "bash:bash_workload:120"
    "sqlite3:sqlite:120"
    "sort:sort_big:120"
    "awk:awk_workload:120"
    "xz:xz_threads:180"
    "tar:tar_gzip:120"
    "cargo:cargo_build:300"
)

# CPython regression tests that are heavy on allocation and do not need a
# network, a terminal or a particular environment.
REGRTESTS="test_json test_re test_collections test_dict test_list test_set
test_sort test_unicode test_long test_string test_heapq test_bisect
test_struct test_pickle test_itertools test_functools test_deque test_bytes
test_array test_decimal test_fractions test_xml_etree test_zlib test_hashlib
test_thread test_weakref test_gc test_mmap test_ctypes test_sqlite3
test_unicodedata test_difflib test_email test_csv test_tokenize test_ast
test_compile test_grammar test_memoryio test_bz2 test_lzma test_tempfile
test_enum test_dataclasses test_typing test_statistics test_random test_math
test_float test_format test_fstring test_descr test_class test_exceptions
test_generators test_coroutines test_contextlib test_copy test_base64
test_binascii test_codecs test_textwrap test_argparse test_pprint
test_ordered_dict test_defaultdict"

die() {
    echo "real-programs: $*" >&2
    exit 2
}

# hash_of FILE: the file's SHA-256
hash_of() { sha256sum < "$1" | cut -d' ' -f1; }

# ---------------------------------------------------------------------------
# Programs. prep_X IN runs once, without the library and untimed, and makes
# the input in directory IN (exit 77 with a reason in IN/skip to skip the
# program). body_X runs in a fresh directory, with $IN set, under `set -e`,
# and writes what must match between the two runs to ./result.

prep_python_regrtest() {
    if ! "$PY" -c 'import test.libregrtest' 2>/dev/null; then
        echo "$PY has no 'test' package (CPython's regression tests)" > "$1/skip"
        return 77
    fi
    local t have=
    for t in $REGRTESTS; do
        if "$PY" -c "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('test.$t') else 1)" 2>/dev/null; then
            have="$have $t"
        fi
    done
    if [ -z "$have" ]; then
        echo "none of the chosen regression tests exist in $PY" > "$1/skip"
        return 77
    fi
    echo "$have" > "$1/tests"
}
body_python_regrtest() {
    local rc=0
    # shellcheck disable=SC2046
    PYTHONMALLOC=malloc "$PY" -m test -j0 --timeout 200 $(cat "$IN/tests") > regrtest.log 2>&1 || rc=$?
    grep -E '^(Total tests|Total test files|Result):' regrtest.log > result || true
    if [ "$rc" -ne 0 ]; then
        grep -E -A3 '^[0-9]+ tests? failed|^test .* failed|crashed|Fatal Python error' regrtest.log | head -40
        tail -5 regrtest.log
    fi
    return "$rc"
}

prep_python_workload() { :; }
body_python_workload() {
    PYTHONMALLOC=malloc "$PY" "$workloads/pyload.py" --scale 2 --threads 4 > result
}

prep_gcc_big() {
    "$PY" "$workloads/gen_c.py" --funcs 600 > "$1/big.c"
}
body_gcc_big() {
    cp "$IN/big.c" .
    gcc -O1 -frandom-seed=xalloc -c big.c -o big.o
    gcc -O1 big.o -o big
    ./big 20 > run.out
    # the preprocessed form of a pile of system headers
    printf '#include <%s>\n' stdio.h stdlib.h string.h math.h pthread.h signal.h \
        sys/socket.h netinet/in.h arpa/inet.h sys/stat.h fcntl.h unistd.h \
        wchar.h locale.h regex.h glob.h dirent.h time.h > headers.c
    gcc -E -P headers.c -o headers.i
    {
        echo "big.o $(hash_of big.o)"
        echo "run $(cat run.out)"
        echo "headers.i $(hash_of headers.i)"
    } > result
}

prep_gxx() { :; }
body_gxx() {
    g++ -O1 -std=c++17 -pthread -frandom-seed=xalloc -c "$workloads/cxxload.cpp" -o cxxload.o
    g++ -pthread cxxload.o -o cxxload
    ./cxxload > run.out
    echo '#include <bits/stdc++.h>' > all.cpp
    g++ -std=c++17 -E -P all.cpp -o all.ii
    {
        echo "cxxload.o $(hash_of cxxload.o)"
        cat run.out
        echo "all.ii $(hash_of all.ii)"
    } > result
}

prep_git_history() {
    "$PY" "$workloads/gen_git.py" --commits 1200 > "$1/history.fi"
}
body_git_history() {
    export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
    git config --global user.name xalloc
    git config --global user.email xalloc@example.org
    git config --global pack.threads 2
    git init -q -b main repo
    cd repo
    git fast-import --quiet < "$IN/history.fi"
    git log -p --all > ../log.txt
    git rev-list --all --objects | sort > ../objects.txt
    git gc -q --aggressive --prune=now
    git fsck --full --strict --no-progress > ../fsck.txt 2>&1
    cd ..
    git clone -q --no-local repo clone
    cd clone
    git log -p --stat > ../clone-log.txt
    git ls-files > ../files.txt
    head -20 ../files.txt | while read -r f; do git blame -w "$f"; done > ../blame.txt
    git diff --histogram --stat v1 v9 > ../diffstat.txt
    git log -p -G'buddy.*merge' --all > ../pickaxe.txt
    git archive --format=tar v5 > ../v5.tar
    git repack -adf -q
    git rev-list --all --objects | sort > ../objects-after.txt
    cd ..
    {
        echo "log -p $(hash_of log.txt)"
        echo "objects $(hash_of objects.txt)"
        echo "fsck: $(cat fsck.txt) ok"
        echo "clone log -p --stat $(hash_of clone-log.txt)"
        echo "blame $(hash_of blame.txt)"
        tail -1 diffstat.txt
        echo "pickaxe $(hash_of pickaxe.txt)"
        echo "archive $(hash_of v5.tar)"
        echo "objects after repack $(hash_of objects-after.txt)"
    } > result
}

prep_perl_workload() { :; }
body_perl_workload() {
    perl "$workloads/perlload.pl" 2 > result
}

prep_bash_workload() { :; }
body_bash_workload() {
    bash "$workloads/bashload.sh" 1 > result
}

prep_sqlite() { :; }
body_sqlite() {
    sqlite3 t.db < "$workloads/sqlload.sql" > out.txt
    sqlite3 t.db .dump > dump.sql
    { cat out.txt; echo "dump $(hash_of dump.sql)"; } > result
}

# the large text shared by sort, awk, xz and tar: made once
big_text() {
    if [ ! -s "$WORK/data/text" ]; then
        mkdir -p "$WORK/data"
        "$PY" "$workloads/gen_text.py" 1000000 > "$WORK/data/text.tmp" &&
            mv "$WORK/data/text.tmp" "$WORK/data/text"
    fi
}

prep_sort_big() { big_text && ln -s "$WORK/data/text" "$1/text"; }
body_sort_big() {
    local tab=$'\t'
    mkdir tmp
    sort "$IN/text" > s1
    sort --parallel=2 -S 50M -T tmp "$IN/text" > s2
    sort -t "$tab" -k2,2n -k1,1 --parallel=2 -S 20M -T tmp "$IN/text" > s3
    sort -u -t "$tab" -k1,1 -S 30M -T tmp "$IN/text" | cut -f1 > s4
    LC_ALL=C sort -r -t "$tab" -k3 -k1,2 "$IN/text" > s5
    cmp s1 s2
    {
        echo "sort $(hash_of s1)"
        echo "sort -S50M $(hash_of s2)"
        echo "sort -k2n $(hash_of s3)"
        echo "sort -u $(hash_of s4)"
        echo "sort -r -k3 $(hash_of s5)"
    } > result
}

prep_awk_workload() { big_text && ln -s "$WORK/data/text" "$1/text"; }
body_awk_workload() {
    awk -F '\t' '
        { n[$1]++; s[$1] += $2; w = split($3, parts, " "); for (i = 1; i <= w; i++) words[parts[i]]++ }
        length($3) > 40 { long[NR % 1000] = long[NR % 1000] $3 }
        END {
            for (k in n) print "k", k, n[k], s[k]
            for (k in words) print "w", k, words[k]
            for (k in long) print "l", k, length(long[k])
        }' "$IN/text" > agg.raw
    LC_ALL=C sort agg.raw > agg.txt
    echo "awk $(hash_of agg.txt) $(wc -l < agg.txt)" > result
}

prep_xz_threads() { big_text && ln -s "$WORK/data/text" "$1/text"; }
body_xz_threads() {
    head -c 30000000 "$IN/text" > in
    head -c 8000000 "$IN/text" > small
    xz -T2 -1 --block-size=4MiB -c in > in.xz
    xz -T2 -6 --block-size=2MiB -c small > small.xz
    xz -t in.xz small.xz
    xz -T2 -d -c in.xz > in.back
    xz -T2 -d -c small.xz > small.back
    cmp in in.back
    cmp small small.back
    {
        echo "in.xz $(hash_of in.xz)"
        echo "small.xz $(hash_of small.xz)"
        echo "in $(hash_of in.back)"
        echo "small $(hash_of small.back)"
    } > result
}

prep_tar_gzip() {
    big_text || return 1
    mkdir -p "$1/tree"
    (
        cd "$1/tree" &&
            split -l 25000 -a 3 "$WORK/data/text" part. &&
            for f in part.*; do
                d=d$(( $(printf '%d' "'${f: -1}") % 5 ))/sub${f: -2:1}
                mkdir -p "$d" && mv "$f" "$d/"
            done &&
            cp -r "$workloads" src
    )
}
body_tar_gzip() {
    tar --sort=name --mtime=@1600000000 --owner=0 --group=0 --numeric-owner \
        -cf - -C "$IN" tree | gzip -n -6 > tree.tgz
    mkdir x
    tar -xzf tree.tgz -C x
    diff -r "$IN/tree" x/tree
    tar -tvzf tree.tgz > list.txt
    {
        echo "tgz $(hash_of tree.tgz)"
        echo "list $(hash_of list.txt)"
    } > result
}

prep_cargo_build() {
    local crate=$1/crate
    mkdir -p "$crate"
    cp -r "$workloads/rustdemo/." "$crate/"
    mv "$crate/Cargo.toml.in" "$crate/Cargo.toml"
    # Resolve and fetch the dependencies here, so that the timed builds can
    # be --offline. Offline first: the registry cache usually has them.
    local host
    host=$(rustc -vV | sed -n 's/^host: //p')
    if ! (cd "$crate" && cargo generate-lockfile --offline -q &&
        cargo fetch --locked -q --offline --target "$host") > "$1/fetch.log" 2>&1; then
        if ! (cd "$crate" && cargo generate-lockfile -q &&
            cargo fetch --locked -q --target "$host") >> "$1/fetch.log" 2>&1; then
            echo "cannot fetch parking_lot (no registry cache and no network): $(tail -1 "$1/fetch.log")" > "$1/skip"
            return 77
        fi
    fi
}
body_cargo_build() {
    cp -r "$IN/crate" crate
    cd crate
    # rustc brings its own allocator; cargo, the build script and the built
    # program use the C library's malloc, and so xalloc under the library.
    CARGO_TARGET_DIR=$PWD/../target cargo build --release --offline --locked -j2 -q
    ../target/release/xalloc-rustdemo > ../run.out
    cargo tree --offline --locked | sed "s#$PWD#CRATE#" > ../tree.txt
    cd ..
    { cat run.out; echo "tree $(hash_of tree.txt)"; } > result
}

# ---------------------------------------------------------------------------
# One run of one program (re-entered through this script, so that it can run
# under /usr/bin/time, timeout and xalloc-run).

if [ "${1-}" = "--body" ]; then
    set -euo pipefail
    fn=$2
    if [ -n "${XALLOC_EXPECT_MAPPED-}" ] && ! grep -qF -- "$XALLOC_EXPECT_MAPPED" /proc/$$/maps; then
        echo "real-programs: $XALLOC_EXPECT_MAPPED is not mapped in the run's shell: not preloaded" >&2
        exit 90
    fi
    "body_$fn"
    exit 0
fi

# ---------------------------------------------------------------------------
# Driver

keep=0
list=0
selected=()
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1 ;;
        --list) list=1 ;;
        -h | --help)
            sed -n '2,/^set -uo/p' "$self" | sed '$d; s/^# \{0,1\}//'
            exit 0
            ;;
        -*) die "unknown option $1" ;;
        *) selected+=("$1") ;;
    esac
    shift
done

if [ "$list" = 1 ]; then
    for c in "${CASES[@]}"; do echo "${c%%:*}"; done
    exit 0
fi

run_cases=()
if [ ${#selected[@]} -eq 0 ]; then
    run_cases=("${CASES[@]}")
else
    for s in "${selected[@]}"; do
        found=
        for c in "${CASES[@]}"; do
            if [ "${c%%:*}" = "$s" ]; then
                run_cases+=("$c")
                found=1
            fi
        done
        [ -n "$found" ] || die "no program named '$s' (see --list)"
    done
fi

# --- tools -----------------------------------------------------------------

apt_updated=
apt_install() {
    local sudo=
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
            sudo="sudo -n"
        else
            echo "real-programs: not root; cannot install: $*" >&2
            return 1
        fi
    fi
    command -v apt-get > /dev/null || { echo "real-programs: no apt-get; cannot install: $*" >&2; return 1; }
    if [ -z "$apt_updated" ]; then
        echo "real-programs: apt-get update" >&2
        $sudo apt-get update -qq > /dev/null || return 1
        apt_updated=1
    fi
    echo "real-programs: apt-get install $*" >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" > /dev/null
}

declare -A tool_pkg=(
    [python3]=python3 [gcc]=gcc [g++]=g++ [git]=git [perl]=perl [bash]=bash
    [sqlite3]=sqlite3 [sort]=coreutils [timeout]=coreutils [awk]=mawk [xz]=xz-utils
    [tar]=tar [gzip]=gzip [diff]=diffutils [split]=coreutils [sha256sum]=coreutils
)
missing=()
for t in "${!tool_pkg[@]}"; do
    command -v "$t" > /dev/null || missing+=("${tool_pkg[$t]}")
done
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    # shellcheck disable=SC2046
    apt_install $(printf '%s\n' "${missing[@]}" | sort -u) ||
        echo "real-programs: could not install every missing tool; programs that need them will fail" >&2
fi
[ -x /usr/bin/time ] || die "/usr/bin/time is missing (Debian package 'time')"
command -v python3 > /dev/null || die "python3 is missing"
PY=$(python3 -c 'import sys; print(sys.executable)') || die "python3 does not run"

# CPython's own tests: Debian's python3 ships them in a separate package.
if ! "$PY" -c 'import test.test_json' 2> /dev/null; then
    case "$PY" in
        /usr/bin/python3*)
            v=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
            apt_install "libpython$v-testsuite" || true
            ;;
    esac
fi

# --- the library -----------------------------------------------------------

XALLOC_SO_GIVEN=${XALLOC_SO-}
so=${XALLOC_SO:-$root/target/release/libxalloc.so}
if [ ! -f "$so" ]; then
    die "$so is not built; run 'make build' first (or set XALLOC_SO)"
fi
so_real=$(readlink -f -- "$so")
export XALLOC_SO=$so_real

case " ${LD_PRELOAD-} " in
    *"$so_real"* | *libxalloc*)
        die "LD_PRELOAD already holds xalloc ($LD_PRELOAD): the runs without it would not be a baseline" ;;
esac

if [ "${XALLOC_SKIP_PROBE-}" = 1 ]; then
    echo "probe: skipped (XALLOC_SKIP_PROBE=1); library $so_real"
else
    probe='
import ctypes, sys
libc = ctypes.CDLL(None)
try:
    owns = libc.xa_owns
except AttributeError:
    sys.exit("xa_owns is not defined in the process: the library is not loaded")
owns.restype, owns.argtypes = ctypes.c_int, [ctypes.c_void_p]
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
for size in (1, 24, 1000, 70000, 5 << 20):
    p = libc.malloc(size)
    if not p or not owns(p):
        sys.exit("malloc(%d) did not return a block of the library (xa_owns is false)" % size)
    libc.free(p)
print("probe: malloc() in a preloaded process comes from", sys.argv[1])
'
    if ! "$xalloc_run" "$PY" -c "$probe" "$so_real"; then
        die "the probe failed: $so_real does not replace malloc under LD_PRELOAD"
    fi
    if ! "$PY" -c 'import ctypes, sys; sys.exit(hasattr(ctypes.CDLL(None), "xa_owns"))'; then
        die "xa_owns is defined without the library: the baseline runs would use it too"
    fi
fi

# --- running ---------------------------------------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/xalloc-real.XXXXXX") || die "mktemp failed"
export WORK PY
cleanup() {
    if [ "$keep" = 1 ] || [ "${failed:-0}" -gt 0 ]; then
        echo "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Deterministic, isolated environment for every run.
export LC_ALL=C.UTF-8 TZ=UTC SOURCE_DATE_EPOCH=1600000000
unset MAKEFLAGS MFLAGS PYTHONSTARTUP PYTHONPATH

# fmt_rss KB -> "12.3M"
fmt_rss() {
    case "$1" in
        '' | *[!0-9]*) echo "-" ;;
        *) awk -v k="$1" 'BEGIN { printf "%.1fM", k / 1024 }' ;;
    esac
}

# run_one NAME FN LIMIT MODE IN -> sets R_RC R_TIME R_RSS, leaves DIR/result
run_one() {
    local name=$1 fn=$2 limit=$3 mode=$4 in=$5
    local dir=$WORK/$name/$mode
    rm -rf "$dir"
    mkdir -p "$dir/run" "$dir/tmp"
    local -a pre=()
    local expect=
    if [ "$mode" = xalloc ]; then
        pre=("$xalloc_run")
        expect=$so_real
    fi
    (
        cd "$dir/run" &&
            IN=$in TMPDIR=$dir/tmp XALLOC_EXPECT_MAPPED=$expect \
                /usr/bin/time -f '@time %e %M' -o "$dir/time" \
                timeout -k 10 "$limit" "${pre[@]}" bash "$self" --body "$fn" \
                < /dev/null > "$dir/log" 2>&1
    )
    R_RC=$?
    R_TIME=$(awk '/^@time/ { print $2 }' "$dir/time" 2> /dev/null)
    R_RSS=$(awk '/^@time/ { print $3 }' "$dir/time" 2> /dev/null)
    [ -f "$dir/run/result" ] && mv "$dir/run/result" "$dir/result"
}

describe_rc() {
    local rc=$1 limit=$2
    case "$rc" in
        124 | 137) echo "timed out after ${limit}s" ;;
        90) echo "library not mapped" ;;
        *)
            if [ "$rc" -gt 128 ]; then
                echo "killed by signal $((rc - 128)) ($(kill -l $((rc - 128)) 2> /dev/null || echo '?'))"
            else
                echo "exit status $rc"
            fi
            ;;
    esac
}

passed=0
failed=0
skipped=0
rows=()
failures=()
t_start=$SECONDS
total=${#run_cases[@]}
i=0

for c in "${run_cases[@]}"; do
    i=$((i + 1))
    IFS=: read -r name fn limit <<< "$c"
    in=$WORK/$name/in
    mkdir -p "$in"
    printf '[%2d/%d] %-16s ' "$i" "$total" "$name"

    prep_rc=0
    (cd "$in" && "prep_$fn" "$in") > "$WORK/$name/prep.log" 2>&1 || prep_rc=$?
    if [ "$prep_rc" = 77 ]; then
        reason=$(cat "$in/skip" 2> /dev/null)
        echo "skip: $reason"
        rows+=("$name|skip|-|-|-|-|$reason")
        skipped=$((skipped + 1))
        continue
    elif [ "$prep_rc" != 0 ]; then
        echo "FAIL: preparing the input failed (see $WORK/$name/prep.log)"
        tail -5 "$WORK/$name/prep.log" | sed 's/^/    /'
        rows+=("$name|FAIL|-|-|-|-|input preparation failed")
        failures+=("$name")
        failed=$((failed + 1))
        continue
    fi

    run_one "$name" "$fn" "$limit" base "$in"
    b_rc=$R_RC b_time=$R_TIME b_rss=$R_RSS
    run_one "$name" "$fn" "$limit" xalloc "$in"
    x_rc=$R_RC x_time=$R_TIME x_rss=$R_RSS

    bdir=$WORK/$name/base
    xdir=$WORK/$name/xalloc
    note=
    if [ "$x_rc" != 0 ]; then
        note="with xalloc: $(describe_rc "$x_rc" "$limit")"
    fi
    if [ "$b_rc" != 0 ]; then
        note="${note:+$note; }without xalloc: $(describe_rc "$b_rc" "$limit")"
    fi
    if [ -z "$note" ]; then
        if [ ! -s "$bdir/result" ] || [ ! -s "$xdir/result" ]; then
            note="no result written"
        elif ! cmp -s "$bdir/result" "$xdir/result"; then
            note="results differ"
        fi
    fi

    if [ -z "$note" ]; then
        result=ok
        passed=$((passed + 1))
        # outputs can be large; keep only the logs and results
        [ "$keep" = 1 ] || rm -rf "$bdir/run" "$bdir/tmp" "$xdir/run" "$xdir/tmp"
        printf 'ok    %7ss %9s   xalloc %7ss %9s\n' "$b_time" "$(fmt_rss "$b_rss")" "$x_time" "$(fmt_rss "$x_rss")"
    else
        result=FAIL
        failed=$((failed + 1))
        failures+=("$name")
        echo "FAIL: $note"
        if [ "$x_rc" != 0 ]; then
            echo "    --- last lines of the run with xalloc ($xdir/log):"
            tail -15 "$xdir/log" | sed 's/^/    /'
        fi
        if [ "$b_rc" != 0 ]; then
            echo "    --- last lines of the run without xalloc ($bdir/log):"
            tail -15 "$bdir/log" | sed 's/^/    /'
        fi
        if [ "$note" = "results differ" ]; then
            echo "    --- diff of results (without xalloc vs with):"
            diff "$bdir/result" "$xdir/result" | head -20 | sed 's/^/    /'
        fi
        echo "    rerun just this one: ${XALLOC_SO_GIVEN:+XALLOC_SO=$XALLOC_SO_GIVEN }scripts/real-programs.sh --keep $name"
    fi
    rows+=("$name|$result|${b_time:--}s|$(fmt_rss "$b_rss")|${x_time:--}s|$(fmt_rss "$x_rss")|$note")
done

echo
printf '%-16s %-6s %21s %21s\n' "" "" "---- glibc malloc ---" "------ xalloc -------"
printf '%-16s %-6s %10s %10s %10s %10s  %s\n' program result "time" "peak RSS" "time" "peak RSS" "note"
for r in "${rows[@]}"; do
    IFS='|' read -r n res bt br xt xr note <<< "$r"
    printf '%-16s %-6s %10s %10s %10s %10s  %s\n' "$n" "$res" "$bt" "$br" "$xt" "$xr" "$note"
done
echo
echo "library: $so_real"
echo "elapsed: $((SECONDS - t_start))s"
if [ "$failed" -gt 0 ]; then
    echo "failed: ${failures[*]}"
fi
if [ "$skipped" -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
