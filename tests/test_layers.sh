#!/usr/bin/env bash
# The layers and subsystems of ARCHITECTURE.md, kept true: every `#include <preforkd/...>` in
# src/ and include/ points down or sideways, never back up. Lower first:
#   core  <-  os  <-  ctl (preforkctl: core and os only)
#                 <-  daemon: log <- uv <- supervision <- balance <- watch <- operations
#                             <- endpoints <- upgrade <- master
# A file may include its own layer and any lower one; ctl and the daemon never include each
# other. Fails listing each include that runs back up.
# usage: test_layers.sh SOURCE_DIR
set -euo pipefail
root=$1
if [ ! -d "$root/src/daemon" ]; then
  echo "test_layers.sh: no $root/src/daemon: give the source directory"
  exit 2
fi
daemon_order=(log uv supervision balance watch operations endpoints upgrade master)

# The layer of a path below src/ or include/preforkd/ (core, os, ctl, bpf, daemon/<sub>, top).
layer_of() {
  local p=${1#src/}
  p=${p#include/preforkd/}
  case $p in
    daemon/*/*) local rest=${p#daemon/}; echo "daemon/${rest%%/*}" ;;
    */*) echo "${p%%/*}" ;;
    *) echo top ;;  # version.hpp and the like: anyone may include them
  esac
}

# A rank per layer: a file may include layers of rank <= its own, within its branch.
rank_of() {
  case $1 in
    top) echo 0 ;;
    core | bpf) echo 1 ;;
    os) echo 2 ;;
    ctl) echo 3 ;;
    daemon/*)
      local sub=${1#daemon/} i
      for i in "${!daemon_order[@]}"; do
        if [ "${daemon_order[$i]}" = "$sub" ]; then echo $((10 + i)); return; fi
      done
      echo unknown ;;
    *) echo unknown ;;
  esac
}

bad=0
while IFS= read -r line; do
  file=${line%%:*}
  target=$(sed -E 's/.*#include <preforkd\/([^>]+)>.*/\1/' <<<"${line#*:}")
  from=$(layer_of "$file")
  to=$(layer_of "include/preforkd/$target")
  rf=$(rank_of "$from")
  rt=$(rank_of "$to")
  if [ "$rf" = unknown ] || [ "$rt" = unknown ]; then
    echo "$file: '$target': a layer ARCHITECTURE.md does not name ($from -> $to)"
    bad=1
    continue
  fi
  crosses=0
  # preforkctl and the daemon are two programs on the same lower layers.
  if [ "$from" = ctl ] && [[ $to == daemon/* ]]; then crosses=1; fi
  if [[ $from == daemon/* ]] && [ "$to" = ctl ]; then crosses=1; fi
  if [ "$crosses" = 1 ] || [ "$rt" -gt "$rf" ]; then
    echo "$file: includes <preforkd/$target>: $from may not include $to"
    bad=1
  fi
done < <(cd "$root" && grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' '^#include <preforkd/' src include | sed -E 's/^([^:]+):[0-9]+:/\1:/')
if [ "$bad" != 0 ]; then
  echo "an include runs back up: move the code down, or pass what it needs from above (ARCHITECTURE.md)"
  exit 1
fi
echo "every include points down or sideways"
