#!/usr/bin/env bash
# Builds the engine and its C++ tests under ASan+UBSan (build-asan, all tests
# through ctest) and under TSan (build-tsan, the tests that cross threads),
# runs them, and ends with "N passed, N failed" (one per test binary per
# sanitizer). Exit status is non-zero on any failure or sanitizer report.
#
# Env: SANITIZE_BUILD_ROOT (default: repo root) holds build-asan/build-tsan;
#      SANITIZE_JOBS (default 2); CC/CXX pick the compiler (default: system).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ENGINE="$ROOT/vendor/wsengine"
BUILD_ROOT=${SANITIZE_BUILD_ROOT:-$ROOT}
JOBS=${SANITIZE_JOBS:-2}
# TSan runs every test by default (TSAN_TESTS="a b" narrows it): engine_test
# is the one with IO threads and sends from several threads; the others are
# cheap and also touch shared state (the pooled CSPRNG, OpenSSL).
TSAN_TESTS=${TSAN_TESTS:-}
# One test binary gets this many seconds (sanitized engine_test is slow).
TEST_TIMEOUT=${SANITIZE_TEST_TIMEOUT:-600}

passed=0
failed=0
failures=()

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
# No LeakSanitizer suppression: the IO thread pool (io_loop.cc gPool) is
# never freed by design but stays reachable from a global, so LSan does not
# count it as a leak.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$ROOT/test/sanitize/tsan.supp"

build() {  # dir sanitize
  local dir=$1 san=$2
  cmake -S "$ENGINE" -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DWSENGINE_TESTS=ON \
    "-DWSENGINE_SANITIZE=$san" >"$dir.configure.log" 2>&1 &&
    cmake --build "$dir" -j "$JOBS" >"$dir.build.log" 2>&1
}

run_one() {  # label dir test
  local label=$1 dir=$2 t=$3 log
  log="$dir/$t.sanitize.log"
  if ctest --test-dir "$dir" -R "^$t\$" --output-on-failure --timeout "$TEST_TIMEOUT" >"$log" 2>&1 &&
    ! grep -qE "ERROR: (Address|Leak|Thread)Sanitizer|WARNING: ThreadSanitizer|runtime error:" "$log"; then
    echo "OK   $label $t"
    passed=$((passed + 1))
  else
    echo "FAIL $label $t (log: $log)"
    tail -n 60 "$log"
    failed=$((failed + 1))
    failures+=("$label $t")
  fi
}

start=$(date +%s)
mkdir -p "$BUILD_ROOT"

ASAN_DIR="$BUILD_ROOT/build-asan"
echo "== ASan+UBSan build ($ASAN_DIR)"
if build "$ASAN_DIR" "address;undefined"; then
  for t in $(ctest --test-dir "$ASAN_DIR" -N | sed -n 's/^ *Test *#[0-9]*: //p'); do
    run_one asan+ubsan "$ASAN_DIR" "$t"
  done
else
  echo "FAIL asan+ubsan build (log: $ASAN_DIR.build.log)"
  tail -n 40 "$ASAN_DIR.configure.log" "$ASAN_DIR.build.log" 2>/dev/null
  failed=$((failed + 1))
  failures+=("asan build")
fi

TSAN_DIR="$BUILD_ROOT/build-tsan"
echo "== TSan build ($TSAN_DIR)"
if build "$TSAN_DIR" "thread"; then
  for t in ${TSAN_TESTS:-$(ctest --test-dir "$TSAN_DIR" -N | sed -n 's/^ *Test *#[0-9]*: //p')}; do
    run_one tsan "$TSAN_DIR" "$t"
  done
else
  echo "FAIL tsan build (log: $TSAN_DIR.build.log)"
  tail -n 40 "$TSAN_DIR.configure.log" "$TSAN_DIR.build.log" 2>/dev/null
  failed=$((failed + 1))
  failures+=("tsan build")
fi

echo "sanitizers: $(($(date +%s) - start))s${failures:+; failed: ${failures[*]}}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
