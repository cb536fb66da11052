#!/usr/bin/env bash
# Builds the libFuzzer harnesses with clang and runs each for a bounded time
# (FUZZ_SECONDS, default 20), printing how many inputs it ran. Exits non-zero on a crash;
# the crashing input is left in build-fuzz/ (crash-*) and printed by libFuzzer.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-20}"
build=build-fuzz
CC=clang CXX=clang++ cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPREFORKD_FUZZ=ON \
  -DPREFORKD_TESTS=OFF ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
cmake --build "$build" -j2 --target fuzz_config fuzz_control_request fuzz_notify_message
status=0
for target in config control_request notify_message; do
  work="$build/corpus/$target"
  mkdir -p "$work"
  max_len=4096
  [ "$target" = config ] && max_len=262144
  log="$build/fuzz_$target.log"
  if (cd "$build" && "./fuzz/fuzz_$target" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 "corpus/$target" "../fuzz/corpus/$target") >"$log" 2>&1; then
    runs=$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')
    echo "fuzz_$target: ${runs:-?} executions in ${seconds}s, no crash"
  else
    echo "fuzz_$target: FAILED"
    grep -E 'ERROR|SUMMARY|Test unit written|==[0-9]+==' "$log" | head -20
    status=1
  fi
done
exit $status
