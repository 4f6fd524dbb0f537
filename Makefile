# The two set-up commands on a fresh Debian 12 machine (as root):
#   make demo   build, start the sandbox, run examples/onboard.lua against it
#   make test   build and run the whole suite (C unit tests, busted specs,
#               memory checks, each libFuzzer target over its corpus)
# make fuzz     fuzz each libFuzzer target for FUZZ_SECONDS (60) seconds
BUILD ?= build
LUA ?= lua5.4
FUZZ_SECONDS ?= 60
export LUA_PATH := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/?.lua;;
export LUA_CPATH := $(CURDIR)/$(BUILD)/?.so;;

.PHONY: all deps deps-test deps-fuzz build test demo clean bench lint memcheck mutate contract-fixtures fuzz schemas

all: build

deps:
	@sh scripts/deps.sh build

deps-test:
	@sh scripts/deps.sh test
	@sh scripts/prism-install.sh

deps-fuzz:
	@sh scripts/deps.sh fuzz

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

build: deps $(BUILD)/CMakeCache.txt
	@cmake --build $(BUILD) -j2 -- --no-print-directory -s

test: deps-test build
	@sh scripts/run-tests.sh $(BUILD)

demo: build
	@sh scripts/demo.sh

memcheck: deps-test
	@sh scripts/memcheck.sh

fuzz: deps-fuzz
	@sh scripts/fuzz.sh run $(FUZZ_SECONDS)

bench: build
	@sh scripts/deps.sh bench
	@for b in bench/*_bench.lua; do echo "== $$b"; $(LUA) $$b || exit 1; done

# Curated code changes (scripts/mutations.lua), each of which a named spec must catch.
mutate:
	@sh scripts/deps.sh test
	@$(LUA) scripts/mutate.lua

lint:
	luacheck -q --codes lua/provision tests examples bin sandbox bench scripts

# Rewrite tests/contract/ from the published specs and SDK pages (../shared
# beside the repo, or SPECS=DIR SEEDS=DIR); only when one of them changed.
contract-fixtures:
	$(LUA) scripts/contract-fixtures.lua $(if $(SPECS),--specs $(SPECS)) $(if $(SEEDS),--seeds $(SEEDS))

# Rewrite lua/provision/schemas/ (request and response schemas, for validation
# and the command line) from the published specs (../shared/specs beside the
# repo, or SPECS=DIR); only when a spec changed.
schemas:
	$(LUA) scripts/gen-schemas.lua $(if $(SPECS),--specs $(SPECS))

clean:
	rm -rf $(BUILD) build-debug build-asan build-fuzz build.luarocks
