# tend: C engine + embedded Lua. `make`, `make test`, `make check-asan`, `make bench`,
# `make demo`, `make fuzz`, `make install PREFIX=/usr/local`, `make deb` (the Debian package).
PREFIX  ?= /usr/local
PKGS    := lua5.4 libssh2 libcurl libarchive sqlite3 libsodium libcrypto libzstd libedit libmicrohttpd
RELEASE := 0.4
# the release, and the commit it was built from (tend --version; the REPL shows the release)
VERSION := $(RELEASE)
BUILD   := $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
CC      ?= cc
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -pthread -Wall -Wextra -Werror -Iengine -Ibuild \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -pthread
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

PRIMS   := util catalog vault fs proc ssh ssh_exec ssh_runner ssh_channel ssh_shell httpd hash hash_tree store store_put store_read store_gc store_pack store_crypt store_record archive mail http s3 lineedit rewrite rowdiff listing core
OBJS    := $(PRIMS:%=build/%.o) build/embedded.o
PIC     := $(PRIMS:%=build/pic/%.o) build/pic/embedded.o
ASAN    := $(PRIMS:%=build/asan/%.o) build/asan/embedded.o
LUAFILES := $(shell find lua -name '*.lua' | sort) $(sort $(wildcard recipes/*.lua))
CTESTS  := $(patsubst tests/c/%.c,build/asan/tests/%,$(wildcard tests/c/test_*.c))

all: build/tend build/lua/tend/core.so

# Rewritten only when `git describe` changes, so only core.o follows the version.
build/version.h: FORCE | build
	@printf '#define TEND_VERSION "%s"\n#define TEND_BUILD "%s"\n' '$(VERSION)' '$(BUILD)' > $@.tmp
	@cmp -s $@.tmp $@ && rm $@.tmp || mv $@.tmp $@
build/core.o build/pic/core.o build/asan/core.o: build/version.h

build/embedded.c: $(LUAFILES) tools/embed.lua | build
	@echo "  EMBED   $@"
	@lua5.4 tools/embed.lua $(LUAFILES) > $@.tmp && mv $@.tmp $@

build/%.o: engine/%.c engine/tend.h engine/ssh.h engine/store.h | build
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -c -o $@ $<
build/embedded.o: build/embedded.c engine/embedded.h
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -c -o $@ $<
build/tend: build/main.o $(OBJS)
	@echo "  LD      $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/pic/%.o: engine/%.c engine/tend.h engine/ssh.h engine/store.h | build
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -fPIC -c -o $@ $<
build/pic/embedded.o: build/embedded.c engine/embedded.h
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) -fPIC -c -o $@ $<
build/lua/tend/core.so: $(PIC)
	@echo "  LD      $@"
	@$(CC) -shared $(LDFLAGS) -o $@ $^ $(filter-out -llua5.4,$(LDLIBS))

build/asan/%.o: engine/%.c engine/tend.h engine/ssh.h engine/store.h | build
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) $(SAN) -c -o $@ $<
build/asan/embedded.o: build/embedded.c engine/embedded.h
	@echo "  CC      $@"
	@$(CC) $(CFLAGS) $(SAN) -c -o $@ $<
build/asan/tests/%: tests/c/%.c tests/c/ctest.h tests/c/ctest_server.h $(ASAN)
	@echo "  CCLD    $@"
	@$(CC) $(CFLAGS) $(SAN) -Itests/c -o $@ $< $(ASAN) $(LDLIBS) -lcmocka

build:
	@mkdir -p build/pic build/asan/tests build/lua/tend

# The C tests under AddressSanitizer + UndefinedBehaviorSanitizer, as TAP.
check-asan: $(CTESTS)
	prove -e '' $(CTESTS)

test: all $(CTESTS)
	tests/run

bench: all
	tests/bench/run

demo: all
	tools/demo

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/tend/recipes \
	  $(DESTDIR)$(PREFIX)/lib/lua/5.4/tend $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 755 build/tend $(DESTDIR)$(PREFIX)/bin/tend
	install -m 644 recipes/*.lua $(DESTDIR)$(PREFIX)/share/tend/recipes/
	install -m 644 build/lua/tend/core.so $(DESTDIR)$(PREFIX)/lib/lua/5.4/tend/core.so
	cd lua && find tend -name '*.lua' -exec install -D -m 644 {} $(DESTDIR)$(PREFIX)/share/lua/5.4/{} \;
	install -m 644 docs/tend.1 $(DESTDIR)$(PREFIX)/share/man/man1/tend.1
	install -m 644 tools/tend.bash-completion $(DESTDIR)$(PREFIX)/share/bash-completion/completions/tend
	install -m 755 tools/demo $(DESTDIR)$(PREFIX)/share/tend/demo

# libFuzzer targets (clang), each run FUZZ_SECONDS on its corpus in tests/fuzz/corpus/;
# crashes found are kept there as regression inputs once fixed.
FUZZ_TARGETS := rewrite rowdiff tar import
FUZZ_SECONDS ?= 60
FUZZCC  := clang
FUZZFLAGS := -O1 -g -std=c11 -D_GNU_SOURCE -pthread -Iengine -Ibuild $(shell pkg-config --cflags $(PKGS)) \
             -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer
FUZZOBJS := $(PRIMS:%=build/fuzz/%.o) build/fuzz/embedded.o
build/fuzz/%.o: engine/%.c engine/tend.h engine/ssh.h engine/store.h | build
	@mkdir -p build/fuzz
	@echo "  FUZZCC  $@"
	@$(FUZZCC) $(FUZZFLAGS) -c -o $@ $<
build/fuzz/embedded.o: build/embedded.c engine/embedded.h
	@mkdir -p build/fuzz
	@$(FUZZCC) $(FUZZFLAGS) -c -o $@ $<
build/fuzz/fuzz-%: tests/fuzz/fuzz_lua.c $(FUZZOBJS)
	@echo "  FUZZLD  $@"
	@$(FUZZCC) $(FUZZFLAGS) -fsanitize=fuzzer -DFUZZ_TARGET='"$*"' -o $@ $< $(FUZZOBJS) $(LDLIBS)
fuzz: $(FUZZ_TARGETS:%=build/fuzz/fuzz-%)
	tests/fuzz/run $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# The Debian package (debian/), built from this tree: ../tend_VERSION_ARCH.deb
deb:
	dpkg-buildpackage -us -uc -b

clean:
	rm -rf build

.PHONY: all test check-asan bench demo fuzz install deb clean FORCE
.SECONDARY:
