#!/usr/bin/env bash
# The unit files pass `systemd-analyze verify` once installed into a staging prefix
# (verify needs the programs that ExecStart names to exist).
# usage: verify_units.sh BUILD_DIR
set -euo pipefail
build=$1
stage=$(mktemp -d /tmp/preforkd-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
cmake --install "$build" --prefix "$stage" >/dev/null
units="$stage/lib/systemd/system"
# A template is verified through an instance of it.
cp "$units/preforkd@.service" "$units/preforkd@demo.service"
for unit in preforkd.service preforkd@demo.service; do
  out=$(systemd-analyze verify "$units/$unit" 2>&1) || { echo "$unit: $out"; exit 1; }
  # verify also prints warnings with exit code 0; a unit of ours must have none.
  if [ -n "$out" ]; then echo "$unit: $out"; exit 1; fi
  grep -q "^ExecStart=$stage/bin/preforkd " "$units/$unit" || { echo "$unit: ExecStart does not name the staged preforkd"; exit 1; }
  # Worker cgroups need the service's cgroup delegated, and writable.
  grep -q "^Delegate=yes$" "$units/$unit" || { echo "$unit: no Delegate=yes"; exit 1; }
  if grep -q "^ProtectControlGroups=yes" "$units/$unit"; then echo "$unit: ProtectControlGroups=yes hides the delegated cgroup"; exit 1; fi
  echo "$unit: ok"
done
# The check itself must be able to fail: a unit whose program is missing is refused.
sed "s#^ExecStart=.*#ExecStart=$stage/bin/no-such-program#" "$units/preforkd.service" > "$units/broken.service"
if systemd-analyze verify "$units/broken.service" >/dev/null 2>&1; then
  echo "systemd-analyze verify accepted a unit with a missing program: the check proves nothing"; exit 1
fi
