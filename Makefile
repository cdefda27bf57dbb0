# mailstow - GNU make build.  Objects go to build/, lib/ becomes
# build/libmailstow.a, which the programs, unit tests and fuzz targets link.
#
#   make                 build build/mailstow and build/mailstowd
#   make check           install test deps if missing (as root), run all tests
#   make demo            archive a throwaway Dovecot mailbox and print the protocol
#   make check-valgrind  the core and hostile system tests under valgrind
#   make bench           speed and memory against mbsync and mpop
#   make fuzz            run every libFuzzer target for FUZZ_SECONDS each
#   make install         PREFIX=/usr/local DESTDIR=
#   WERROR=1 SANITIZE=1  warnings as errors; AddressSanitizer + UBSan

CC	?= cc
PREFIX	?= /usr/local
BUILD	?= build
PKGS	= openssl libevent libevent_openssl libevent_pthreads sqlite3 yaml-0.1 libsystemd libcurl jansson
PYTHON	?= /usr/bin/python3
FUZZ_SECONDS ?= 20

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS	?= -O2 -g
CFLAGS	+= -std=gnu11 -Wall -Wextra -Wshadow -Wpointer-arith -Wformat=2 \
	   -Wstrict-prototypes -Wmissing-prototypes -Wno-unused-parameter \
	   -fno-strict-aliasing -D_FORTIFY_SOURCE=2 -fstack-protector-strong \
	   -Ilib $(PKG_CFLAGS)
LDLIBS	+= $(PKG_LIBS) -lpthread
ifeq ($(WERROR),1)
CFLAGS	+= -Werror
endif
ifeq ($(SANITIZE),1)
CFLAGS	+= -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS	+= -fsanitize=address,undefined
BUILD	:= build-san
endif

LIB_SRC	:= $(sort $(wildcard lib/*/*.c))
LIB_OBJ	:= $(LIB_SRC:%.c=$(BUILD)/%.o)
LIB	:= $(BUILD)/libmailstow.a
PROGS	:= $(BUILD)/mailstow $(if $(wildcard daemon/mailstowd.c),$(BUILD)/mailstowd)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))

all: $(PROGS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

# daemon/mailstow*.c without the d is the CLI; mailstowd*.c the service.
CLI_SRC	:= $(filter-out daemon/mailstowd%,$(wildcard daemon/mailstow*.c))
D_SRC	:= $(wildcard daemon/mailstowd*.c)

$(BUILD)/mailstow: $(CLI_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/mailstowd: $(D_SRC:%.c=$(BUILD)/%.o) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

deps:
	@sh tests/deps.sh

unit: $(UNIT_BIN)

check: deps
	$(MAKE) all unit
	@BUILD=$(BUILD) PYTHON=$(PYTHON) sh tests/run-tests.sh

demo: deps all
	@BUILD=$(BUILD) $(PYTHON) tests/demo.py

# The core and hostile-server system tests with every mailstow process
# they start through conftest.run_mailstow under valgrind: any memory error
# or definite leak fails the test (exit status 99).  Runs whose peak RSS is
# measured (hostile.run_measured, most of test_hostile_parse.py) and
# mailstowd are not wrapped.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
	--errors-for-leak-kinds=definite --show-leak-kinds=definite
check-valgrind: deps all
	MAILSTOW_BUILD=$(CURDIR)/$(BUILD) MAILSTOW_WRAP="$(VALGRIND)" \
	    $(PYTHON) -m pytest -q -p no:cacheprovider tests/system/test_imap_archive.py \
	    tests/system/test_pop3.py tests/system/test_cli.py tests/system/test_batch.py \
	    tests/system/test_hostile_tls.py tests/system/test_hostile_sync.py \
	    tests/system/test_hostile_parse.py tests/system/test_hostile_names.py \
	    tests/system/test_secrets.py

# Speed and memory against mbsync and mpop; writes tests/bench/results.md.
bench: deps all
	$(PYTHON) tests/bench/bench.py $(BENCH_ARGS)

# Fuzz targets need clang's libFuzzer; each gets its own objects.
FUZZ_BUILD := build-fuzz
fuzz:
	@sh tests/fuzz/run.sh $(FUZZ_SECONDS)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man5 \
	    $(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)/etc/mailstow
	install -m 755 $(BUILD)/mailstow $(DESTDIR)$(PREFIX)/bin/mailstow
	install -m 755 $(BUILD)/mailstowd $(DESTDIR)$(PREFIX)/sbin/mailstowd
	install -m 644 daemon/mailstow.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -m 644 daemon/mailstow.yaml.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 daemon/mailstowd.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	test -e $(DESTDIR)/etc/mailstow/mailstow.yaml || \
	    install -m 640 conf/mailstow.yaml $(DESTDIR)/etc/mailstow/mailstow.yaml
	install -d $(DESTDIR)/lib/systemd/system $(DESTDIR)/usr/lib/sysusers.d \
	    $(DESTDIR)/usr/lib/tmpfiles.d
	sed 's|/usr/local|$(PREFIX)|g' systemd/mailstowd.service > \
	    $(DESTDIR)/lib/systemd/system/mailstowd.service
	install -m 644 systemd/mailstow.sysusers $(DESTDIR)/usr/lib/sysusers.d/mailstow.conf
	install -m 644 systemd/mailstow.tmpfiles $(DESTDIR)/usr/lib/tmpfiles.d/mailstow.conf

clean:
	rm -rf build build-san build-fuzz

format:
	clang-format -i $(LIB_SRC) $(wildcard lib/*/*.h daemon/*.c tests/unit/*.c tests/fuzz/*.c)

.PHONY: all deps unit check check-valgrind demo bench fuzz install clean format
.PRECIOUS: $(BUILD)/tests/unit/%.o

-include $(LIB_OBJ:.o=.d) $(CLI_SRC:%.c=$(BUILD)/%.d) $(D_SRC:%.c=$(BUILD)/%.d)
