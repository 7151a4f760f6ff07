#include "frame.h"

#include <cstring>

namespace wsengine {

namespace {

// Parser states. The header is read byte 0, byte 1, then the rest (extended
// length and mask key) so that the first two bytes fail fast on their own.
enum State : int { kByte0 = 0, kByte1, kHeaderRest, kPayload, kEnd };

bool reservedOpcode(uint8_t op) {
  return !(op == kContinuation || op == kText || op == kBinary || op == kClose || op == kPing ||
           op == kPong);
}

}  // namespace

size_t writeFrameHeader(uint8_t* out, bool fin, bool rsv1, uint8_t opcode, uint64_t payloadLen,
                        const uint8_t* maskKey) {
  size_t n = 0;
  out[n++] = static_cast<uint8_t>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | (opcode & 0x0F));
  const uint8_t maskBit = maskKey ? 0x80 : 0;
  if (payloadLen < 126) {
    out[n++] = static_cast<uint8_t>(maskBit | payloadLen);
  } else if (payloadLen <= 0xFFFF) {
    out[n++] = static_cast<uint8_t>(maskBit | 126);
    out[n++] = static_cast<uint8_t>(payloadLen >> 8);
    out[n++] = static_cast<uint8_t>(payloadLen);
  } else {
    out[n++] = static_cast<uint8_t>(maskBit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out[n++] = static_cast<uint8_t>(payloadLen >> shift);
  }
  if (maskKey) {
    std::memcpy(out + n, maskKey, 4);
    n += 4;
  }
  return n;
}

void copyMasked(uint8_t* dst, const uint8_t* src, size_t len, const uint8_t key[4],
                uint64_t offset) {
  // Rotate the key so that rot[0] applies to src[0]; then the same pattern
  // applies to every in-sequence block of 8 (or 16) bytes.
  uint8_t rot[16];
  for (int i = 0; i < 16; ++i) rot[i] = key[(offset + i) & 3];
  size_t i = 0;
#if defined(__GNUC__)
  // 64 bytes per turn in 16-byte vectors (SSE2/NEON without intrinsics):
  // several times the 8-byte loop on large payloads.
  typedef uint8_t V16 __attribute__((vector_size(16)));
  V16 k;
  std::memcpy(&k, rot, 16);
  for (; i + 64 <= len; i += 64) {
    V16 a, b, c, d;
    std::memcpy(&a, src + i, 16);
    std::memcpy(&b, src + i + 16, 16);
    std::memcpy(&c, src + i + 32, 16);
    std::memcpy(&d, src + i + 48, 16);
    a ^= k;
    b ^= k;
    c ^= k;
    d ^= k;
    std::memcpy(dst + i, &a, 16);
    std::memcpy(dst + i + 16, &b, 16);
    std::memcpy(dst + i + 32, &c, 16);
    std::memcpy(dst + i + 48, &d, 16);
  }
#endif
  uint64_t k64;
  std::memcpy(&k64, rot, 8);
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    std::memcpy(&v, src + i, 8);
    v ^= k64;
    std::memcpy(dst + i, &v, 8);
  }
  for (; i < len; ++i) dst[i] = src[i] ^ rot[i & 7];
}

void applyMask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset) {
  copyMasked(data, data, len, key, offset);
}

uint64_t FrameParser::payloadLeft() const { return state_ == kPayload ? payloadLeft_ : 0; }

