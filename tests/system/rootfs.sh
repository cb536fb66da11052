#!/usr/bin/env bash
# Makes, or reuses, a minimal Debian 12 rootfs with systemd as PID 1, for the system tests
# (tests/system/nspawn.sh boots it; tests/system/podman.sh imports it as a base image).
#   tests/system/rootfs.sh [CACHE_DIR] [DEB]   prints the rootfs path
# CACHE_DIR defaults to $PREFORKD_ROOTFS_CACHE or /var/cache/preforkd-test-system. The
# rootfs holds the runtime dependencies of DEB (default: build/preforkd_*_amd64.deb, read
# with dpkg-deb) so that the package installs in a container without network, and what
# the checks need inside. It comes from the mirror apt is configured with. The stamp file,
# written last, names the package list: a rootfs without it, or made for another list,
# is made again.
set -euo pipefail
cache=${1:-${PREFORKD_ROOTFS_CACHE:-/var/cache/preforkd-test-system}}
deb=${2:-$(ls "$(dirname "$0")"/../../build/preforkd_*_amd64.deb 2>/dev/null | head -1 || true)}

# systemd as PID 1; curl, python3 (the clients), iproute2 (ss), procps (ps, pgrep); the
# libraries preforkd links (the Depends of today's package, so that a rootfs made before
# the package is built serves it).
base="systemd systemd-sysv dbus iproute2 curl python3 procps
  libuv1 libspdlog1.10 libspdlog1.10-fmt9 libfmt9 libtomlplusplus3 libsystemd0 libbpf1 libstdc++6"
# Depends: "libuv1 (>= 1.18.0), libfmt9 (>= 9.1.0+ds1), a | b" -> the first of each alternative.
depends=""
if [ -f "$deb" ]; then
  depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$' || true)
fi
packages=$(printf '%s\n' $base $depends | sort -u | paste -sd, -)

rootfs=$cache/rootfs
stamp=$cache/rootfs.stamp
# Reused when complete (the stamp, written last, lists the packages it was made with) and
# made with every package needed now (some Depends are virtual: compared by name here).
if [ -f "$stamp" ] && [ -x "$rootfs/lib/systemd/systemd" ]; then
  missing=""
  for p in ${packages//,/ }; do
    grep -q "\(^\|,\)$p\(,\|$\)" "$stamp" || missing="$missing $p"
  done
  if [ -z "$missing" ]; then echo "$rootfs"; exit 0; fi
  echo "rootfs: $rootfs was made without$missing: making it again" >&2
fi

# The mirror apt uses here: the URIs of the bookworm suite in deb822 sources, else sources.list.
mirror=""
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
  mirror=$(awk '/^URIs:/ {u=$2} /^Suites:/ && / bookworm( |$)/ {print u; exit}' /etc/apt/sources.list.d/debian.sources)
fi
[ -n "$mirror" ] || mirror=$(awk '$1=="deb" && $3=="bookworm" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

rm -rf "$rootfs" "$stamp"
mkdir -p "$cache"
start=$(date +%s)
echo "rootfs: mmdebstrap bookworm from $mirror into $rootfs (packages: $packages)" >&2
mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$rootfs" \
  "deb $mirror bookworm main" >&2
# A machine id of its own is made at each boot (an empty file: systemd fills it in).
: > "$rootfs/etc/machine-id"
echo "$packages" > "$stamp"
echo "rootfs: made in $(( $(date +%s) - start ))s" >&2
echo "$rootfs"
