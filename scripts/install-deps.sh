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
  # balanced accept in the kernel: the eBPF program is built with clang (above) and loaded with libbpf
  libbpf-dev
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
bench=false
[ "${1:-}" = "--bench" ] && bench=true
# `make test-system`: systemd-nspawn boots a rootfs mmdebstrap makes (tests/system/)
[ "${1:-}" = "--system" ] && packages+=(systemd-container mmdebstrap)
# the churn benchmark runs pm2 beside preforkd: npm's pm2 (Debian has no package of it)
$bench && packages+=(wrk)
# make test-system (tests/system/): a rootfs by mmdebstrap, rootful podman with runc
[[ " $* " == *" --system "* ]] && packages+=(mmdebstrap podman runc)

sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

install_pm2() {
  $bench || return 0
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
