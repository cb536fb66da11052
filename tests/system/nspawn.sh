#!/usr/bin/env bash
# preforkd under a real systemd: boots a Debian 12 rootfs (tests/system/rootfs.sh) with
# systemd as PID 1 in systemd-nspawn, installs the .deb built from the tree and checks,
# through systemctl, journalctl and a client on the container's loopback, what the README
# promises of the packaged unit (a-g below). Each step prints what it checked and its time.
#   tests/system/nspawn.sh BUILD_DIR [CACHE_DIR]
# Skips (exit 0, saying why) only where no container can be booted: not root, or no
# systemd-nspawn. Leaves nothing behind: the container is stopped, its overlay and cgroups
# removed, whatever the outcome.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-build}
cache=${2:-${PREFORKD_ROOTFS_CACHE:-/var/cache/preforkd-test-system}}

if [ "$(id -u)" -ne 0 ]; then echo "nspawn: SKIP: not root (systemd-nspawn needs root)"; exit 0; fi
if ! command -v systemd-nspawn >/dev/null; then echo "nspawn: SKIP: no systemd-nspawn (apt-get install systemd-container)"; exit 0; fi
deb=$(ls "$build"/preforkd_*_amd64.deb 2>/dev/null | head -1 || true)
[ -f "$deb" ] || { echo "nspawn: no preforkd_*_amd64.deb in $build: run make deb" >&2; exit 1; }

t_all=$(date +%s.%N)
t_step=$t_all
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }
step() { t_step=$(date +%s.%N); echo "nspawn: [$1] ..."; }
ok() { echo "nspawn: ok   $* ($(since "$t_step")s)"; }
fail() { echo "nspawn: FAIL $* ($(since "$t_step")s)" >&2; exit 1; }
# A failed check after which the others can still run: the suite fails at its end.
failed_checks=""
fail_later() { echo "nspawn: FAIL $2 ($(since "$t_step")s)" >&2; failed_checks="$failed_checks $1"; }
# Waits for a shell condition, polling, up to $1 seconds.
wait_for() { local limit=$1; shift; local end=$(( $(date +%s) + limit )); until eval "$*"; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.2; done; }

step "rootfs"
rootfs=$("$here/rootfs.sh" "$cache" "$deb")
ok "rootfs $rootfs"

