#!/usr/bin/env bash
# Every Catch2 test case is registered with ctest under its whole name, so that each ctest
# entry runs the test case it names. catch_discover_tests cuts a name at ';', and Catch2
# reads the name back as a test spec, where '*' is a wildcard, ',' separates patterns,
# '[' ']' are tags, '"' quotes, '\' escapes and a leading '~', '#' or "exclude:" mean
# something else: a name with one of them registers entries that select no test case (run
# with `-w NoTests`, such an entry fails; without it, Catch2 prints "No tests ran" and
# passes). The same characters break `behaviour_tests "<name>"` typed by hand.
# usage: test_names.sh BUILD_DIR BINARY PREFIX [BINARY PREFIX ...]
set -euo pipefail
build=$1
shift
status=0
while [ $# -ge 2 ]; do
  binary=$1 prefix=$2
  shift 2
  # Catch2 v2 exits with the number of test cases listed (at most 255): not an error.
  names=$("$binary" --list-test-names-only || true)
  if [ -z "$names" ]; then
    echo "$(basename "$binary"): lists no test case"
    status=1
    continue
  fi
  bad=$(printf '%s\n' "$names" | grep -E '[][;*,\\"]|^[~# ]|^exclude:| $' || true)
  if [ -n "$bad" ]; then
    echo "$(basename "$binary"): test case names with a character that breaks registration" \
         "(; * , [ ] \" \\ or a leading ~ # or space):"
    printf '  %s\n' "$bad"
    status=1
  fi
  listed=$(printf '%s\n' "$names" | grep -c . || true)
  registered=$(cd "$build" && ctest -N | awk -v p="$prefix" \
    '/^ *Test +#[0-9]+: / { sub(/^ *Test +#[0-9]+: /, ""); if (index($0, p) == 1) n++ } END { print n + 0 }')
  echo "$(basename "$binary"): $listed test cases, $registered ctest entries '$prefix…'"
  if [ "$listed" != "$registered" ]; then
    echo "  the counts differ: a name was cut or merged when it was registered"
    status=1
  fi
done
exit $status
