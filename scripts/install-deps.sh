#!/usr/bin/env bash
# Installs what preforkd needs to build, test and run its demo, from Debian's packages.
# Idempotent: installs only what is missing; uses sudo when not root.
set -euo pipefail

packages=(
  g++ cmake make pkg-config
  # the second compiler of CI, and `make tidy`
  clang clang-tidy
  libuv1-dev libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  nlohmann-json3-dev catch2 libsystemd-dev
  # tests: a real socket-activated server, an HTTP client, systemd-analyze
  lighttpd curl systemd
  # tests/behaviour/test_metrics.cpp: promtool checks /metrics, a real Prometheus scrapes it
  prometheus
  # fuzzing (fuzz/run.sh): libFuzzer comes with Debian's clang
  clang
)
# examples/ tests (tests/examples): the real servers each example runs; man pages and
# the Debian package (`make man`, `make deb`): scdoc, dpkg-dev (dpkg-shlibdeps), lintian.
packages+=(
  gunicorn uwsgi-core uwsgi-plugin-python3 haproxy nginx-light nodejs golang-go python3
  scdoc gzip dpkg-dev lintian man-db bash-completion
)
[ "${1:-}" = "--bench" ] && packages+=(wrk)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "installing: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
