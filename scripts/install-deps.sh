#!/usr/bin/env bash
# Installs, from Debian's packages, what a target of the Makefile needs; only what is missing.
#   (no option)  build preforkd and run its demo (`make build`, `make demo`)
#   --test       and the real servers and tools the tests run (`make test`)
#   --package    and the man pages and the Debian package (`make man`, `make deb`)
#   --system     and systemd-nspawn, mmdebstrap and podman (`make test-system`)
#   --bench      and the tests' packages, the load generator and pm2 (`make bench`)
# Idempotent; uses sudo when not root.
set -euo pipefail

usage() {
  echo "usage: $0 [--test | --package | --system | --bench]" >&2
  exit 2
}
group=""
case "${1:-}" in
  "" | --test | --package | --system | --bench) group="${1:-}" ;;
  *) usage ;;
esac

# Building (the tests are built too: `make build` configures them, so Catch2 is here) and
# the demo, which needs nothing more at run time than what it links.
packages=(
  g++ cmake make pkg-config
  # the eBPF program is compiled with clang; clang is also CI's second compiler and the fuzzer's
  clang
  libuv1-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  nlohmann-json3-dev catch2 libsystemd-dev
  # balanced accept in the kernel: the eBPF program is loaded with libbpf
  libbpf-dev
  # what the README has you ask the demo with
  curl
)
# The tests: a real socket-activated server, systemd-analyze; promtool and a
# real Prometheus (tests/behaviour/test_metrics.cpp); the servers each example of examples/
# runs (tests/examples); bash-completion (tests/examples/completion_test.sh); clang-tidy
# for `make tidy`.
test_packages=(
  lighttpd systemd prometheus
  gunicorn uwsgi-core uwsgi-plugin-python3 haproxy nginx-light nodejs golang-go python3
  bash-completion clang-tidy
)
# Man pages (scdoc, gzip) and the Debian package: dpkg-shlibdeps (dpkg-dev), lintian, and
# man-db for contrib/debian/check-deb.sh.
package_packages=(scdoc gzip dpkg-dev lintian man-db)
# `make test-system` (tests/system/): a rootfs made by mmdebstrap, booted by systemd-nspawn,
# and rootful podman with runc.
system_packages=(systemd-container mmdebstrap podman runc)

case "$group" in
  --test) packages+=("${test_packages[@]}") ;;
  --package) packages+=("${package_packages[@]}") ;;
  --system) packages+=("${system_packages[@]}") ;;
  # the churn benchmark runs pm2 beside preforkd: npm's pm2 (Debian has no package of it);
  # the pool benchmark runs uWSGI's cheaper subsystem: uwsgi-core and uwsgi-plugin-python3 above
  --bench) packages+=("${test_packages[@]}" wrk) ;;
esac

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

install_pm2() {
  [ "$group" = --bench ] || return 0
  command -v pm2 >/dev/null && return 0
  # Debian's npm only when there is none: a nodejs from elsewhere brings its own.
  if ! command -v npm >/dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm
  fi
  echo "installing: pm2 (npm)"
  $sudo npm install -g --no-fund --no-audit pm2
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
install_pm2
