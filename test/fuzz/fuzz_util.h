// What the libFuzzer targets share: a check that traps (libFuzzer reports
// it as a crash, with the input) and a small deterministic generator for
// chunkings and pauses drawn from a seed byte of the input.
#pragma once

#include <cstdint>

#define FUZZ_ASSERT(cond)            \
  do {                               \
    if (!(cond)) __builtin_trap();   \
  } while (0)

struct FuzzRng {
  uint32_t s;
  uint32_t next() {
    s = s * 1664525u + 1013904223u;
    return s >> 8;
  }
};
