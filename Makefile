# moongate — see README.md. `make run` and `make test` are the two commands.
CC      ?= cc
BUILD   ?= build
LLHTTP  ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
OPT     ?= -O2
# Link-time optimization of the gateway binary: the layers talk through small functions
# in other files (the response writer, the HTTP client, the stream ops), which only LTO can
# inline; it keeps the layered runtime as cheap per request as the flat one was (README
# "Layout"). Objects are fat (LTO bytecode and machine code), so the unit tests and tools
# link them without LTO. `make LTO=` builds without it.
LTO     ?= -flto=auto -ffat-lto-objects
SAN     ?=
PKGS    := luajit libuv libssl libcrypto modsecurity libpcre2-8 hiredis
DEBS    := gcc make pkg-config libluajit2-5.1-dev luajit2 libuv1-dev libssl-dev node-llhttp \
           lua-busted lua-cjson lua-socket curl clang libclang-rt-dev \
           python3-websockets python3-jwt python3-cryptography python3-prometheus-client \
           json-schema-test-suite \
           libpcre2-8-0 libpcre2-dev libmodsecurity-dev modsecurity-crs tor-geoipdb \
           libhiredis-dev redis-server

CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -g $(OPT) $(SAN) -I$(LLHTTP_INC) \
                $(shell pkg-config --cflags $(PKGS) 2>/dev/null) \
                -DMGW_LUA_DIR='"$(CURDIR)/lua"'
CFLAGS  = $(CFLAGS_COMMON) -Wall -Wextra -Werror -Iruntime
LDLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -ldl -lpthread
LDFLAGS = $(SAN) -Wl,-E

