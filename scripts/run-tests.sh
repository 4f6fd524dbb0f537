#!/bin/sh
# The whole suite: C unit tests (ctest), busted specs under Lua 5.4, the C
# core's specs again under valgrind and AddressSanitizer/UBSan, then each
# libFuzzer target once over its corpus (one pass or fail per target).
# Ends with one line "N passed, N failed, N skipped" over all four.
set -u
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

ctest --test-dir "$build" --output-on-failure 2>&1 | tee "$tmp/ctest.log"
c_total=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\2/p' "$tmp/ctest.log")
c_failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of \([0-9]*\).*/\1/p' "$tmp/ctest.log")
c_total=${c_total:-0}; c_failed=${c_failed:-0}
if [ "$c_total" = 0 ] && ! grep -q "No tests were found" "$tmp/ctest.log"; then c_failed=1; fi

PROVISION_TEST_COUNTS="$tmp/busted.counts" PROVISION_BUILD="$top/$build" \
  lua5.4 /usr/bin/busted --lua=lua5.4 -o tests/support/summary.lua tests/spec
if [ -s "$tmp/busted.counts" ]; then
  read -r b_passed b_failed b_skipped < "$tmp/busted.counts"
else
  b_passed=0; b_failed=1; b_skipped=0   # busted died before its summary
fi

sh scripts/memcheck.sh "$tmp/mem.counts"
if [ -s "$tmp/mem.counts" ]; then
  read -r m_passed m_failed _ < "$tmp/mem.counts"
else
  m_passed=0; m_failed=1
fi

sh scripts/fuzz.sh regress "$tmp/fuzz.counts"
if [ -s "$tmp/fuzz.counts" ]; then
  read -r f_passed f_failed _ < "$tmp/fuzz.counts"
else
  f_passed=0; f_failed=1
fi

passed=$((c_total - c_failed + b_passed + m_passed + f_passed))
failed=$((c_failed + b_failed + m_failed + f_failed))
echo "$passed passed, $failed failed, $b_skipped skipped"
[ "$failed" = 0 ]