work=$(mktemp -d /var/tmp/preforkd-system.XXXXXX)
name=preforkd-test-$$
nspawn_pid=""
cgroups=()
merged=""
cleanup() {
  set +e
  if [ -n "$nspawn_pid" ] && kill -0 "$nspawn_pid" 2>/dev/null; then
    [ -n "${cpid:-}" ] && nsenter -t "$cpid" -a systemctl poweroff >/dev/null 2>&1
    for _ in $(seq 100); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$nspawn_pid" 2>/dev/null
    wait "$nspawn_pid" 2>/dev/null
  fi
  # Anything left in our cgroups (the container's processes) is killed, then the subtree removed.
  for cg in "${cgroups[@]}"; do
    [ -f "$cg/cgroup.kill" ] && echo 1 > "$cg/cgroup.kill" 2>/dev/null
    procs() { find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null; }
    for p in $(procs); do kill -KILL "$p" 2>/dev/null; done
    for _ in $(seq 50); do [ -z "$(procs)" ] && break; sleep 0.1; done
    find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [ -n "$merged" ] && umount "$merged" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

step "boot"
# The rootfs cache stays clean: the container writes to an overlay over it.
mkdir -p "$work/upper" "$work/ovl" "$work/merged"
if mount -t overlay overlay -o "lowerdir=$rootfs,upperdir=$work/upper,workdir=$work/ovl" "$work/merged" 2>/dev/null; then
  merged=$work/merged
  root=$merged
else
  cp -a --reflink=auto "$rootfs" "$work/root"
  root=$work/root
fi
# nspawn runs in cgroups of its own (a v2 one, and the name=systemd v1 one of a hybrid
# layout), removed after: with --keep-unit it makes payload/supervisor cgroups there.
v2=$(awk '$3=="cgroup2" {print $2; exit}' /proc/self/mounts)
v1=$(awk '$3=="cgroup" && $4 ~ /name=systemd/ {print $2; exit}' /proc/self/mounts)
[ -n "$v2" ] || { echo "nspawn: SKIP: no cgroup2 hierarchy mounted"; exit 0; }
for m in "$v2" $v1; do
  if [ "$m" = "$v2" ]; then own=$(sed -n 's/^0:://p' /proc/self/cgroup); else own=$(sed -n 's/^[0-9]*:name=systemd://p' /proc/self/cgroup); fi
  cg=$m${own%/}/preforkd-test-$$
  mkdir "$cg"
  cgroups+=("$cg")
done
(
  for cg in "${cgroups[@]}"; do echo "$BASHPID" > "$cg/cgroup.procs"; done
  SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 exec systemd-nspawn -q -D "$root" -M "$name" --register=no --keep-unit \
    --private-network --console=read-only -b --capability=all --system-call-filter=bpf
) > "$work/console.log" 2>&1 &
nspawn_pid=$!
cpid=""
# The container's PID 1: the child of nspawn named systemd (an intermediate child comes first).
find_pid1() { cpid=$(ps -o pid=,comm= --ppid "$nspawn_pid" 2>/dev/null | awk '$2=="systemd" {print $1; exit}'); [ -n "$cpid" ]; }
wait_for 30 find_pid1 || { cat "$work/console.log" >&2; fail "no container PID 1 under systemd-nspawn ($nspawn_pid)"; }
c() { nsenter -t "$cpid" -a "$@"; }
booted() { s=$(c systemctl is-system-running 2>/dev/null || true); [ "$s" = running ] || [ "$s" = degraded ]; }
wait_for 60 booted || { tail -30 "$work/console.log" >&2; fail "systemd in the container is not running: $(c systemctl is-system-running 2>&1)"; }
ok "systemd $(c systemctl --version | head -1 | awk '{print $2}') is PID 1 of the container (host pid $cpid), cgroup $(c stat -fc %T /sys/fs/cgroup)"

step "install"
cp "$deb" "$root/root/preforkd.deb"
cp "$here/client.py" "$root/root/client.py"
c dpkg -i /root/preforkd.deb > "$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; fail "dpkg -i $(basename "$deb") in the container"; }
mkdir -p "$root/etc/preforkd"
# Every worker starts a setsid grandchild (check c): it must not outlive systemctl stop.
cat > "$root/etc/preforkd/app.toml" <<'TOML'
[preforkd]
log_level = "info"

[worker]
command = ["/bin/sh", "-c", "setsid sleep 1000 </dev/null >/dev/null 2>&1 3>&- & exec /usr/bin/preforkd-demo"]
count = 3
env = { APP_GEN = "1" }
ready = "notify"
ready_timeout = "20s"
stop_timeout = "10s"

[[listen]]
name = "http"
address = "127.0.0.1:8080"
TOML
ok "$(c dpkg-query -W -f='${Package} ${Version}' preforkd) installed with dpkg -i (no network in the container)"

unit=preforkd@app
main_pid() { c systemctl show -P MainPID "$unit"; }
# Workers: the children of the master (the shell of the command exec'd the demo worker).
workers() { c ps -o pid= --ppid "$(main_pid)" | tr -d ' ' | sort; }
count_ready() { [[ "$(c systemctl show -P StatusText "$unit")" == "3/3 workers ready"* ]]; }
# Returns once the client (client_start) has had its first answer: it is under way.
# shellcheck disable=SC2016  # expanded by wait_for's eval
first_request() { wait_for 20 '[ -f "$root/root/$client_out.started" ]' || fail "the client got no answer in 20s"; }
client_start() {
  # shellcheck disable=SC2034  # read by first_request, in wait_for's eval
  client_out=$1
  rm -f "$root/root/stop" "$root/root/$1" "$root/root/$1.started"
  c python3 /root/client.py 8080 /root/stop "/root/$1" "${2:-2}" & client_pid=$!
}
client_stop() {
  touch "$root/root/stop"; wait "$client_pid" || true
  [ -f "$root/root/$1" ] || fail "the client wrote no result"
  read -r _ client_ok _ client_failed _ client_max_ms < "$root/root/$1"
}

step "a: start"
c systemctl start "$unit" || { c journalctl -u "$unit" --no-pager | tail -30 >&2; fail "systemctl start $unit"; }
status=$(c systemctl show -P StatusText "$unit")
[[ "$status" == "3/3 workers ready"* ]] || fail "after systemctl start returned, STATUS= is '$status', not every worker ready"
c systemctl status "$unit" --no-pager | grep -q "Status: \"$status\"" || fail "systemctl status does not show STATUS="
c curl -fsS -o /dev/null http://127.0.0.1:8080/ || fail "no answer on 127.0.0.1:8080 after start"
ok "systemctl start returned with every worker ready (Type=notify); systemctl status shows Status: \"$status\""

step "b: reload"
before=$(workers | paste -sd' ')
master=$(main_pid)
client_start reload.out
first_request
# A reload applies only the difference: a changed env rolls a new generation of workers.
sed -i 's/APP_GEN = "1"/APP_GEN = "2"/' "$root/etc/preforkd/app.toml"
c systemctl reload "$unit" || fail "systemctl reload $unit"
after=$(workers | paste -sd' ')
client_stop reload.out
[ "$(main_pid)" = "$master" ] || fail "the master changed across reload"
for p in $before; do grep -qw "$p" <<<"$after" && fail "worker $p was not replaced by reload (before: $before, after: $after)"; done
[ "$client_failed" -eq 0 ] || fail "reload under a client: $client_failed of $((client_ok + client_failed)) requests failed"
[ "$client_ok" -gt 0 ] || fail "the client made no request"
ok "systemctl reload (a changed env) under a fresh-connection client: 0 failed of $client_ok; workers $before -> $after; $(c systemctl show -P StatusText "$unit")"

step "c: cgroups"
service_cg=$(c cat /proc/"$(main_pid)"/cgroup | sed -n 's/^0:://p')
c systemctl show -P Delegate "$unit" | grep -q yes || fail "Delegate= is not yes"
unit_cg=/system.slice/system-preforkd.slice/$unit.service
declare -A seen=()
worker_cgs=""
for p in $(workers); do
  wcg=$(c cat /proc/"$p"/cgroup | sed -n 's/^0:://p')
  [[ "$wcg" == "$unit_cg/"* ]] || fail "worker $p is in $wcg, not below $unit_cg"
  [ -z "${seen[$wcg]:-}" ] || fail "workers ${seen[$wcg]} and $p share the cgroup $wcg"
  seen[$wcg]=$p
  worker_cgs="$worker_cgs ${wcg#"$unit_cg"/}"
done
sleepers=$(c ps -eo pid=,args= | awk '$2=="sleep" && $3=="1000" {print $1}' | paste -sd' ')
[ "$(wc -w <<<"$sleepers")" -ge 3 ] || fail "the workers' setsid grandchildren are not running: '$sleepers'"
c systemd-cgls --no-pager -u "$unit.service" > "$work/cgls.txt" 2>&1 || fail "systemd-cgls -u $unit: $(cat "$work/cgls.txt")"
for p in $(workers); do
  grep -q "[^0-9]$p /usr/bin/preforkd-demo" "$work/cgls.txt" || fail "systemd-cgls does not show worker $p: $(cat "$work/cgls.txt")"
done
[ "$(grep -c 'slot-' "$work/cgls.txt")" -ge 3 ] || fail "systemd-cgls shows no slot cgroups: $(cat "$work/cgls.txt")"
c systemctl stop "$unit"
left=$(c ps -eo pid=,args= | awk '($2=="sleep" && $3=="1000") || $2 ~ /preforkd/ {print}')
[ -z "$left" ] || fail "systemctl stop left processes: $left"
[ "$(c systemctl show -P ActiveState "$unit")" = inactive ] || fail "after stop the unit is $(c systemctl show -P ActiveState "$unit")"
ok "master in $service_cg; workers each in a cgroup of their own below $unit_cg (${worker_cgs# }); systemctl stop left no process (setsid grandchildren $sleepers included)"

step "d: kill -9"
c systemctl start "$unit"
master=$(main_pid)
client_start kill.out 2
first_request
t_journal=$(c date '+%Y-%m-%d %H:%M:%S')
c kill -KILL "$master"
restarted() { p=$(main_pid); [ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$master" ] && [ "$(c systemctl show -P ActiveState "$unit")" = active ] && count_ready; }
wait_for 30 restarted || fail "systemd did not restart the master after kill -9 ($(c systemctl show -P ActiveState,SubState,Result "$unit" | paste -sd' '))"
c curl -fsS -o /dev/null http://127.0.0.1:8080/ || fail "no answer after the restart"
client_stop kill.out
c journalctl -u "$unit" --since "$t_journal" --no-pager -o cat > "$work/kill.log"
grep -q "fd store: took .* stored socket" "$work/kill.log" || { cat "$work/kill.log" >&2; fail "the new master did not take its sockets from the fd store"; }
[ "$client_failed" -le 2 ] || fail "kill -9 under a client: $client_failed failed, more than the 2 requests in flight at the kill"
ok "kill -9 of the master ($master): systemd restarted it ($(main_pid)), '$(grep -o 'fd store: took [^(]*' "$work/kill.log" | head -1)'; $client_failed failed of $((client_ok + client_failed)) (at most 2 in flight); the slowest answered request took ${client_max_ms} ms (one that waited out the restart in the stored queue)"

step "e: watchdog"
master=$(main_pid)
wdog=$(c systemctl show -P WatchdogUSec "$unit")
t_journal=$(c date '+%Y-%m-%d %H:%M:%S')
c kill -STOP "$master"
wait_for 150 restarted || fail "a master frozen with SIGSTOP was not replaced (WatchdogSec=$wdog): $(c systemctl show -P ActiveState,SubState,Result "$unit" | paste -sd' ')"
c curl -fsS -o /dev/null http://127.0.0.1:8080/ || fail "no answer after the watchdog restart"
c journalctl -u "$unit" --since "$t_journal" --no-pager -o cat | grep -qi 'watchdog' || fail "no watchdog line in the journal"
ok "master $master frozen with SIGSTOP: systemd's watchdog ($wdog) replaced it with $(main_pid), serving again"

step "f: journald priorities"
# A second instance whose workers cannot start: preforkd logs errors and info lines.
cat > "$root/etc/preforkd/broken.toml" <<'TOML'
[worker]
command = ["/usr/bin/no-such-worker"]
count = 1
ready_timeout = "5s"

[[listen]]
name = "http"
address = "127.0.0.1:8081"
TOML
c systemctl start --no-block preforkd@broken
has_error() { c journalctl -u preforkd@broken --no-pager -o cat | grep -q 'cannot start'; }
wait_for 30 has_error || fail "preforkd@broken logged no 'cannot start' line: $(c journalctl -u preforkd@broken --no-pager -o cat | tail -5)"
c systemctl stop preforkd@broken || true
all=$(c journalctl -u preforkd@broken --no-pager -o cat)
errs=$(c journalctl -u preforkd@broken -p err --no-pager -o cat)
# Two of preforkd's info lines at every start.
info_re="control socket at\\|) starting with '/etc/preforkd/"
infos=$(grep -c "$info_re" <<<"$all" || true)
[ "$infos" -ge 2 ] || fail "preforkd@broken logged none of its info lines: $(head -5 <<<"$all")"
if ! grep -q 'cannot start' <<<"$errs"; then
  fail_later f "journalctl -u preforkd@broken -p err does not show preforkd's error lines (no priorities reach the journal); -p err shows: '$(head -3 <<<"$errs")'"
elif grep -q "$info_re" <<<"$errs"; then
  fail_later f "journalctl -p err shows preforkd's info lines: $(grep "$info_re" <<<"$errs" | head -2)"
else
  ok "journalctl -u preforkd@broken -p err shows preforkd's errors ($(grep -c 'cannot start' <<<"$errs") 'cannot start' lines) and none of its $infos info lines"
fi

step "g: package upgrade"
c systemctl is-active -q "$unit" || c systemctl start "$unit"
master=$(main_pid)
version=$(dpkg-deb -f "$deb" Version)
rm -rf "$work/repack"; dpkg-deb -R "$deb" "$work/repack"
sed -i "s/^Version: .*/Version: $version+systemtest1/" "$work/repack/DEBIAN/control"
dpkg-deb -b "$work/repack" "$root/root/preforkd-new.deb" >/dev/null
client_start upgrade.out
first_request
c dpkg -i /root/preforkd-new.deb > "$work/dpkg-upgrade.log" 2>&1 || { cat "$work/dpkg-upgrade.log" >&2; fail "dpkg -i of the newer package"; }
c curl -fsS -o /dev/null http://127.0.0.1:8080/ || fail "no answer after the upgrade"
client_stop upgrade.out
[ "$(main_pid)" = "$master" ] || fail "the master changed across the package upgrade ($master -> $(main_pid)): not in place"
exe=$(c readlink /proc/"$master"/exe)
[ "$exe" = /usr/bin/preforkd ] || fail "the master runs '$exe', not the upgraded /usr/bin/preforkd"
[ "$client_failed" -eq 0 ] || fail "package upgrade under a client: $client_failed of $((client_ok + client_failed)) failed"
ok "dpkg -i $version+systemtest1 over the running $unit: upgraded in place (master $master, exe $exe), 0 failed of $client_ok"

c systemctl stop "$unit"
if [ -n "$failed_checks" ]; then echo "nspawn: FAILED:$failed_checks (in $(since "$t_all")s)" >&2; exit 1; fi
echo "nspawn: all checks passed in $(since "$t_all")s"
