#!/usr/bin/env bash
# Installs the package `make deb` built, checks the installed programs, man pages,
# completion, conffile and units, runs lintian (its errors fail the check), and removes
# the package again, checking nothing of it is left. Needs root (CI runs as root).
set -euo pipefail
cd "$(dirname "$0")/../.."
deb=$(ls "${BUILD:-build}"/preforkd_*_amd64.deb | head -1)
[ -f "$deb" ] || { echo "check-deb: no preforkd_*_amd64.deb in ${BUILD:-build}: run make deb" >&2; exit 1; }
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"

echo "check-deb: lintian $deb"
lintian_out=$(lintian --tag-display-limit 0 "$deb" 2>&1 || true)
echo "$lintian_out"
if grep -q '^E: ' <<<"$lintian_out"; then echo "check-deb: lintian reports errors" >&2; exit 1; fi

fail() { echo "check-deb: $*" >&2; exit 1; }
echo "check-deb: apt-get install ./$deb"
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "./$deb"
/usr/bin/preforkd --version
/usr/bin/preforkctl --version
man -w preforkd && man -w preforkctl && man -w 5 preforkd.toml
[ -f /usr/share/bash-completion/completions/preforkctl ] || fail "no bash completion"
[ -f /usr/share/zsh/vendor-completions/_preforkctl ] || fail "no zsh completion"
[ -f /usr/lib/systemd/system/preforkd@.service ] || fail "no preforkd@.service"
grep -q '^ExecStart=/usr/bin/preforkd ' /usr/lib/systemd/system/preforkd@.service || fail "unit names the wrong binary"
dpkg-query -W -f='${Conffiles}\n' preforkd | grep -q '/etc/preforkd/example.toml' || fail "example.toml is not a conffile"
/usr/bin/preforkd --config /etc/preforkd/example.toml --check
dpkg-query -W -f='${Depends}\n' preforkd | grep -q 'libuv1' || fail "Depends lacks libuv1 (dpkg-shlibdeps)"
for exe in /proc/[0-9]*/exe; do
  if [ "$(readlink "$exe" 2>/dev/null)" = /usr/bin/preforkd ]; then
    fail "a preforkd runs after installation (postinst must start nothing)"
  fi
done

echo "check-deb: apt-get remove preforkd"
DEBIAN_FRONTEND=noninteractive $sudo apt-get remove -y -qq preforkd
for f in /usr/bin/preforkd /usr/bin/preforkctl /usr/bin/preforkd-demo; do
  [ ! -e "$f" ] || fail "$f is still there after apt-get remove"
done
DEBIAN_FRONTEND=noninteractive $sudo apt-get purge -y -qq preforkd
[ ! -e /etc/preforkd/example.toml ] || fail "/etc/preforkd/example.toml is still there after purge"
echo "check-deb: ok"
