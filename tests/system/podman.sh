#!/usr/bin/env bash
# tests/system/podman.sh BUILD_DIR [CACHE_DIR]: the container examples under a real runtime.
#
# Rootful podman builds examples/docker from a Debian 12 base image imported from a rootfs
# made here with mmdebstrap (no registry), runs it with a port published on 127.0.0.1 and
# checks: preforkd is PID 1 and reaps orphans, requests are served from the host, the
# HEALTHCHECK turns healthy, `podman stop` is graceful (no in-flight request fails, exit 0,
# within the timeout). Then `podman kube play` of examples/kubernetes: its probes as far as
# podman 4.3 honours them. Each step prints what it checked and how long it took.
#
# The flags that make podman work on the CI machines (../shared/FACTS.md): `--runtime runc`
# (crun refuses the hybrid cgroup layout) and explicit nofile/nproc ulimits (the defaults
# need CAP_SYS_RESOURCE). Skips (exit 0) only when not root: rootless podman is not set up.
set -euo pipefail

build_dir=$(realpath "${1:?usage: podman.sh BUILD_DIR [CACHE_DIR]}")
cache_dir=${2:-/var/cache/preforkd-test-system}
repo=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
  echo "podman.sh: SKIP: not root (the containers need rootful podman)"
  exit 0
fi
for tool in podman runc mmdebstrap python3; do
  command -v "$tool" >/dev/null || { echo "podman.sh: FAIL: $tool missing (scripts/install-deps.sh --system)" >&2; exit 1; }
done

deb=$(ls -t "$build_dir"/preforkd_*_amd64.deb 2>/dev/null | head -n1 || true)
[ -n "$deb" ] || { echo "podman.sh: FAIL: no preforkd_*_amd64.deb in $build_dir (make deb)" >&2; exit 1; }

base=localdeb:bookworm
tag=localhost/preforkd-lighttpd:latest   # the name examples/kubernetes/deployment.yaml uses
ctr=preforkd-system-test-$$
runtime=(--runtime runc)
ulimits=(--ulimit nofile=20000:20000 --ulimit nproc=32768:32768)
work=$(mktemp -d /tmp/preforkd-podman.XXXXXX)
client_pid=""
kube_played=false
failed=0
t_all=$(date +%s.%N)

# kube play has no --runtime/--ulimit: the same settings through a containers.conf of ours.
cat > "$work/containers.conf" <<'EOF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
EOF
export CONTAINERS_CONF=$work/containers.conf

