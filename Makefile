# SPDX-License-Identifier: GPL-2.0-only
# Build, test and install btrfs send/receive.

prefix ?= /usr/local
bindir ?= $(prefix)/bin
mandir ?= $(prefix)/share/man
completiondir ?= $(prefix)/share/bash-completion/completions
DESTDIR ?=

CC ?= cc
PKG_CONFIG ?= pkg-config
PKGS := uuid libbtrfsutil zlib libzstd lzo2

CFLAGS ?= -O2 -g
# Where btrfs-progs' binary is, for the commands handed on to it.
BTRFS_PROGS_PATH ?= /usr/bin/btrfs
WARNINGS := -Wall -Wextra
ifneq ($(CI),)
WARNINGS += -Werror
endif
PKG_CFLAGS = $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(PKG_CFLAGS) \
	     -DBTRFS_PROGS_PATH='"$(BTRFS_PROGS_PATH)"' $(CFLAGS) $(EXTRA_CFLAGS)
LIBS = $(PKG_LIBS) -lpthread

CMOCKA_CFLAGS = $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS = $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null)

# Objects shared by the binary and the unit tests.
LIB_OBJS := crc32c.o send-stream.o progress.o progress-json.o progress-tty.o \
	    receive-dump.o receive-dump-json.o json-string.o utils.o \
	    subvol-lookup.o confined-path.o paths.o decompress.o dir-times.o \
	    receive-apply.o receive-btrfs.o receive-dir.o receive-resume.o copy-tree.o \
	    resume.o send-pump.o send-frame.o send-prefetch.o mounts.o \
	    changes.o changes-print.o changes-snap.o
OBJS := btrfs.o cmds-receive.o cmds-send.o send-estimate.o \
	$(LIB_OBJS)
UNIT_TESTS := tests/unit-crc32c tests/unit-send-stream \
	      tests/unit-dir-times tests/unit-confined-path tests/unit-utils \
	      tests/unit-send-pump tests/unit-send-frame \
	      tests/unit-resume tests/unit-decompress tests/unit-dump-escape \
	      tests/unit-changes \
	      tests/unit-receive-resume
MANPAGES := Documentation/btrfs.8 Documentation/btrfs-receive.8 Documentation/btrfs-send.8

# Debian packages for building and testing; btrfs-progs is the test oracle.
DEB_PACKAGES := build-essential pkg-config uuid-dev libbtrfsutil-dev \
		zlib1g-dev libzstd-dev liblzo2-dev libcmocka-dev \
		btrfs-progs btrbk python3 util-linux kmod tzdata time clang \
		libclang-rt-dev xfsprogs e2fsprogs openssh-client \
		openssh-server python3-matplotlib

SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=all
ASAN_LIB_OBJS := $(LIB_OBJS:.o=.asan.o)
ASAN_OBJS := $(OBJS:.o=.asan.o)
ASAN_UNIT_TESTS := $(addsuffix -asan,$(UNIT_TESTS))

# libFuzzer harnesses, built with clang from the sources directly.
FUZZ_CC ?= clang
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer -g -O1
FUZZ_SECONDS ?= 60
# Integration tests run at once (tests/run-integration.sh).
TEST_JOBS ?= 3
LIB_SRCS = $(LIB_OBJS:.o=.c)
FUZZERS := tests/fuzz-dump tests/fuzz-receive

.PHONY: all demo deps check lint hdrcheck fuzz unit-check integration-check install \
	uninstall clean asan asan-check asan-unit-check bench bench-scale mutate

all: btrfs

btrfs: $(OBJS)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $^ $(LIBS)

%.o: %.c $(wildcard *.h)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