RUNTIME_SRC := $(wildcard runtime/*/*.c)
RUNTIME_HDR := $(wildcard runtime/*/*.h)
RUNTIME_OBJ := $(RUNTIME_SRC:runtime/%.c=$(BUILD)/runtime/%.o)
LLHTTP_OBJ  := $(BUILD)/llhttp/llhttp.o $(BUILD)/llhttp/api.o $(BUILD)/llhttp/http.o
UNIT_SRC    := $(wildcard tests/unit/*/test_*.c)
UNIT_BIN    := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
LUA_CONSTANTS := lua/moongate/constants.lua

.PHONY: all build deps run test asan format clean unit prometheus bench-metrics bench bench-deps bench-throttle bench-wsload fuzz fuzz-build

# `all` installs what is missing first and then builds in a second make: make resolves
# a target's rules (llhttp's sources under /usr/share/llhttp among them) before it runs
# any recipe, so on a fresh machine one make could not see the files `deps` installs.
all: deps
	@$(MAKE) --no-print-directory build

build: $(BUILD)/moongate $(BUILD)/test-upstream $(UNIT_BIN) $(LUA_CONSTANTS)

# Installs the Debian packages that are missing (and nothing when all are there).
deps:
	@missing=""; for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

$(BUILD)/runtime/%.o: runtime/%.c $(RUNTIME_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LTO) -c $< -o $@

# llhttp is third-party generated C: compiled without our warning flags.
$(BUILD)/llhttp/%.o: $(LLHTTP)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(LTO) -w -c $< -o $@

$(BUILD)/moongate: $(BUILD)/runtime/main.o $(RUNTIME_OBJ) $(LLHTTP_OBJ)
	$(CC) $(OPT) $(LTO) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The numbers and name lists Lua shares with C (hook ids, result codes, request fields,
# $context variables, gateway response types...) are generated from the runtime headers
# by tools/gen_constants.c. Lua is loaded from the source tree (MGW_LUA_DIR), so the file
# is written there (it is not committed); through a temporary file, so that two builds
# at once (build, build-asan) never leave half of it.
$(BUILD)/tools/gen_constants: tools/gen_constants.c $(RUNTIME_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $< -o $@

$(LUA_CONSTANTS): $(BUILD)/tools/gen_constants
	$< > $@.$$$$.tmp && mv $@.$$$$.tmp $@

$(BUILD)/test-upstream: tests/e2e/upstream.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(SAN) -Wall -Wextra -Werror -pthread $< -o $@ -lssl -lcrypto

# A unit test tests/unit/LAYER/test_NAME.c #includes runtime/LAYER/NAME.c (to reach its static
# functions) and is linked with every other runtime object; a header beside the tests holds
# fixed data some of them share (e.g. base/jose_vectors.h).
$(BUILD)/tests/%: tests/unit/%.c tests/unit/unit.h $(wildcard tests/unit/*/*.h) $(RUNTIME_OBJ) $(LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fno-lto -Itests/unit $(LDFLAGS) $< $(filter-out $(BUILD)/runtime/$(subst test_,,$*).o,$(RUNTIME_OBJ)) $(LLHTTP_OBJ) -o $@ $(LDLIBS)

run: all
	$(BUILD)/moongate -c conf/gateway.lua

# Debian's Prometheus scraping the gateway `make run` started (README "Metrics"); installs
# the prometheus package when missing (only here, not in deps).
prometheus:
	@BUILD=$(BUILD) bash tools/prometheus.sh

# The time a scrape of 100 APIs x 20 routes takes (README "Metrics"); not a test.
bench-metrics: all
	@BUILD=$(BUILD) bash bench/metrics_scrape.sh

# The fuzz targets are built in the second make too (their llhttp objects need deps).
test: deps
	@$(MAKE) --no-print-directory build fuzz-build
	@BUILD=$(BUILD) bash tests/run.sh

# AddressSanitizer + UndefinedBehaviorSanitizer build in build-asan/, C and e2e tests.
asan:
	$(MAKE) BUILD=build-asan OPT=-O1 LTO= SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" all
	@BUILD=build-asan SUITES="unit e2e" ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 bash tests/run.sh

# Micro-benchmark of one token-bucket check (issue 6): ns per check.
bench-throttle: all $(BUILD)/bench/throttle_bench
	$(BUILD)/bench/throttle_bench

$(BUILD)/bench/throttle_bench: bench/throttle_bench.c $(BUILD)/runtime/base/throttle.o $(BUILD)/runtime/base/log.o $(BUILD)/runtime/base/mem.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -pthread $^ -o $@

# The WebSocket load generator for W6/W7 (issue 14, bench/README.md): C on libuv with the
# runtime's frame codec; `bash bench/wsload_check.sh` is its smoke test.
bench-wsload: $(BUILD)/bench/wsload

$(BUILD)/bench/wsload: bench/wsload.c $(BUILD)/runtime/ws/frame.o $(BUILD)/runtime/base/utf8.o $(BUILD)/runtime/base/mem.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $^ -o $@ $(shell pkg-config --libs libuv libcrypto 2>/dev/null)

# moongate beside nginx + lua-nginx-module and HAProxy on this machine (bench/README.md):
# table on stdout, figures in bench/results/latest.json. QUICK=1: under a minute.
bench: all bench-deps bench-wsload
	@QUICK=$(QUICK) BUILD=$(BUILD) bash bench/run.sh

# Installs wrk, nginx, libnginx-mod-http-lua, lua-nginx-websocket and haproxy when missing.
bench-deps:
	@bash bench/deps.sh

# ---- fuzzing (README "Fuzzing"): libFuzzer targets built with clang, ASan and UBSan ----
# The runtime is compiled again with clang into $(BUILD)/fuzz (coverage-instrumented for
# the fuzzer); a target that #includes a runtime .c file to reach its static functions
# names it in FUZZ_INCLUDES_<target> so that its object is left out of the link.
FUZZ_CC     ?= clang
FUZZ_S      ?= 60
FUZZ_SAN     = -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS  = -std=c11 -D_GNU_SOURCE -g -O1 $(FUZZ_SAN) -I$(LLHTTP_INC) \
               $(shell pkg-config --cflags $(PKGS) 2>/dev/null) -DMGW_LUA_DIR='"$(CURDIR)/lua"'
FUZZ_SRC    := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN    := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_RT_OBJ := $(RUNTIME_SRC:runtime/%.c=$(BUILD)/fuzz/runtime/%.o)
FUZZ_LLHTTP_OBJ := $(LLHTTP_OBJ:$(BUILD)/llhttp/%=$(BUILD)/fuzz/llhttp/%)
FUZZ_INCLUDES_response := http/client http/proxy
FUZZ_INCLUDES_quota_wal := base/quota
FUZZ_INCLUDES_pem := base/tls
FUZZ_INCLUDES_jwt := base/jose
FUZZ_INCLUDES_jwk := base/jose

fuzz-build: $(FUZZ_BIN) $(LUA_CONSTANTS)

# Objects made only for the pattern rule below: kept (make would delete them as intermediate).
.SECONDARY: $(FUZZ_RT_OBJ) $(FUZZ_LLHTTP_OBJ)

$(BUILD)/fuzz/runtime/%.o: runtime/%.c $(RUNTIME_HDR) | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -Wall -Wextra -Werror -Iruntime -c $< -o $@

$(BUILD)/fuzz/llhttp/%.o: $(LLHTTP)/%.c | deps
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -w -c $< -o $@

$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(wildcard tests/fuzz/*.h) $(wildcard tests/unit/*/*.h) $(FUZZ_RT_OBJ) $(FUZZ_LLHTTP_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Wall -Wextra -Werror -Iruntime -Itests/fuzz \
	  -Wl,-E $< $(filter-out $(FUZZ_INCLUDES_$*:%=$(BUILD)/fuzz/runtime/%.o),$(FUZZ_RT_OBJ)) \
	  $(FUZZ_LLHTTP_OBJ) -o $@ $(LDLIBS)

# Runs every target for FUZZ_S seconds on a working corpus in $(BUILD)/fuzz/corpus
# (seeded from tests/fuzz/corpus); crashes land in $(BUILD)/fuzz/artifacts.
fuzz: fuzz-build
	@BUILD=$(BUILD) FUZZ_S=$(FUZZ_S) bash tests/fuzz/run.sh long

format:
	clang-format -i runtime/*.c runtime/*/*.c runtime/*/*.h tests/unit/*/*.c tests/unit/*.h tests/e2e/*.c \
	  tests/fuzz/*.c tests/fuzz/*.h tools/*.c

clean:
	rm -rf build build-asan $(LUA_CONSTANTS)