cleanup() {
  set +e
  [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
  podman rm -f -t 0 "$ctr" >/dev/null 2>&1
  $kube_played && podman kube down "$work/deployment.yaml" >/dev/null 2>&1
  podman image rm -f "$tag" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

t0=0
step() { t0=$(date +%s.%N); printf 'podman: %s ... ' "$1"; }
elapsed() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(date +%s.%N)"; }
ok() { echo "ok ($(elapsed "$t0") s)${1:+: $1}"; }
fail() { echo "FAIL ($(elapsed "$t0") s): $1"; failed=$((failed + 1)); }
# wait_for SECONDS COMMAND...: until COMMAND succeeds, polling; no fixed sleep decides anything
wait_for() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# --- the base image: a minbase rootfs with what the .deb and the example need at run time
# Depends: of the .deb (first of each alternative, no versions), lighttpd for the example,
# procps for `ps` in the checks. Cached under CACHE_DIR/podman, keyed by that list.
deps=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep -v '^$' | sort -u | paste -sd, -)
include="$deps,lighttpd,procps"
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
stamp=$(printf '%s\n' "bookworm minbase $mirror $include v1" | sha256sum | cut -c1-16)
rootfs_dir=$cache_dir/podman
step "base rootfs (mmdebstrap minbase, --include=$include)"
if [ "$(cat "$rootfs_dir/stamp" 2>/dev/null)" = "$stamp" ] && [ -d "$rootfs_dir/rootfs/usr" ]; then
  ok "cached in $rootfs_dir/rootfs"
else
  rm -rf "$rootfs_dir"
  mkdir -p "$rootfs_dir"
  if mmdebstrap --quiet --variant=minbase --include="$include" bookworm "$rootfs_dir/rootfs" "$mirror" \
       > "$work/mmdebstrap.log" 2>&1; then
    echo "$stamp" > "$rootfs_dir/stamp"   # written last: a half-made rootfs is never reused
    ok "made $rootfs_dir/rootfs ($(du -sm "$rootfs_dir/rootfs" | cut -f1) MB)"
  else
    fail "mmdebstrap failed:"; tail -n 20 "$work/mmdebstrap.log"; exit 1
  fi
fi

step "import $base"
have=$(podman image inspect --format '{{index .Labels "preforkd.stamp"}}' "$base" 2>/dev/null || true)
if [ "$have" = "$stamp" ]; then
  ok "already imported with stamp $stamp"
else
  tar --numeric-owner -C "$rootfs_dir/rootfs" -c . \
    | podman import --change "LABEL preforkd.stamp=$stamp" - "$base" > "$work/import.log" 2>&1
  ok "imported (stamp $stamp)"
fi

# --- build examples/docker: the .deb copied into a copy of the context; no network at all
step "podman build examples/docker (--build-arg BASE=$base --pull=never --network none)"
cp -r "$repo/examples/docker" "$work/context"
cp "$deb" "$work/context/"
# --format docker: the OCI image format has no HEALTHCHECK; podman drops it with a warning.
if podman build --pull=never --network none --format docker "${runtime[@]}" "${ulimits[@]}" \
     --build-arg BASE="$base" -t "$tag" "$work/context" > "$work/build.log" 2>&1; then
  ok "$tag"
else
  fail "build failed:"; tail -n 30 "$work/build.log"; exit 1
fi

# --- run it
port=$(free_port)
step "podman run -p 127.0.0.1:$port:8080"
# (podman logs "unable to get systemd connection to add healthchecks": no systemd on the
# host runs the healthcheck timer; the checks below run it by hand.)
podman run -d --name "$ctr" "${runtime[@]}" "${ulimits[@]}" -p "127.0.0.1:$port:8080" "$tag" > "$work/run.log" 2>&1
if wait_for 60 curl -fsS --max-time 2 "http://127.0.0.1:$port/"; then
  ok "$(curl -fsS --max-time 2 "http://127.0.0.1:$port/")"
else
  fail "no answer on 127.0.0.1:$port within 60 s"; podman logs "$ctr" | tail -n 20; exit 1
fi

step "preforkd is PID 1"
comm=$(podman exec "$ctr" cat /proc/1/comm)
if [ "$comm" = "preforkd" ]; then ok "/proc/1/comm = $comm"; else fail "PID 1 is $comm"; fi

# An orphan: the shell started by exec forks a sleep and exits; the sleep is re-parented
# to the namespace's init (preforkd) and must be reaped when it exits.
step "PID 1 reaps an orphan"
podman exec "$ctr" sh -c 'sleep 1.5 >/dev/null 2>&1 & echo $! > /tmp/orphan'
orphan=$(podman exec "$ctr" cat /tmp/orphan)
ppid=$(podman exec "$ctr" ps -o ppid= -p "$orphan" | tr -d ' ' || true)
gone() { ! podman exec "$ctr" ps -o pid= -p "$orphan" >/dev/null; }
if [ "$ppid" = 1 ] && wait_for 20 gone; then
  zombies=$(podman exec "$ctr" ps -eo stat=,pid=,comm= | awk '$1 ~ /^Z/' || true)
  if [ -z "$zombies" ]; then ok "orphan $orphan (ppid 1) reaped; no zombie in ps"; else fail "zombies: $zombies"; fi
else
  fail "orphan $orphan: ppid '$ppid', still there or a zombie: $(podman exec "$ctr" ps -o stat=,pid= -p "$orphan" || true)"
fi

step "HEALTHCHECK (preforkctl check) turns healthy"
hc=$(podman inspect --format '{{json .Config.Healthcheck}}' "$ctr")
# No systemd on the host runs podman's healthcheck timer: run the check as the timer would.
if wait_for 60 podman healthcheck run "$ctr"; then
  status=$(podman inspect --format '{{.State.Health.Status}}' "$ctr")
  if [ "$status" = healthy ]; then ok "status $status; $hc"; else fail "healthcheck run passed but status is $status"; fi
else
  fail "never healthy: $(podman inspect --format '{{json .State.Health}}' "$ctr")"
fi

# --- graceful stop under a client: a slow download in flight, and fresh connections
step "podman stop -t 40 under a client"
head -c $((8 * 1024 * 1024)) /dev/zero > "$work/big"
podman cp "$work/big" "$ctr:/srv/www/big" >/dev/null
python3 "$repo/tests/system/stop_client.py" "$port" "$work/stop_began" > "$work/client.out" 2>&1 &
client_pid=$!
wait_for 20 test -s "$work/client.out"   # the client reports once its slow request is in flight
date +%s.%N > "$work/stop_began"
t_stop=$(date +%s.%N)
podman stop -t 40 "$ctr" > "$work/stop.log" 2>&1   # (and the healthcheck timer's "no systemd")
stop_s=$(elapsed "$t_stop")
wait "$client_pid" || true
client_pid=""
exit_code=$(podman inspect --format '{{.State.ExitCode}}' "$ctr")
report=$(tail -n1 "$work/client.out")
if [ "$exit_code" = 0 ] && python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) < 40 else 1)" "$stop_s" \
   && grep -q '^in-flight failed 0 ' <<<"$report"; then
  ok "stopped in $stop_s s (limit 40), exit code $exit_code; $report"
