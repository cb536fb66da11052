#!/usr/bin/env bash
# libuv is called only in src/daemon/uv/ (issue #19): the adapters there check every
# result and close every handle; the rest of the daemon uses them. A `uv_...(` call anywhere
# else in src/ fails this test, which lists each one. Types (uv_loop_t*) are not calls.
# usage: test_uv_boundary.sh SOURCE_DIR
set -euo pipefail
root=$1
if [ ! -d "$root/src/daemon/uv" ]; then
  echo "test_uv_boundary.sh: no $root/src/daemon/uv: give the source directory"
  exit 2
fi
calls=$(cd "$root" && grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' '\buv_[a-z_0-9]*\(' src include \
          | grep -vE '^(src/daemon/uv/|include/preforkd/daemon/uv/)' || true)
if [ -n "$calls" ]; then
  echo "libuv called outside src/daemon/uv/ (move the call into an adapter there):"
  echo "$calls"
  exit 1
fi
echo "no libuv call outside src/daemon/uv/"