tests/unit-%: tests/unit-%.c $(LIB_OBJS) $(wildcard *.h tests/*.h)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -I. -o $@ $< $(LIB_OBJS) \
		$(LIBS) $(CMOCKA_LIBS)

deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
		grep -q '^install ok installed$$' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "Installing:" $$missing; \
		apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing >/dev/null; \
	fi

# Every test once: the unit tests of both builds, then the integration
# tests in one pool, those of the sanitizer lists (below) only under
# ASan+UBSan.
check: lint hdrcheck unit-check asan-unit-check btrfs btrfs-asan
	@echo "== integration tests, $(TEST_JOBS) at a time"
	@TEST_JOBS=$(TEST_JOBS) tests/run-integration.sh $(CHECK_TESTS) \
		$(ASAN_RUNS)

# An assertion of the integration tests must hold its whole condition.
lint:
	python3 tests/lint-checks.py --self-test
	python3 tests/lint-checks.py

# Every header compiles on its own: it includes what it uses.
hdrcheck:
	@for h in *.h; do \
		echo "#include \"$$h\"" | $(CC) $(ALL_CFLAGS) -Werror -I. \
			-x c -fsyntax-only - || { echo "$$h: not self-contained"; exit 1; }; \
	done

demo: btrfs
	./demo.sh

bench: btrfs
	bench/run-bench.sh

bench-scale: btrfs
	bench/run-scale.sh

unit-check: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "== $$t"; ./$$t || exit 1; done

# Every integration test with the normal build.
integration-check: btrfs
	TEST_JOBS=$(TEST_JOBS) tests/run-integration.sh

# Sanitizer builds live beside the normal ones: btrfs-asan, tests/*-asan.
asan: btrfs-asan $(ASAN_UNIT_TESTS)

btrfs-asan: $(ASAN_OBJS)
	$(CC) $(ALL_CFLAGS) $(SANITIZE) $(LDFLAGS) -o $@ $^ $(LIBS)

%.asan.o: %.c $(wildcard *.h)
	$(CC) $(ALL_CFLAGS) $(SANITIZE) -c -o $@ $<

tests/unit-%-asan: tests/unit-%.c $(ASAN_LIB_OBJS) $(wildcard *.h tests/*.h)
	$(CC) $(ALL_CFLAGS) $(SANITIZE) $(CMOCKA_CFLAGS) -I. -o $@ $< \
		$(ASAN_LIB_OBJS) $(LIBS) $(CMOCKA_LIBS)

# Unit and integration tests under ASan+UBSan; a sanitizer report exits
# 86/87, which no test mistakes for an error exit.  LeakSanitizer cannot
# work after chroot (receive -C), so the receive tests run without it;
# the other tests check for leaks.
SANITIZER_ENV := ASAN_OPTIONS=exitcode=86:detect_leaks=1 \
		 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:exitcode=87
SANITIZER_ENV_NO_LEAKS := $(subst detect_leaks=1,detect_leaks=0,$(SANITIZER_ENV))

# The integration tests that also run under the sanitizers.
ASAN_LEAK_TESTS := tests/test-dump-corpus.sh tests/test-dump-crafted.sh \
		   tests/test-dump-corrupt.sh tests/test-cli.sh \
		   tests/test-send.sh tests/test-stopped-send.sh \
		   tests/test-send-prefetch.sh
ASAN_NO_LEAK_TESTS := tests/test-receive.sh tests/test-progress.sh \
		      tests/test-progress-json.sh tests/test-receive-errors.sh \
		      tests/test-to-dir.sh tests/test-parents.sh \
		      tests/test-restarted-stream.sh
# Each of them as one argument of run-integration.sh, its environment
# first; the corruption test runs fewer variants, the paths they reach.
ASAN_RUNS := $(foreach t,$(ASAN_LEAK_TESTS),"$(SANITIZER_ENV) \
		BTRFS_BIN=$(CURDIR)/btrfs-asan CORRUPT_VARIANTS=30 $(t)") \
	     $(foreach t,$(ASAN_NO_LEAK_TESTS),"$(SANITIZER_ENV_NO_LEAKS) \
		BTRFS_BIN=$(CURDIR)/btrfs-asan $(t)")
# make check runs each slow scenario once: the sanitizer build's tests,
# but for the quick parser ones, not again with the normal build.
ASAN_ONLY_TESTS := $(filter-out tests/test-dump-% tests/test-cli.sh, \
		     $(ASAN_LEAK_TESTS) $(ASAN_NO_LEAK_TESTS))
CHECK_TESTS := $(filter-out $(ASAN_ONLY_TESTS),$(wildcard tests/test-*.sh))

asan-unit-check: $(ASAN_UNIT_TESTS)
	@for t in $(ASAN_UNIT_TESTS); do echo "== $$t"; \
		$(SANITIZER_ENV) ./$$t || exit 1; done

asan-check: asan-unit-check btrfs-asan
	@echo "== integration tests under the sanitizers, $(TEST_JOBS) at a time"
	@TEST_JOBS=$(TEST_JOBS) tests/run-integration.sh $(ASAN_RUNS)

# Mutation testing of the guarding code (tests/MUTATION.md); not in CI.
# MUTATE_FILES=send-frame.c picks files; MUTATE_ARGS passes options.
MUTATE_FILES ?=
mutate:
	tests/mutate.py $(addprefix --file ,$(MUTATE_FILES)) $(MUTATE_ARGS)

tests/fuzz-%: tests/fuzz-%.c $(LIB_SRCS) $(wildcard *.h)
	$(FUZZ_CC) -std=gnu11 -D_GNU_SOURCE $(WARNINGS) $(PKG_CFLAGS) -I. \
		$(FUZZ_FLAGS) -o $@ $< $(LIB_SRCS) $(LIBS)

fuzz: $(FUZZERS)
	FUZZ_SECONDS=$(FUZZ_SECONDS) tests/run-fuzz.sh

install: btrfs
	install -d $(DESTDIR)$(bindir) $(DESTDIR)$(mandir)/man8
	install -m 0755 btrfs $(DESTDIR)$(bindir)/btrfs
	install -m 0644 $(MANPAGES) $(DESTDIR)$(mandir)/man8/
	install -d $(DESTDIR)$(completiondir)
	install -m 0644 btrfs-completion.bash $(DESTDIR)$(completiondir)/btrfs

uninstall:
	rm -f $(DESTDIR)$(bindir)/btrfs
	rm -f $(addprefix $(DESTDIR)$(mandir)/man8/,$(notdir $(MANPAGES)))
	rm -f $(DESTDIR)$(completiondir)/btrfs

clean:
	rm -f btrfs btrfs-asan *.o $(UNIT_TESTS) $(ASAN_UNIT_TESTS) $(FUZZERS)
