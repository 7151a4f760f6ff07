#include "utf8.h"

#include <cstring>

namespace wsengine {

namespace {

// A state is 0 (on a boundary), kFailed, or packs what the next byte must be:
// bits 16..: continuation bytes still needed; bits 8..15 / 0..7: the lowest /
// highest value allowed for the next one. Narrow first ranges after E0, ED,
// F0 and F4 are what rule out overlongs, surrogates and > U+10FFFF at the
// earliest byte (RFC 3629 §4).
constexpr uint32_t kFailed = 0xFFFFFFFFu;

constexpr uint32_t expect(uint32_t remaining, uint32_t lo, uint32_t hi) {
  return (remaining << 16) | (lo << 8) | hi;
}

// State after a lead byte (0 for ASCII, kFailed for bytes that never lead).
uint32_t leadState(uint8_t b) {
  if (b < 0x80) return 0;
  if (b < 0xC2) return kFailed;  // stray continuation, or overlong C0/C1
  if (b < 0xE0) return expect(1, 0x80, 0xBF);
  if (b == 0xE0) return expect(2, 0xA0, 0xBF);
  if (b == 0xED) return expect(2, 0x80, 0x9F);
  if (b < 0xF0) return expect(2, 0x80, 0xBF);
  if (b == 0xF0) return expect(3, 0x90, 0xBF);
  if (b < 0xF4) return expect(3, 0x80, 0xBF);
  if (b == 0xF4) return expect(3, 0x80, 0x8F);
  return kFailed;  // F5..FF
}

constexpr uint64_t kHighBits = 0x8080808080808080ull;

}  // namespace

bool Utf8Validator::feed(const uint8_t* data, size_t len) {
  if (state_ == kFailed) return false;
  uint32_t state = state_;
  size_t pending = pending_;
  size_t i = 0;
  while (i < len) {
    if (state == 0) {
      // ASCII fast path: skip whole 8-byte words with no high bit.
      while (i + 8 <= len) {
        uint64_t w;
        std::memcpy(&w, data + i, 8);
        if (w & kHighBits) break;
        i += 8;
      }
      while (i < len && data[i] < 0x80) ++i;
      if (i == len) break;
      state = leadState(data[i++]);
      if (state == kFailed) break;
      pending = 1;
      continue;
    }
    const uint8_t b = data[i++];
    const uint32_t lo = (state >> 8) & 0xFF, hi = state & 0xFF;
    if (b < lo || b > hi) {
      state = kFailed;
      break;
    }
    const uint32_t remaining = (state >> 16) - 1;
    if (remaining == 0) {
      state = 0;
      pending = 0;
    } else {
      state = expect(remaining, 0x80, 0xBF);
      ++pending;
    }
  }
  state_ = state;
  pending_ = state == kFailed ? 0 : static_cast<uint32_t>(pending);
  return state != kFailed;
}

bool isValidUtf8(const uint8_t* data, size_t len) {
  Utf8Validator v;
  return v.feed(data, len) && v.complete();
}

}  // namespace wsengine
