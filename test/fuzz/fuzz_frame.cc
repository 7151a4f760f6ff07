// libFuzzer target: the RFC 6455 frame parser, fed in random chunkings, in
// both roles, with random limits and pauses. The handler checks the parser's
// promises (traps on a violation) and runs the UTF-8 validator on text
// messages, cross-checked against the one-shot validator.
//
// Input: byte 0 = config (role, RSV1, limit, pause pattern), byte 1 = seed
// of the chunking, the rest = wire bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "frame.h"
#include "utf8.h"
#include "fuzz_util.h"

using namespace wsengine;

namespace {


const uint64_t kLimits[4] = {0, 1, 125, 70000};
// Text messages are kept whole (for the cross-check) up to this size.
constexpr size_t kMaxKeep = 1 << 16;

struct Checker : FrameHandler {
  bool expectMasked = false;
  bool allowRsv1 = false;
  uint64_t maxMessage = 0;
  FuzzRng* rng = nullptr;
  uint32_t pauseMask = 0;  // pause on callbacks whose random draw hits this

  // Where the bytes handed to feed() came from, to check unmasking.
  const uint8_t* chunkBase = nullptr;
  size_t chunkLen = 0;
  const uint8_t* original = nullptr;  // untouched copy of the whole input
  size_t chunkOffset = 0;             // chunkBase[0] is original[chunkOffset]

  bool errored = false;
  bool inFrame = false;
  bool frameEnded = true;  // onFrameEnd seen for the last header
  FrameHeader cur;
  uint64_t got = 0;

  bool inMessage = false;  // a fragmented data message is open
  bool textMessage = false;
  uint64_t messageBytes = 0;
  Utf8Validator utf8;
  bool utf8Failed = false;
  std::vector<uint8_t> text;
  bool textComplete = true;  // `text` holds the whole message so far

  bool maybePause() { return pauseMask == 0 || (rng->next() & pauseMask) != 0; }

  bool onFrameHeader(const FrameHeader& h) override {
    FUZZ_ASSERT(!errored);
    FUZZ_ASSERT(frameEnded);  // headers and ends alternate
    FUZZ_ASSERT(h.masked == expectMasked);
    FUZZ_ASSERT((h.payloadLen >> 63) == 0);
    const bool control = isControl(h.opcode);
    FUZZ_ASSERT(h.opcode <= 2 || (h.opcode >= 8 && h.opcode <= 10));
    if (h.rsv1) FUZZ_ASSERT(allowRsv1 && !control && h.opcode != kContinuation);
    if (control) {
      FUZZ_ASSERT(h.fin && h.payloadLen <= 125);
    } else if (h.opcode == kContinuation) {
      FUZZ_ASSERT(inMessage);
      messageBytes += h.payloadLen;
      inMessage = !h.fin;
    } else {
      FUZZ_ASSERT(!inMessage);
      messageBytes = h.payloadLen;
      inMessage = !h.fin;
      textMessage = h.opcode == kText;
      utf8.reset();
      utf8Failed = false;
      text.clear();
      textComplete = true;
    }
    if (!control && maxMessage != 0) FUZZ_ASSERT(messageBytes <= maxMessage);
    cur = h;
    got = 0;
    inFrame = true;
    frameEnded = false;
    return maybePause();
  }

  bool onFramePayload(uint8_t* data, size_t len) override {
    FUZZ_ASSERT(!errored && inFrame);
    FUZZ_ASSERT(len > 0);
    // Never beyond the announced length.
    FUZZ_ASSERT(len <= cur.payloadLen - got);
    // The bytes are inside the chunk being fed, unmasked in place.
    FUZZ_ASSERT(data >= chunkBase && data + len <= chunkBase + chunkLen);
    const uint8_t* src = original + chunkOffset + (data - chunkBase);
    for (size_t i = 0; i < len; ++i) {
      uint8_t expect = cur.masked ? src[i] ^ cur.mask[(got + i) & 3] : src[i];
      FUZZ_ASSERT(data[i] == expect);
    }
    if (!isControl(cur.opcode) && textMessage && !utf8Failed) {
      if (!utf8.feed(data, len)) utf8Failed = true;
      FUZZ_ASSERT(utf8.pendingBytes() <= 3);
      if (text.size() + len <= kMaxKeep) {
        text.insert(text.end(), data, data + len);
      } else {
        textComplete = false;
      }
    }
    got += len;
    return maybePause();
  }

  bool onFrameEnd() override {
    FUZZ_ASSERT(!errored && inFrame);
    FUZZ_ASSERT(got == cur.payloadLen);
    inFrame = false;
    frameEnded = true;
    if (!isControl(cur.opcode) && cur.fin && textMessage && textComplete) {
      // Incremental and one-shot validation agree on the whole message.
      bool whole = isValidUtf8(text.data(), text.size());
      FUZZ_ASSERT(whole == (!utf8Failed && utf8.complete()));
    }
    return maybePause();
  }

  void onFrameError(int closeCode, const char* reason) override {
    FUZZ_ASSERT(!errored);
    FUZZ_ASSERT(closeCode == 1002 || closeCode == 1009);
    FUZZ_ASSERT(reason != nullptr && reason[0] != '\0');
    if (closeCode == 1009) FUZZ_ASSERT(maxMessage != 0);
    errored = true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint8_t cfg = data[0];
  FuzzRng rng{data[1] * 2654435761u + cfg};
  std::vector<uint8_t> original(data + 2, data + size);
  std::vector<uint8_t> buf(original);

  Checker c;
  c.expectMasked = cfg & 1;
  c.allowRsv1 = (cfg & 2) != 0;
  c.maxMessage = kLimits[(cfg >> 2) & 3];
  c.rng = &rng;
  // 0: never pause; else pause on about 1 in 2, 4 or 8 callbacks.
  static const uint32_t kPause[4] = {0, 1, 3, 7};
  c.pauseMask = kPause[(cfg >> 4) & 3];
  const bool tiny = (cfg & 0x40) != 0;  // mostly 1..3 byte chunks
  c.original = original.data();

  FrameParser parser(c.expectMasked);
  parser.setAllowRsv1(c.allowRsv1);
  parser.setMaxMessageSize(c.maxMessage);

  size_t pos = 0;
  int emptyFeeds = 0;
  while (pos < buf.size() && !c.errored) {
    size_t left = buf.size() - pos;
    size_t n = tiny ? 1 + rng.next() % 3 : 1 + rng.next() % (left < 64 ? left : 64 + left / 2);
    if (n > left) n = left;
    c.chunkBase = buf.data() + pos;
    c.chunkLen = n;
    c.chunkOffset = pos;
    size_t used = parser.feed(buf.data() + pos, n, c);
    FUZZ_ASSERT(used <= n);
    FUZZ_ASSERT(parser.failed() == c.errored);
    if (!c.errored && c.pauseMask == 0) FUZZ_ASSERT(used == n);
    FUZZ_ASSERT(parser.inMessage() == c.inMessage || c.errored);
    pos += used;
    if (used == 0 && !c.errored) {
      // Paused before consuming anything (e.g. an empty frame's end): resume
      // with no input, as the connection does; bounded.
      FUZZ_ASSERT(++emptyFeeds < 1000000);
      c.chunkBase = buf.data() + pos;
      c.chunkLen = 0;
      c.chunkOffset = pos;
      parser.feed(buf.data() + pos, 0, c);
    }
  }
  if (c.errored) {
    // A failed parser stays failed and calls nothing more.
    uint8_t more[2] = {0x81, 0x00};
    FUZZ_ASSERT(parser.feed(more, sizeof more, c) == 0);
  }
  return 0;
}
