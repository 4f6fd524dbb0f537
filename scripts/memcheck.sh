#!/bin/sh
# C core memory checks, run by `make test` (and alone as `make memcheck`):
#   1. valgrind on a Debug build: the core's busted specs, no errors, no leaks
#   2. AddressSanitizer + UBSan build: the same specs, no reports
# Prints "memcheck: N passed, N failed" and writes the counts to $1 if given.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
counts=${1:-}
specs="tests/spec/core_json_spec.lua tests/spec/core_codec_spec.lua tests/spec/core_http_spec.lua tests/spec/core_async_spec.lua tests/spec/core_stream_spec.lua tests/spec/core_hardening_spec.lua tests/spec/core_lazy_spec.lua"
passed=0; failed=0
log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT

run() { # label, command...
  label=$1; shift
  if "$@" > "$log/$label.out" 2>&1; then
    passed=$((passed + 1)); echo "memcheck: $label ok"
  else
    failed=$((failed + 1)); echo "memcheck: $label FAILED"; tail -n 40 "$log/$label.out"
  fi
}

cmake -S . -B build-debug -DCMAKE_BUILD_TYPE=Debug > /dev/null &&
  cmake --build build-debug -j2 -- --no-print-directory -s > /dev/null || exit 1
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPROVISION_SANITIZE=ON > /dev/null &&
  cmake --build build-asan -j2 -- --no-print-directory -s > /dev/null || exit 1
cc -shared -fPIC -o build-asan/nodlclose.so tests/memcheck/nodlclose.c || exit 1

for spec in $specs; do
  name=$(basename "$spec" _spec.lua)
  run "valgrind-$name" valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect \
    --error-exitcode=9 --keep-debuginfo=yes \
    lua5.4 /usr/bin/busted --cpath="build-debug/?.so" -o tests/support/summary.lua "$spec"
  run "asan-$name" env LD_PRELOAD="$(gcc -print-file-name=libasan.so):$top/build-asan/nodlclose.so" \
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=9 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    timeout 600 lua5.4 /usr/bin/busted --cpath="build-asan/?.so" -o tests/support/summary.lua "$spec"
done

echo "memcheck: $passed passed, $failed failed"
[ -n "$counts" ] && echo "$passed $failed 0" > "$counts"
[ "$failed" = 0 ]
