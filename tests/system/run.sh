#!/usr/bin/env bash
# `make test-system`: preforkd under a real systemd (tests/system/nspawn.sh) and a real
# container runtime (tests/system/podman.sh, when present), on a Debian 12 rootfs made
# once by tests/system/rootfs.sh and reused from CACHE_DIR.
#   tests/system/run.sh BUILD_DIR [CACHE_DIR]
# Fails when either suite fails; both run even when the first fails.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-build}" && pwd)
cache=${2:-${PREFORKD_ROOTFS_CACHE:-/var/cache/preforkd-test-system}}
start=$(date +%s)
rc=0
"$here/nspawn.sh" "$build" "$cache" || { echo "test-system: nspawn.sh failed" >&2; rc=1; }
if [ -x "$here/podman.sh" ]; then
  "$here/podman.sh" "$build" "$cache" || { echo "test-system: podman.sh failed" >&2; rc=1; }
fi
echo "test-system: $([ $rc -eq 0 ] && echo passed || echo FAILED) in $(( $(date +%s) - start ))s"
exit $rc
