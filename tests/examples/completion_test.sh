#!/usr/bin/env bash
# preforkctl's bash completion: commands, options, and the slots of a running daemon.
# usage: completion_test.sh PREFORKD PREFORKCTL DEMO_WORKER
set -uo pipefail
preforkd=$1 preforkctl=$2 demo=$3
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=$(mktemp -d /tmp/preforkd-completion-XXXXXX)
daemon=""
cleanup() {
  [ -n "$daemon" ] && kill -KILL "$daemon" 2>/dev/null && wait "$daemon" 2>/dev/null
  rm -rf "$dir"
}
trap cleanup EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && cat "$dir/log"; exit 1; }

[ -f /usr/share/bash-completion/bash_completion ] || fail "bash-completion is not installed (scripts/install-deps.sh installs it)"
mkdir -p "$dir/bin" && ln -s "$preforkctl" "$dir/bin/preforkctl"
export PATH="$dir/bin:$PATH"
# shellcheck disable=SC1091
source /usr/share/bash-completion/bash_completion
# shellcheck disable=SC1091
source "$src/contrib/completion/preforkctl.bash"

complete_words() {  # the words typed so far, the last one being completed
  COMP_WORDS=("$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMP_LINE="${COMP_WORDS[*]}"
  COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  _preforkctl preforkctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  echo "${COMPREPLY[*]}"
}

got=$(complete_words preforkctl "")
[ "$got" = "status reload scale restart stop check upgrade logs" ] || fail "commands: got '$got'"
got=$(complete_words preforkctl --js)
[ "$got" = "--json" ] || fail "options: got '$got'"
got=$(complete_words preforkctl re)
[ "$got" = "reload restart" ] || fail "commands starting with re: got '$got'"

# A daemon with three workers: restart completes to all and the slots 0 1 2.
port=$((20000 + RANDOM % 20000))
cat > "$dir/app.toml" <<TOML
[worker]
command = ["$demo"]
count = 3
ready = "immediate"
[[listen]]
address = "127.0.0.1:$port"
TOML
RUNTIME_DIRECTORY=$dir "$preforkd" --config "$dir/app.toml" >"$dir/log" 2>&1 &
daemon=$!
for _ in $(seq 300); do
  n=$(preforkctl --socket "$dir/app.sock" status --json 2>/dev/null | grep -o '"state": *"ready"' | wc -l)
  [ "${n:-0}" -ge 3 ] && break
  sleep 0.1
done
got=$(complete_words preforkctl --socket "$dir/app.sock" restart "")
[ "$got" = "all 0 1 2" ] || fail "slots: got '$got'"
got=$(complete_words preforkctl --socket "$dir/nothing.sock" restart "")
[ "$got" = "all" ] || fail "slots without a daemon: got '$got'"
echo "1 passed, 0 failed"
