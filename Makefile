# xalloc: build, demo and test entry points. The work is done by cargo and by
# the scripts in scripts/; see README.md.
#
#   make run     build, then real programs under the allocator (< 1 min)
#   make test    every check: fmt, clippy, build, cargo test, real programs
#   make build   cargo build --release -> target/release/libxalloc.so
#   make build-prof  cargo build --release -p xalloc-prof -> target/release/xalloc-prof
#                (the heap profile and heap map reader)
#   make header  regenerate include/xalloc.h (cbindgen, from src/ffi.rs)
#   make install     build, then install under $(PREFIX) (default /usr/local;
#                    DESTDIR= stages it elsewhere): the stripped library with its
#                    SONAME link and its debug info, xalloc.h, xalloc.pc,
#                    xalloc-run, xalloc-prof, man pages xalloc(3) and
#                    xalloc-run(1)
#   make uninstall   remove what `make install` installed
#   make bench   benchmarks vs glibc, jemalloc, tcmalloc, mimalloc (~10 min here)
#   make bench-quick   the same, smaller (a few minutes)
#   make deps    install missing tools for `make test` (apt packages, Rust via
#                rustup); `make run` and `make bench` install only their own
#   make clean   remove build outputs

SHELL := /bin/bash
.DEFAULT_GOAL := build

# rustup installs cargo here; make it visible even when the login shell
# has not picked it up yet (fresh machine, CI).
CARGO_BIN := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin
export PATH := $(CARGO_BIN):$(PATH)

CARGO ?= cargo
LIB ?= target/release/libxalloc.so
PROF ?= target/release/xalloc-prof
HEADER := include/xalloc.h

# The version comes from Cargo.toml, as the library's SONAME does (build.rs).
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(firstword $(subst ., ,$(VERSION)))
SONAME := libxalloc.so.$(MAJOR)
REALNAME := libxalloc.so.$(VERSION)

PREFIX ?= /usr/local
DESTDIR ?=
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
OBJCOPY ?= objcopy

.PHONY: build build-prof header run test deps deps-run deps-bench clean real-programs bench \
	bench-quick install install-files uninstall

build:
	$(CARGO) build --release
	@ls -l $(LIB)

# A build of its own: the library's build (and `make run`, `make bench`) need not wait for the
# tool's dependencies.
build-prof:
	$(CARGO) build --release -p xalloc-prof
	@ls -l $(PROF)

# build.rs writes the cbindgen header to $XALLOC_HEADER_OUT when it is set.
header:
	@mkdir -p $(dir $(HEADER))
	XALLOC_HEADER_OUT=$(CURDIR)/$(HEADER) $(CARGO) build --release
	@test -s $(HEADER) || { echo "make header: $(HEADER) was not written by build.rs" >&2; exit 1; }
	@echo "wrote $(HEADER)"

run: deps-run build
	scripts/demo.sh

test: deps
	scripts/test-all.sh

install: build build-prof
	@$(MAKE) --no-print-directory install-files

# What `install` does after building; it installs $(LIB) as it is (the packaging
# test runs this on the library it tests). The library is stripped, with its
# debug info in .debug/ beside it, found through its .gnu_debuglink. $(PROF) is
# installed (stripped) when it was built, with a note on stderr when it was not.
install-files:
	@test -f $(LIB) || { echo "make install: $(LIB) is not built (make build)" >&2; exit 1; }
	install -d $(DESTDIR)$(LIBDIR)/.debug $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR) \
		$(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man3
	$(OBJCOPY) --only-keep-debug $(LIB) $(DESTDIR)$(LIBDIR)/.debug/$(REALNAME).debug
	chmod 644 $(DESTDIR)$(LIBDIR)/.debug/$(REALNAME).debug
	$(OBJCOPY) --strip-unneeded --remove-section=.comment \
		--add-gnu-debuglink=$(DESTDIR)$(LIBDIR)/.debug/$(REALNAME).debug \
		$(LIB) $(DESTDIR)$(LIBDIR)/$(REALNAME)
	chmod 755 $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sfn $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sfn $(SONAME) $(DESTDIR)$(LIBDIR)/libxalloc.so
	install -m 644 $(HEADER) $(DESTDIR)$(INCLUDEDIR)/xalloc.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		xalloc.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/xalloc.pc
	sed -e 's|@XALLOC_VERSION@|$(VERSION)|' -e 's|@XALLOC_LIBRARY@|$(LIBDIR)/$(SONAME)|' \
		scripts/xalloc-run > $(DESTDIR)$(BINDIR)/xalloc-run
	chmod 755 $(DESTDIR)$(BINDIR)/xalloc-run
	$(if $(wildcard $(PROF)),install -s -m 755 $(PROF) $(DESTDIR)$(BINDIR)/xalloc-prof,\
		@echo "make install: $(PROF) is not built (make build-prof); xalloc-prof not installed" >&2)
	sed -e 's|@XALLOC_VERSION@|$(VERSION)|g' man/xalloc.3 > $(DESTDIR)$(MANDIR)/man3/xalloc.3
	sed -e 's|@XALLOC_VERSION@|$(VERSION)|g' man/xalloc-run.1 > $(DESTDIR)$(MANDIR)/man1/xalloc-run.1
	sed -e 's|@XALLOC_VERSION@|$(VERSION)|g' man/xalloc-prof.1 > $(DESTDIR)$(MANDIR)/man1/xalloc-prof.1
	@if [ -z "$(DESTDIR)" ] && [ -w /etc/ld.so.cache ] && command -v ldconfig > /dev/null; then \
		ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libxalloc.so $(DESTDIR)$(LIBDIR)/$(SONAME) \
		$(DESTDIR)$(LIBDIR)/$(REALNAME) $(DESTDIR)$(LIBDIR)/.debug/$(REALNAME).debug \
		$(DESTDIR)$(INCLUDEDIR)/xalloc.h $(DESTDIR)$(PKGCONFIGDIR)/xalloc.pc \
		$(DESTDIR)$(BINDIR)/xalloc-run $(DESTDIR)$(BINDIR)/xalloc-prof \
		$(DESTDIR)$(MANDIR)/man3/xalloc.3 \
		$(DESTDIR)$(MANDIR)/man1/xalloc-run.1 $(DESTDIR)$(MANDIR)/man1/xalloc-prof.1
	-rmdir $(DESTDIR)$(LIBDIR)/.debug 2> /dev/null
	@if [ -z "$(DESTDIR)" ] && [ -w /etc/ld.so.cache ] && command -v ldconfig > /dev/null; then \
		ldconfig; fi

# only the with/without comparison of real programs (needs a built library)
real-programs: build
	scripts/real-programs.sh

# scripts/bench/bench.py installs the peer allocators it lacks (Debian packages);
# results go to scripts/bench/results/ (quick mode: scripts/bench/results/quick/).
bench: deps-bench build
	python3 scripts/bench/bench.py $(BENCH_ARGS)

bench-quick: deps-bench build
	python3 scripts/bench/bench.py --quick $(BENCH_ARGS)

deps:
	@scripts/deps.sh test

deps-run:
	@scripts/deps.sh run

deps-bench:
	@scripts/deps.sh bench

clean:
	$(CARGO) clean
