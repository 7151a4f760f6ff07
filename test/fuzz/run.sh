#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan+UBSan, build dir build-fuzz) and
# runs each for FUZZ_SECONDS (default 60) over a scratch copy of its seed
# corpus, so the committed corpus never grows. Prints OK/FAIL per target and
# ends with "N passed, N failed"; exit status non-zero on any crash.
#
# Env: FUZZ_SECONDS, FUZZ_BUILD_DIR (default <repo>/build-fuzz), FUZZ_JOBS
# (build parallelism, default 2), FUZZ_TARGETS (default: all fuzz_*.cc),
# FUZZ_MAX_LEN (default 8192), FUZZ_LARGE (targets run a second time with
# inputs up to FUZZ_LARGE_LEN, default 65536: default fuzz_receiver, whose
# frames of 32 KiB and more are read in place and complete only past 8 KiB;
# "" for none).
# Crash inputs are kept in test/fuzz/artifacts/<target>/ (git-ignored).
set -u
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FUZZ_DIR="$ROOT/test/fuzz"
BUILD=${FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-2}
# Inputs are cut to this size (the 64-bit-length frame seed is longer: its
# header and first 8 KiB still drive that path); big inputs cost throughput.
MAX_LEN=${FUZZ_MAX_LEN:-8192}
TARGETS=${FUZZ_TARGETS:-$(cd "$FUZZ_DIR" && ls fuzz_*.cc | sed 's/\.cc$//')}

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"

start=$(date +%s)
# A fresh machine lacks clang and libFuzzer's runtime: install them from the
# distribution when we can (root with apt), as CI runs as root.
if ! command -v clang++ >/dev/null || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing clang and libclang-rt-14-dev"
    (apt-get update && apt-get install -y clang libclang-rt-14-dev) >/tmp/fuzz-apt.log 2>&1 ||
      tail -n 20 /tmp/fuzz-apt.log
  fi
fi
if ! command -v clang++ >/dev/null; then
  echo "FAIL clang++ not found (apt-get install -y clang libclang-rt-14-dev)"
  echo "0 passed, 1 failed"
  exit 1
fi
mkdir -p "$BUILD"
if ! CC=clang CXX=clang++ cmake -S "$ROOT/vendor/wsengine" -B "$BUILD" -G Ninja \
      -DWSENGINE_FUZZ=ON -DWSENGINE_TESTS=OFF >"$BUILD/configure.log" 2>&1 ||
   ! cmake --build "$BUILD" -j "$JOBS" >"$BUILD/build.log" 2>&1; then
  echo "FAIL fuzz build (log: $BUILD/build.log)"
  tail -n 40 "$BUILD/configure.log" "$BUILD/build.log"
  echo "0 passed, 1 failed"
  exit 1
fi

LARGE=${FUZZ_LARGE-fuzz_receiver}
LARGE_LEN=${FUZZ_LARGE_LEN:-65536}

passed=0
failed=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# One run: target, max input length, name in the report.
fuzz_one() {
  local t=$1 len=$2 name=$3
  local work="$scratch/$name" artifacts="$FUZZ_DIR/artifacts/$t"
  mkdir -p "$work" "$artifacts"
  [ -d "$FUZZ_DIR/corpus/$t" ] && cp "$FUZZ_DIR/corpus/$t"/* "$work"/ 2>/dev/null
  local log="$BUILD/$name.fuzz.log"
  # -timeout: one input taking over 10 s counts as a hang; -rss_limit_mb
  # catches unbounded allocation (a decompression bomb would hit it).
  if "$BUILD/$t" "$work" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -max_len="$len" \
       -print_final_stats=1 -artifact_prefix="$artifacts/" >"$log" 2>&1; then
    local runs
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    echo "OK   $name (${runs:-?} runs in ${SECONDS_EACH}s)"
    passed=$((passed + 1))
  else
    echo "FAIL $name (log: $log; crash input in $artifacts/)"
    grep -E "ERROR|SUMMARY|runtime error|deadly signal|Test unit written" "$log" | head -n 20
    failed=$((failed + 1))
  fi
}
for t in $TARGETS; do
  fuzz_one "$t" "$MAX_LEN" "$t"
done
# (TARGETS is one name per line when listed from the folder.)
for t in $LARGE; do
  for u in $TARGETS; do
    [ "$u" = "$t" ] && fuzz_one "$t" "$LARGE_LEN" "$t@$LARGE_LEN"
  done
done
echo "fuzzing: $(($(date +%s) - start))s"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
