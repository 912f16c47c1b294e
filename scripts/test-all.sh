#!/usr/bin/env bash
# `make test`: every check, in order, each one's output shown as it runs:
#
#   fmt            cargo fmt --all -- --check
#   clippy         cargo clippy --workspace --all-targets --release -- -D warnings
#   build          cargo build --release
#   cargo test     cargo test --release --workspace --no-fail-fast (unit tests,
#                  the C tests, and the testkit crate's unit and property tests)
#   real programs  scripts/real-programs.sh
#
# A failing step does not stop the later ones, except that nothing runs on a
# library that failed to build. At the end a table of the steps and the line
# "N passed, M failed": the count of tests that ran (each of fmt, clippy and
# build counts as one; cargo test counts every test of every test binary of
# the workspace). The exit status is 1 when anything failed.
set -uo pipefail

cd "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/.." || exit 2
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/xalloc-test.XXXXXX")
trap 'rm -rf "$log_dir"' EXIT

total_pass=0
total_fail=0
rows=()

# step NAME COUNTER CMD...: run CMD with its output shown and saved; COUNTER
# is "one" (the step is one test) or the name of a function that reads the
# saved output and prints "PASSED FAILED".
step() {
    local name=$1 counter=$2
    shift 2
    local log=$log_dir/${name// /-}.log
    echo
    echo "==> $name: $*"
    local start=$SECONDS rc=0
    "$@" 2>&1 | tee "$log" || rc=$?
    local secs=$((SECONDS - start))
    local p f
    if [ "$counter" = one ]; then
        if [ "$rc" = 0 ]; then p=1 f=0; else p=0 f=1; fi
    else
        read -r p f < <("$counter" "$log")
        # a failing command that reported no failing test (it did not
        # compile, or crashed) still counts as a failure
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    fi
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
    local res=ok
    [ "$rc" = 0 ] || res=FAIL
    rows+=("$name|$res|${secs}s|$p passed, $f failed")
    return "$rc"
}

skip() {
    echo
    echo "==> $1: skipped ($2)"
    rows+=("$1|FAIL|-|not run: $2")
    total_fail=$((total_fail + 1))
}

# "test result: ok. 12 passed; 0 failed; ..." lines of libtest and
# libtest-mimic, summed over all test binaries
count_cargo_test() {
    awk '/^test result:/ {
            for (i = 1; i <= NF; i++) {
                if ($(i) ~ /^passed/) p += $(i - 1)
                if ($(i) ~ /^failed/) f += $(i - 1)
            }
         }
         END { print p + 0, f + 0 }' "$1"
}

# the closing "N passed, M failed[, K skipped]" of real-programs.sh
count_real_programs() {
    awk '/^[0-9]+ passed, [0-9]+ failed/ { p = $1; f = $3 + 0 } END { print p + 0, f + 0 }' "$1"
}

step fmt one cargo fmt --all -- --check
step clippy one cargo clippy --workspace --all-targets --release -- -D warnings
if step build one cargo build --release; then
    # --no-fail-fast: a failing test binary does not keep the later ones from
    # running and being counted
    step "cargo test" count_cargo_test cargo test --release --workspace --no-fail-fast
    step "real programs" count_real_programs scripts/real-programs.sh
else
    skip "cargo test" "the build failed"
    skip "real programs" "the build failed"
fi

echo
echo "== make test summary"
printf '%-14s %-6s %7s  %s\n' step result time tests
for r in "${rows[@]}"; do
    IFS='|' read -r n res t c <<< "$r"
    printf '%-14s %-6s %7s  %s\n' "$n" "$res" "$t" "$c"
done
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
