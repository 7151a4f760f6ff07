// libFuzzer target: the permessage-deflate decompressor on arbitrary input
// (a bomb or garbage must stop at the size limit, never write past it) and
// the Deflater -> Inflater round trip over the same input.
//
// Input: byte 0 = window bits / context takeover, byte 1 = size limit and
// level, byte 2 = how the rest is cut into messages and frames.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "deflate.h"
#include "fuzz_util.h"

using namespace wsengine;

namespace {

// Output may never exceed maxSize; the buffer's capacity may exceed it by at
// most the string's own growth policy (doubling) plus a small constant.
bool withinLimit(const std::string& out, uint64_t maxSize) {
  return out.size() <= maxSize && out.capacity() <= 2 * maxSize + 64;
}

// Cuts [0, len) into up to `parts` pieces at positions drawn from `seed`.
std::vector<size_t> cuts(size_t len, uint32_t seed, int parts) {
  std::vector<size_t> at{0};
  for (int i = 1; i < parts; ++i) {
    seed = seed * 1103515245u + 12345u;
    at.push_back(len ? (seed >> 8) % (len + 1) : 0);
  }
  at.push_back(len);
  for (size_t i = 1; i < at.size(); ++i)
    if (at[i] < at[i - 1]) at[i] = at[i - 1];
  return at;
}

void inflateArbitrary(const uint8_t* data, size_t len, int bits, bool noTakeover,
                      uint64_t maxSize, uint32_t seed) {
  Inflater inf;
  FUZZ_ASSERT(inf.init(bits, noTakeover));
  // Up to three messages, each fed in up to three frames.
  std::vector<size_t> msgs = cuts(len, seed, 3);
  for (size_t m = 0; m + 1 < msgs.size(); ++m) {
    std::string out;
    std::vector<size_t> frames = cuts(msgs[m + 1] - msgs[m], seed ^ (m * 7919), 3);
    Inflater::Result r = Inflater::kOk;
    for (size_t f = 0; f + 1 < frames.size() && r == Inflater::kOk; ++f) {
      r = inf.feed(data + msgs[m] + frames[f], frames[f + 1] - frames[f], out, maxSize);
      FUZZ_ASSERT(withinLimit(out, maxSize));
    }
    if (r == Inflater::kOk) r = inf.finish(out, maxSize);
    FUZZ_ASSERT(withinLimit(out, maxSize));
    if (r != Inflater::kOk) {
      // Failed for good.
      std::string more;
      FUZZ_ASSERT(inf.finish(more, maxSize) == Inflater::kError);
      FUZZ_ASSERT(inf.feed(data, len ? 1 : 0, more, maxSize) != Inflater::kOk || len == 0);
      return;
    }
  }
}

void roundTrip(const uint8_t* data, size_t len, int bits, bool noTakeover, int level,
               uint32_t seed) {
  Deflater def;
  Inflater inf;
  FUZZ_ASSERT(def.init(bits, noTakeover, level, 1 + static_cast<int>(seed % 9)));
  FUZZ_ASSERT(inf.init(bits, noTakeover));
  std::vector<size_t> msgs = cuts(len, seed, 4);
  for (size_t m = 0; m + 1 < msgs.size(); ++m) {
    const uint8_t* msg = data + msgs[m];
    const size_t n = msgs[m + 1] - msgs[m];
    std::string wire;
    FUZZ_ASSERT(def.compress(msg, n, wire));
    // The receiver sees the payload split into frames.
    std::vector<size_t> frames = cuts(wire.size(), seed + static_cast<uint32_t>(m), 3);
    std::string out;
    const uint64_t limit = n;  // exactly the message size must be allowed
    for (size_t f = 0; f + 1 < frames.size(); ++f) {
      Inflater::Result r =
          inf.feed(reinterpret_cast<const uint8_t*>(wire.data()) + frames[f],
                   frames[f + 1] - frames[f], out, limit);
      FUZZ_ASSERT(r == Inflater::kOk);
    }
    FUZZ_ASSERT(inf.finish(out, limit) == Inflater::kOk);
    FUZZ_ASSERT(out.size() == n && (n == 0 || out.compare(0, n, reinterpret_cast<const char*>(msg), n) == 0));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const int bits = 8 + (data[0] & 7);
  const bool noTakeover = (data[0] & 8) != 0;
  static const uint64_t kLimits[8] = {0, 1, 7, 100, 1000, 4096, 65536, 70000};
  const uint64_t maxSize = kLimits[data[1] & 7];
  const int level = static_cast<int>((data[1] >> 3) % 10);
  const uint32_t seed = data[2] * 2654435761u + data[0];
  const uint8_t* body = data + 3;
  const size_t len = size - 3;

  inflateArbitrary(body, len, bits, noTakeover, maxSize, seed);
  if (len <= 1 << 16) roundTrip(body, len, bits, noTakeover, level, seed);
  return 0;
}
