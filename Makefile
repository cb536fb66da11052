# The two commands of the README: `make demo` and `make test`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: all deps build demo test test-release test-asan bench install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFORKD_WERROR=ON
	cmake --build $(BUILD) -j$(JOBS)

# Runs preforkd on the bundled demo: count = "auto" workers on 127.0.0.1:8080.
demo: build
	$(BUILD)/preforkd --config config/demo.toml

# Every test, in a normal build and under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-release test-asan

test-release: build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

test-asan: deps
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPREFORKD_SANITIZE=ON -DPREFORKD_WERROR=ON
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600

bench: build
	@scripts/install-deps.sh --bench
	$(BUILD)/tests/preforkd_bench

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

# Man pages (scdoc) and the Debian package (CPack): $(BUILD)/man/*.gz, $(BUILD)/preforkd_<version>_amd64.deb.
.PHONY: man deb
man: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFORKD_WERROR=ON
	cmake --build $(BUILD) --target man

deb: build
	cd $(BUILD) && cpack -G DEB
