# xalloc: build, demo and test entry points. The work is done by cargo and by
# the scripts in scripts/; see README.md.
#
#   make run     build, then real programs under the allocator (< 1 min)
#   make test    every check: fmt, clippy, build, cargo test, real programs
#   make build   cargo build --release -> target/release/libxalloc.so
#   make header  regenerate include/xalloc.h (cbindgen, from src/ffi.rs)
#   make bench   benchmarks vs glibc, jemalloc, tcmalloc, mimalloc (~10 min here)
#   make bench-quick   the same, smaller (a few minutes)
#   make deps    install missing tools (apt packages, Rust via rustup)
#   make clean   remove build outputs

SHELL := /bin/bash
.DEFAULT_GOAL := build

# rustup installs cargo here; make it visible even when the login shell
# has not picked it up yet (fresh machine, CI).
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CARGO_BIN):$(PATH)

CARGO ?= cargo
LIB := target/release/libxalloc.so
HEADER := include/xalloc.h

.PHONY: build header run test deps clean real-programs bench bench-quick

build:
	$(CARGO) build --release
	@ls -l $(LIB)

# build.rs writes the cbindgen header to $XALLOC_HEADER_OUT when it is set.
header:
	@mkdir -p $(dir $(HEADER))
	XALLOC_HEADER_OUT=$(CURDIR)/$(HEADER) $(CARGO) build --release
	@test -s $(HEADER) || { echo "make header: $(HEADER) was not written by build.rs" >&2; exit 1; }
	@echo "wrote $(HEADER)"

run: deps build
	scripts/demo.sh

test: deps
	scripts/test-all.sh

# only the with/without comparison of real programs (needs a built library)
real-programs: build
	scripts/real-programs.sh

# scripts/bench/bench.py installs the peer allocators it lacks (Debian packages);
# results go to scripts/bench/results/ (quick mode: scripts/bench/results/quick/).
bench: deps build
	python3 scripts/bench/bench.py $(BENCH_ARGS)

bench-quick: deps build
	python3 scripts/bench/bench.py --quick $(BENCH_ARGS)

deps:
	@scripts/deps.sh

clean:
	$(CARGO) clean
