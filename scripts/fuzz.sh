#!/bin/sh
# libFuzzer targets of the C core (tests/fuzz/fuzz_<name>.c, corpus in
# tests/fuzz/corpus_<name>/), built with clang into build-fuzz/.
#   scripts/fuzz.sh build           configure and build every target
#   scripts/fuzz.sh run [SECONDS]   fuzz each target for SECONDS (default 60);
#                                   new inputs go to build-fuzz/corpus_<name>/,
#                                   crashes to build-fuzz/artifacts/
#   scripts/fuzz.sh regress [FILE]  run each target once over every input of
#                                   its corpus (no fuzzing: seconds); one pass
#                                   or fail per target, "passed failed 0" to FILE
# Minimise a grown corpus into the repository's with
#   build-fuzz/fuzz_NAME -merge=1 tests/fuzz/corpus_NAME build-fuzz/corpus_NAME
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
mode=${1:-run}
out=build-fuzz
cc=${FUZZ_CC:-clang-14}

targets() {
  for f in tests/fuzz/fuzz_*.c; do basename "$f" .c | sed 's/^fuzz_//'; done
}

build() {
  cmake -S . -B "$out" -DCMAKE_C_COMPILER="$cc" -DPROVISION_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug > "$out.cmake.log" 2>&1 &&
    cmake --build "$out" -j2 -- --no-print-directory -s $(for t in $(targets); do echo "fuzz_$t"; done) \
      >> "$out.cmake.log" 2>&1
  rc=$?
  if [ $rc != 0 ]; then cat "$out.cmake.log" >&2; echo "fuzz: build failed" >&2; fi
  rm -f "$out.cmake.log"
  return $rc
}

case "$mode" in
  build)
    build
    ;;
  run)
    seconds=${2:-60}
    build || exit 1
    mkdir -p "$out/artifacts"
    failed=0
    for t in $(targets); do
      mkdir -p "$out/corpus_$t"
      echo "fuzz: $t for ${seconds}s"
      if ! "$out/fuzz_$t" -max_total_time="$seconds" -max_len=8192 -timeout=20 -rss_limit_mb=2048 \
          -print_final_stats=1 -artifact_prefix="$out/artifacts/${t}-" \
          "$out/corpus_$t" "tests/fuzz/corpus_$t" > "$out/fuzz_$t.log" 2>&1; then
        failed=$((failed + 1))
        echo "fuzz: $t FAILED (log: $out/fuzz_$t.log)"
        tail -n 40 "$out/fuzz_$t.log"
      else
        grep -E "^stat::number_of_executed_units|^stat::new_units_added" "$out/fuzz_$t.log" | tr '\n' ' '
        echo
      fi
    done
    echo "fuzz: $(targets | wc -l) targets, $failed failed"
    [ "$failed" = 0 ]
    ;;
  regress)
    counts=${2:-}
    passed=0; failed=0
    if build; then
      for t in $(targets); do
        # every file of the corpus, each run once
        if "$out/fuzz_$t" -runs=1 tests/fuzz/corpus_$t/* > "$out/regress_$t.log" 2>&1; then
          passed=$((passed + 1)); echo "fuzz regression: $t ok ($(ls tests/fuzz/corpus_$t | wc -l) inputs)"
        else
          failed=$((failed + 1)); echo "fuzz regression: $t FAILED"; tail -n 30 "$out/regress_$t.log"
        fi
      done
    else
      failed=$(targets | wc -l)
    fi
    echo "fuzz regression: $passed passed, $failed failed"
    [ -n "$counts" ] && echo "$passed $failed 0" > "$counts"
    [ "$failed" = 0 ]
    ;;
  *)
    echo "usage: scripts/fuzz.sh build | run [SECONDS] | regress [COUNTS_FILE]" >&2
    exit 2
    ;;
esac