else
  fail "stop took $stop_s s, exit code $exit_code; $(cat "$work/client.out")"
  podman logs "$ctr" 2>&1 | tail -n 15
fi
podman rm -f "$ctr" >/dev/null 2>&1

# --- podman kube play examples/kubernetes
step "podman kube play examples/kubernetes/deployment.yaml"
# podman 4.3 plays each replica as a pod and publishes containerPort on the host (all
# addresses) when hostPort is unset: one replica, its port on 127.0.0.1:kport.
kport=$(free_port)
sed -e 's/replicas: 2/replicas: 1/' \
    -e "s/containerPort: 8080 }/containerPort: 8080, hostPort: $kport, hostIP: 127.0.0.1 }/" \
    "$repo/examples/kubernetes/deployment.yaml" > "$work/deployment.yaml"
grep -q "hostPort: $kport" "$work/deployment.yaml" || { echo "podman.sh: FAIL: cannot adapt deployment.yaml"; exit 1; }
kube_played=true
if podman kube play "$work/deployment.yaml" > "$work/kube.log" 2> "$work/kube.err"; then
  ok "$(tr '\n' ' ' < "$work/kube.log" | cut -c1-200)"
  grep -v -e 'systemd connection' -e 'connect to syslog' "$work/kube.err" | sed 's/^/podman:   kube play: /' || true
else
  fail "kube play failed: $(cat "$work/kube.log")"; exit 1
fi
kctr=$(podman ps --filter label=app=web --format '{{.Names}}' | grep -v -- -infra | head -n1 || true)
pods=$(podman pod ps --filter name=web --format '{{.Name}}' | paste -sd' ' -)
echo "podman: kube play made pod(s): $pods; container $kctr"

step "kube: the liveness probe became the container's healthcheck"
khc=$(podman inspect --format '{{json .Config.Healthcheck}}' "$kctr")
if grep -q 'status' <<<"$khc"; then ok "$khc"; else fail "no healthcheck from livenessProbe: $khc"; fi
step "kube: the probe passes (podman healthcheck run)"
if wait_for 60 podman healthcheck run "$kctr"; then
  ok "status $(podman inspect --format '{{.State.Health.Status}}' "$kctr")"
else
  fail "the liveness healthcheck never passed: $(podman inspect --format '{{json .State.Health}}' "$kctr")"
fi
step "kube: the readiness command (preforkctl check) passes in the pod"
if wait_for 60 podman exec "$kctr" preforkctl --config /etc/preforkd/app.toml check; then
  ok "$(podman exec "$kctr" preforkctl --config /etc/preforkd/app.toml check 2>&1 | head -n1)"
else
  fail "$(podman exec "$kctr" preforkctl --config /etc/preforkd/app.toml check 2>&1 | head -n1)"
fi
step "kube: served on 127.0.0.1:$kport (hostPort)"
if wait_for 30 curl -fsS --max-time 2 "http://127.0.0.1:$kport/"; then
  ok "$(curl -fsS --max-time 2 "http://127.0.0.1:$kport/")"
else
  fail "no answer on 127.0.0.1:$kport"
fi
echo "podman: kube: stop timeout $(podman inspect --format '{{.Config.StopTimeout}}' "$kctr") s," \
  "memory limit $(podman inspect --format '{{.HostConfig.Memory}}' "$kctr") B," \
  "cpu quota $(podman inspect --format '{{.HostConfig.CpuQuota}}/{{.HostConfig.CpuPeriod}}' "$kctr")," \
  "workers $(podman exec "$kctr" preforkctl --config /etc/preforkd/app.toml status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d.get("workers", [])))' 2>/dev/null || echo '?')"

step "podman kube down"
if podman kube down "$work/deployment.yaml" > "$work/down.log" 2>&1; then
  kube_played=false
  left=$(podman ps -a --filter label=app=web --format '{{.Names}}' | paste -sd' ' -)
  if [ -z "$left" ]; then ok "pod removed"; else fail "left behind: $left"; fi
else
  fail "$(cat "$work/down.log")"
fi

echo "podman: $failed failed, total $(elapsed "$t_all") s"
[ "$failed" -eq 0 ]
