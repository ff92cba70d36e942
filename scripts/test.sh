#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what is missing, then builds and runs every test through ctest:
#   0. the include graph against the layers (scripts/check_layers.py; ctest runs it too);
#   1. release build with -Werror: unit and integration tests;
#   (clang build with -Werror: unit tests;)
#   2. ASan+UBSan build: unit and integration tests;
#   3. TSan build: the cross-thread unit tests and the multi-shard fan-out, shutdown,
#      history (joins across shards) and scale-out (Redis links, wildcards routed
#      between shards, Redis Cluster) tests;
#   4. libFuzzer (clang-14) build: each fuzz target for FUZZ_SECONDS (default 30);
#      a crash, leak or sanitizer report fails the run.
# RC_QUICK=1 runs only step 1.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc)
status=0
/usr/bin/python3 scripts/check_layers.py || status=1

run_ctest() {
  local dir=$1
  shift
  echo "== ctest in $dir $*"
  ctest --test-dir "$dir" --output-on-failure "$@" || status=1
}

scripts/build.sh build -DCMAKE_BUILD_TYPE=Release -DRC_WERROR=ON
run_ctest build -j "$jobs" --schedule-random

if [ "${RC_QUICK:-0}" != 1 ]; then
  # clang must build it warning-free too (it runs the unit tests as well).
  CC=clang-14 scripts/build.sh build-clang -DCMAKE_BUILD_TYPE=Release -DRC_WERROR=ON
  run_ctest build-clang -L unit
  scripts/build.sh build-asan -DCMAKE_BUILD_TYPE=Debug -DRC_ASAN=ON -DRC_WERROR=ON
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-asan -j "$jobs"
  scripts/build.sh build-tsan -DCMAKE_BUILD_TYPE=Debug -DRC_TSAN=ON -DRC_WERROR=ON
  TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
    run_ctest build-tsan -L threads
  TSAN_OPTIONS=halt_on_error=1 run_ctest build-tsan -R 'integration_(fanout|shutdown|history|scaleout|scaleout_wildcards|scaleout_cluster)$'
  CC=clang-14 scripts/build.sh build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRC_FUZZ=ON \
    -DRC_FUZZ_SECONDS="${FUZZ_SECONDS:-30}"
  run_ctest build-fuzz -j "$jobs"
fi
exit $status