size_t FrameParser::feed(uint8_t* data, size_t len, FrameHandler& handler) {
  if (failed_) return 0;
  size_t pos = 0;
  auto fail = [&](int code, const char* reason) {
    failed_ = true;
    handler.onFrameError(code, reason);
    return pos;
  };

  for (;;) {
    switch (state_) {
      case kByte0: {
        if (pos == len) return pos;
        const uint8_t b = data[pos++];
        hdr_[0] = b;
        const uint8_t op = b & 0x0F;
        const bool fin = (b & 0x80) != 0;
        const bool rsv1 = (b & 0x40) != 0;
        if (b & 0x30) return fail(1002, "RSV2/RSV3 bits set");
        if (reservedOpcode(op)) return fail(1002, "Reserved opcode");
        if (rsv1) {
          if (!allowRsv1_) return fail(1002, "RSV1 set without a negotiated extension");
          if (isControl(op)) return fail(1002, "RSV1 set on a control frame");
          if (op == kContinuation) return fail(1002, "RSV1 set on a continuation frame");
        }
        if (isControl(op) && !fin) return fail(1002, "Fragmented control frame");
        if (op == kContinuation && !inMessage_)
          return fail(1002, "Continuation frame without a fragmented message");
        if ((op == kText || op == kBinary) && inMessage_)
          return fail(1002, "New data frame inside a fragmented message");
        state_ = kByte1;
        break;
      }
      case kByte1: {
        if (pos == len) return pos;
        const uint8_t b = data[pos++];
        hdr_[1] = b;
        const bool masked = (b & 0x80) != 0;
        const uint8_t len7 = b & 0x7F;
        if (expectMasked_ && !masked) return fail(1002, "Unmasked frame from client");
        if (!expectMasked_ && masked) return fail(1002, "Masked frame from server");
        if (isControl(hdr_[0] & 0x0F) && len7 > 125)
          return fail(1002, "Control frame payload longer than 125 bytes");
        hdrHave_ = 2;
        hdrNeed_ = static_cast<uint8_t>(2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (masked ? 4 : 0));
        state_ = kHeaderRest;
        break;
      }
      case kHeaderRest: {
        size_t n = hdrNeed_ - hdrHave_;
        if (n > len - pos) n = len - pos;
        std::memcpy(hdr_ + hdrHave_, data + pos, n);
        hdrHave_ = static_cast<uint8_t>(hdrHave_ + n);
        pos += n;
        if (hdrHave_ < hdrNeed_) return pos;

        FrameHeader h;
        h.fin = (hdr_[0] & 0x80) != 0;
        h.rsv1 = (hdr_[0] & 0x40) != 0;
        h.opcode = hdr_[0] & 0x0F;
        h.masked = (hdr_[1] & 0x80) != 0;
        const uint8_t len7 = hdr_[1] & 0x7F;
        size_t at = 2;
        if (len7 == 126) {
          h.payloadLen = (uint64_t(hdr_[2]) << 8) | hdr_[3];
          at = 4;
        } else if (len7 == 127) {
          if (hdr_[2] & 0x80) return fail(1002, "64-bit payload length with the high bit set");
          uint64_t v = 0;
          for (int i = 0; i < 8; ++i) v = (v << 8) | hdr_[2 + i];
          h.payloadLen = v;
          at = 10;
        } else {
          h.payloadLen = len7;
        }
        if (h.masked) std::memcpy(h.mask, hdr_ + at, 4);

        if (!isControl(h.opcode)) {
          if (maxMessage_ != 0) {
            if (h.payloadLen > maxMessage_) return fail(1009, "Frame exceeds the maximum message size");
            // messageBytes_ <= maxMessage_ holds, so this cannot overflow.
            if (h.opcode == kContinuation && h.payloadLen > maxMessage_ - messageBytes_)
              return fail(1009, "Message exceeds the maximum message size");
          }
          if (h.opcode == kContinuation) {
            messageBytes_ += h.payloadLen;
            if (h.fin) inMessage_ = false;
          } else {
            messageBytes_ = h.payloadLen;
            inMessage_ = !h.fin;
          }
        }

        cur_ = h;
        payloadLeft_ = h.payloadLen;
        payloadPos_ = 0;
        hdrHave_ = 0;
        hdrNeed_ = 2;
        state_ = payloadLeft_ ? kPayload : kEnd;
        if (!handler.onFrameHeader(cur_)) return pos;
        break;
      }
      case kPayload: {
        if (pos == len) return pos;
        size_t n = len - pos;
        if (n > payloadLeft_) n = static_cast<size_t>(payloadLeft_);
        uint8_t* p = data + pos;
        uint8_t* to = handler.payloadTarget(p, n);
        if (to != nullptr && to != p) {
          if (cur_.masked)
            copyMasked(to, p, n, cur_.mask, payloadPos_);
          else
            std::memcpy(to, p, n);
          p = to;
        } else if (cur_.masked) {
          applyMask(p, n, cur_.mask, payloadPos_);
        }
        payloadPos_ += n;
        payloadLeft_ -= n;
        pos += n;
        if (payloadLeft_ == 0) state_ = kEnd;
        if (!handler.onFramePayload(p, n)) return pos;
        break;
      }
      case kEnd: {
        // Reached even with no input left, so a paused empty frame still ends.
        state_ = kByte0;
        if (!handler.onFrameEnd()) return pos;
        break;
      }
    }
  }
}

}  // namespace wsengine
