#!/usr/bin/env bash
# Balanced accept with a real synchronous server: gunicorn's sync worker (--workers 1 in
# each of 4 preforkd slots), wrk -t1 -c3, a fresh connection per request, 90 % /?ms=2 and
# 10 % /?ms=50 (the issue's mix), for each listener choice: hash, shared, load (eBPF where
# it loads) and load with preforkd.ebpf = "off" (the sampler). Prints req/s, p50, p99.
# Usage: tests/bench/gunicorn_balance.sh [build dir] [rounds] [seconds]
# Needs gunicorn, wrk and curl (scripts/install-deps.sh --bench). Ports 127.0.0.1:19101-19104.
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
rounds=${2:-2}
seconds=${3:-5}
dir=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

cat > "$dir/app.py" <<'PY'
import time
from urllib.parse import parse_qs
def app(environ, start_response):
    ms = int(parse_qs(environ.get("QUERY_STRING", "")).get("ms", ["0"])[0])
    time.sleep(ms / 1000.0)
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "3")])
    return [b"ok\n"]
PY
cat > "$dir/mix.lua" <<'LUA'
local n = 0
request = function()
  n = n + 1
  local path = "/?ms=2"
  if n % 10 == 0 then path = "/?ms=50" end
  return wrk.format("GET", path, {["Connection"] = "close"})
end
LUA

modes=(hash shared load sampler)
port=19100
for mode in "${modes[@]}"; do
  port=$((port + 1))
  listen_extra="" daemon_extra=""
  case $mode in
    hash) listen_extra='balance = "hash"' ;;
    shared) listen_extra='mode = "shared"' ;;
    sampler) daemon_extra='ebpf = "off"' ;;
  esac
  cat > "$dir/$mode.toml" <<TOML
[preforkd]
control_socket = "$dir/$mode.sock"
$daemon_extra
[worker]
command = ["$(command -v gunicorn)", "--worker-class", "sync", "--workers", "1", "--chdir", "$dir", "app:app"]
count = 4
ready = "notify"
[[listen]]
address = "127.0.0.1:$port"
$listen_extra
TOML
done

echo "gunicorn sync x 4 slots, wrk -t1 -c3 -d${seconds}s, 90 % 2 ms / 10 % 50 ms; load average $(cut -d' ' -f1 /proc/loadavg)"
for round in $(seq 1 "$rounds"); do
  port=19100
  for mode in "${modes[@]}"; do
    port=$((port + 1))
    "$build/preforkd" --config "$dir/$mode.toml" > "$dir/$mode.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 200); do
      curl -s -m1 "http://127.0.0.1:$port/?ms=0" > /dev/null && break
      sleep 0.1
    done
    out=$(wrk -t1 -c3 -d"${seconds}s" --latency -s "$dir/mix.lua" "http://127.0.0.1:$port/" 2>&1)
    printf 'round %d  %-8s %8s req/s  p50 %9s  p99 %9s %s\n' "$round" "$mode" \
      "$(awk '/Requests\/sec/ {print $2}' <<< "$out")" "$(awk '$1 == "50%" {print $2}' <<< "$out")" \
      "$(awk '$1 == "99%" {print $2}' <<< "$out")" "$(grep -E 'Socket errors|Non-2xx' <<< "$out" || true)"
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=""
  done
done
