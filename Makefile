# The two commands of the README: `make demo` and `make test`; `make ci` is what CI runs.
BUILD       ?= build
ASAN_BUILD  ?= build-asan
CLANG_BUILD ?= build-clang
JOBS        ?= $(shell nproc)
# Developers and CI treat warnings as errors; a packager's plain cmake build does not.
CMAKE_FLAGS ?= -DPREFORKD_WERROR=ON
# A compiler cache where the machine has one (a developer's; CI's fresh machine has none).
ifneq ($(shell command -v ccache),)
CMAKE_FLAGS += -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache
endif

.PHONY: all deps deps-test deps-package build demo test test-release test-asan test-clang ci tidy bench install clean

all: build

# What building and the demo need; the tests' servers and tools come with deps-test, the man
# pages' and the Debian package's tools with deps-package (scripts/install-deps.sh says which).
deps:
	@scripts/install-deps.sh

# After deps, so that two apt-get never run at once under make -j.
deps-test: deps
	@scripts/install-deps.sh --test

deps-package: deps
	@scripts/install-deps.sh --package

# Release, the build type a packager uses: GCC's -O3 warnings (-Wrestrict) show up here
# first, and the tests then run what is shipped.
build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)

# Runs preforkd on the bundled demo: count = "auto" workers on 127.0.0.1:8080.
demo: build
	$(BUILD)/preforkd --config config/demo.toml

# Every test, in a Release build and under AddressSanitizer + UndefinedBehaviorSanitizer.
test: test-release test-asan

test-release: deps-test build
	cd $(BUILD) && ctest --output-on-failure --timeout 600

test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DPREFORKD_SANITIZE=ON $(CMAKE_FLAGS)
	cmake --build $(ASAN_BUILD) -j$(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --timeout 600

# A second compiler: Debian's clang builds everything with warnings as errors, and runs the
# unit tests (the behaviour tests already run twice with GCC).
test-clang: deps
	CC=clang CXX=clang++ cmake -S . -B $(CLANG_BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)
	cmake --build $(CLANG_BUILD) -j$(JOBS)
	cd $(CLANG_BUILD) && ctest --output-on-failure --timeout 600 -R '^unit:'

# The CI matrix (.ci/run): GCC Release + every test, GCC ASan+UBSan + every test, Clang -Werror.
ci: test test-clang

# clang-tidy with the checks in .clang-tidy, over the project's own sources (needs the
# compile_commands.json of a configured build).
tidy: deps-test
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	run-clang-tidy -quiet -p $(BUILD) -j $(JOBS) '^$(CURDIR)/(src|tests|demo)/'

bench: build
	@scripts/install-deps.sh --bench
	$(BUILD)/tests/preforkd_bench

install: build
	cmake --install $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(CLANG_BUILD)

# Man pages (scdoc) and the Debian package (CPack): $(BUILD)/man/*.gz, $(BUILD)/preforkd_<version>_amd64.deb.
.PHONY: man deb
man: deps-package
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) --target man

# The build runs after deps-package (not beside it), so that its configure step finds scdoc.
deb: deps-package
	$(MAKE) build
	cd $(BUILD) && cpack -G DEB

# The .deb under a real systemd (systemd-nspawn, systemd as PID 1) and podman: tests/system/.
# Needs root; the Debian 12 rootfs is made once into /var/cache/preforkd-test-system.
.PHONY: test-system
test-system: deb
	@scripts/install-deps.sh --system
	tests/system/run.sh $(BUILD)
