#include "random.h"

#include <openssl/rand.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace wsengine {

namespace {

constexpr size_t kPoolSize = 4096;

struct Pool {
  uint8_t bytes[kPoolSize];
  size_t pos = kPoolSize;  // empty until first use
};

thread_local Pool tPool;

void fill(uint8_t* out, size_t len) {
  // Predictable masks or nonces would be a security bug: never go on without
  // real randomness.
  while (len > 0) {
    const size_t n = len > (1u << 30) ? (1u << 30) : len;
    if (RAND_bytes(out, static_cast<int>(n)) != 1) {
      std::fprintf(stderr, "wsengine: RAND_bytes failed\n");
      std::abort();
    }
    out += n;
    len -= n;
  }
}

}  // namespace

void randomBytes(uint8_t* out, size_t len) {
  if (len >= kPoolSize) {
    fill(out, len);
    return;
  }
  Pool& p = tPool;
  while (len > 0) {
    if (p.pos == kPoolSize) {
      fill(p.bytes, kPoolSize);
      p.pos = 0;
    }
    size_t n = kPoolSize - p.pos;
    if (n > len) n = len;
    std::memcpy(out, p.bytes + p.pos, n);
    // Handed-out bytes are wiped so that they never remain readable here.
    std::memset(p.bytes + p.pos, 0, n);
    p.pos += n;
    out += n;
    len -= n;
  }
}

}  // namespace wsengine
