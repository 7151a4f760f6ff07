// RFC 6455 §5 framing: header encoding, masking, and the incoming frame
// parser (a push state machine: no allocation, payload unmasked in place).
#pragma once

#include <cstddef>
#include <cstdint>

namespace wsengine {

enum Opcode : uint8_t {
  kContinuation = 0x0,
  kText = 0x1,
  kBinary = 0x2,
  kClose = 0x8,
  kPing = 0x9,
  kPong = 0xA,
};

inline bool isControl(uint8_t opcode) { return (opcode & 0x8) != 0; }

constexpr size_t kMaxFrameHeader = 14;

// Writes a frame header to out (room for kMaxFrameHeader bytes) and returns
// its length. maskKey == nullptr: unmasked (server to client).
size_t writeFrameHeader(uint8_t* out, bool fin, bool rsv1, uint8_t opcode, uint64_t payloadLen,
                        const uint8_t* maskKey);

// XORs data with the 4-byte key; `offset` is the position of data[0] within
// the frame payload so that a payload can be unmasked in pieces.
void applyMask(uint8_t* data, size_t len, const uint8_t key[4], uint64_t offset);
// The same, writing the result to dst (one pass instead of copy + unmask).
void copyMasked(uint8_t* dst, const uint8_t* src, size_t len, const uint8_t key[4], uint64_t offset);

struct FrameHeader {
  bool fin = false;
  bool rsv1 = false;
  uint8_t opcode = 0;
  bool masked = false;
  uint8_t mask[4] = {0, 0, 0, 0};
  uint64_t payloadLen = 0;
};

// Receives what the parser finds. Return false from any callback to stop
// parsing at once (the connection is being failed or paused).
class FrameHandler {
 public:
  virtual ~FrameHandler() = default;
  virtual bool onFrameHeader(const FrameHeader& h) = 0;
  // Unmasked payload bytes of the current frame, in order; may be called
  // several times per frame (or never for an empty payload).
  virtual bool onFramePayload(uint8_t* data, size_t len) = 0;
  // Optional: where the payload bytes at src should be put (unmasked) before
  // onFramePayload sees them there, when the handler would copy them anyway;
  // null (the default) to unmask them where they are.
  virtual uint8_t* payloadTarget(const uint8_t* src, size_t len) {
    (void)src;
    (void)len;
    return nullptr;
  }
  virtual bool onFrameEnd() = 0;
  // A protocol violation: closeCode is 1002 or 1009; reason is static text.
  virtual void onFrameError(int closeCode, const char* reason) = 0;
};

class FrameParser {
 public:
  // expectMasked: true on the server side (client frames must be masked),
  // false on the client side (server frames must not be).
  explicit FrameParser(bool expectMasked) : expectMasked_(expectMasked) {}

  // RSV1 is legal on the first frame of a data message only when
  // permessage-deflate was negotiated.
  void setAllowRsv1(bool allow) { allowRsv1_ = allow; }
  // Frames announcing more than this, or data messages whose wire payload
  // across fragments would exceed it, fail with 1009 before any byte of them
  // is buffered. 0 means no limit.
  void setMaxMessageSize(uint64_t max) { maxMessage_ = max; }

  // Feeds bytes (modified in place by unmasking). Returns the number of bytes
  // consumed: all of them, unless a callback returned false or an error was
  // reported (then parsing must not resume after an error).
  size_t feed(uint8_t* data, size_t len, FrameHandler& handler);

  // Payload bytes of the current frame still to come; 0 outside a payload.
  // A caller may read up to this many bytes straight to where the payload
  // belongs and feed them from there: they cannot hold the next header.
  uint64_t payloadLeft() const;

  bool failed() const { return failed_; }
  // The header of the current frame (the last one completed): valid from
  // onFrameHeader until the next frame's header is complete.
  const FrameHeader& current() const { return cur_; }
  bool inMessage() const { return inMessage_; }  // a fragmented data message is open
  // Between messages: no byte of a frame header or payload pending (state
  // kByte0, frame.cc), no fragmented message open, no failure. A new parser
  // with the same settings would go on exactly as this one.
  bool betweenMessages() const { return state_ == 0 && !inMessage_ && !failed_; }

 private:
  // Implementation state (see frame.cc). Small types first: one parser per
  // connection, so padding is per-connection memory.
  bool expectMasked_;
  bool allowRsv1_ = false;
  bool failed_ = false;
  bool inMessage_ = false;
  uint8_t state_ = 0;
  uint8_t hdrHave_ = 0;  // <= kMaxFrameHeader
  uint8_t hdrNeed_ = 2;
  uint8_t hdr_[kMaxFrameHeader];
  uint64_t maxMessage_ = 0;
  uint64_t messageBytes_ = 0;  // wire payload of the open data message
  FrameHeader cur_;
  uint64_t payloadLeft_ = 0;
  uint64_t payloadPos_ = 0;
};

}  // namespace wsengine
