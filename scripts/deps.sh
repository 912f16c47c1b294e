#!/usr/bin/env bash
# Install what building and testing xalloc needs, only where it is missing:
# Debian packages (through apt-get, as root or with passwordless sudo) and a
# Rust toolchain with rustfmt and clippy (through rustup).
#
# Safe to run again: it does nothing when everything is there.
set -euo pipefail

say() { echo "deps: $*"; }

sudo=
if [ "$(id -u)" != 0 ]; then
    if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then
        sudo="sudo -n"
    fi
fi

# command -> Debian package
declare -A want=(
    [cc]=gcc [gcc]=gcc [g++]=g++ [make]=make [git]=git [perl]=perl
    [python3]=python3 [xz]=xz-utils [sqlite3]=sqlite3 [curl]=curl
    [tar]=tar [gzip]=gzip [awk]=mawk [diff]=diffutils [timeout]=coreutils
    [pkg-config]=pkg-config [valgrind]=valgrind [callgrind_annotate]=valgrind
)
missing=()
for cmd in "${!want[@]}"; do
    command -v "$cmd" > /dev/null || missing+=("${want[$cmd]}")
done
[ -x /usr/bin/time ] || missing+=(time)
# the C runtime headers and libstdc++ headers the C tests and g++ need
[ -e /usr/include/stdio.h ] || missing+=(libc6-dev)
[ -e /etc/ssl/certs/ca-certificates.crt ] || missing+=(ca-certificates)

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

# Rust: rustup's stable toolchain when there is no cargo at all.
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
if ! command -v cargo > /dev/null; then
    say "installing Rust (rustup, stable, with rustfmt and clippy)"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y --no-modify-path --profile minimal --default-toolchain stable -c rustfmt -c clippy
fi
if command -v rustup > /dev/null; then
    comps=()
    cargo fmt --version > /dev/null 2>&1 || comps+=(rustfmt)
    cargo clippy --version > /dev/null 2>&1 || comps+=(clippy)
    if [ ${#comps[@]} -gt 0 ]; then
        say "adding Rust components ${comps[*]}"
        rustup component add "${comps[@]}"
    fi
fi
for tool in "cargo --version" "cargo fmt --version" "cargo clippy --version"; do
    if ! $tool > /dev/null 2>&1; then
        say "'$tool' does not work after installing" >&2
        exit 1
    fi
done
say "ok ($(cargo --version), $(gcc --version | head -1))"
