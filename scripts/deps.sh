#!/usr/bin/env bash
# Install what a make target needs, only where it is missing: Debian packages
# (through apt-get, as root or with passwordless sudo) and a Rust toolchain
# (through rustup, with rustfmt and clippy for `test`).
#
#   scripts/deps.sh run     what `make run` needs: gcc, make, python3, awk,
#                           cmp/diff, /usr/bin/time, and cargo
#   scripts/deps.sh test    what `make test` needs (the default): the above,
#                           g++, git, perl, sqlite3, xz, tar, gzip, pkg-config,
#                           man and nroff, objcopy and readelf, go (its pprof reads
#                           the heap profiler's output in a test), rustfmt, clippy
#   scripts/deps.sh bench   what `make bench` needs: the `run` set and valgrind
#                           (scripts/bench/bench.py installs the peer allocators)
#
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

say() { echo "deps: $*"; }

profile=${1:-test}
case "$profile" in
    run | test | bench) ;;
    *)
        echo "usage: scripts/deps.sh [run|test|bench]" >&2
        exit 2
        ;;
esac

sudo=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
        sudo="sudo -n"
    fi
fi

# command -> Debian package, per profile
declare -A want=(
    [cc]=gcc [gcc]=gcc [make]=make [python3]=python3 [awk]=mawk [cmp]=diffutils
    [diff]=diffutils
)
case "$profile" in
    test)
        want+=(
            [g++]=g++ [git]=git [perl]=perl [xz]=xz-utils [sqlite3]=sqlite3 [tar]=tar
            [gzip]=gzip [timeout]=coreutils [pkg-config]=pkg-config [man]=man-db
            [nroff]=groff-base [objcopy]=binutils [readelf]=binutils [go]=golang-go
        )
        ;;
    bench)
        want+=([valgrind]=valgrind [callgrind_annotate]=valgrind [g++]=g++)
        ;;
esac
missing=()
for cmd in "${!want[@]}"; do
    command -v "$cmd" > /dev/null || missing+=("${want[$cmd]}")
done
[ -x /usr/bin/time ] || missing+=(time)
# the C runtime headers the C tests and the demo compile against
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
# Rust comes from rustup over https when there is no cargo at all
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo > /dev/null; then
    command -v curl > /dev/null || missing+=(curl)
    [ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)
fi

if [ ${#missing[@]} -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    if [ "$(id -u)" != 0 ] && [ -z "$sudo" ]; then
        say "missing packages: ${missing[*]}; run this as root (or install them) and try again" >&2
        exit 1
    fi
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi

if ! command -v cargo > /dev/null; then
    comps=()
    [ "$profile" = test ] && comps=(-c rustfmt -c clippy)
    say "installing Rust (rustup, stable${comps:+, with rustfmt and clippy})"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable "${comps[@]}"
fi
tools=("cargo --version")
if [ "$profile" = test ]; then
    if command -v rustup > /dev/null; then
        comps=()
        cargo fmt --version > /dev/null 2>&1 || comps+=(rustfmt)
        cargo clippy --version > /dev/null 2>&1 || comps+=(clippy)
        if [ ${#comps[@]} -gt 0 ]; then
            say "adding Rust components ${comps[*]}"
            rustup component add "${comps[@]}"
        fi
    fi
    tools+=("cargo fmt --version" "cargo clippy --version")
fi
for tool in "${tools[@]}"; do
    if ! $tool > /dev/null 2>&1; then
        say "'$tool' does not work after installing" >&2
        exit 1
    fi
done
say "ok for '$profile' ($(cargo --version), $(gcc --version | head -1))"
