// The receive path of one connection: bytes from the peer (after TLS) in,
// messages and control frames out. It parses frames (RFC 6455 §5), assembles
// fragmented messages, inflates (RFC 7692), validates UTF-8 (§8.1), applies
// maxPayload and the server's budget of unfinished-message bytes, and can
// have large payloads read straight into the message being assembled.
//
// Threading: one thread only (the connection's loop thread; a test's own
// thread). Nothing here locks; the only shared state is the server's
// ByteBudget, which is atomic. It needs no socket: feed() takes bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "deflate.h"
#include "frame.h"
#include "settings.h"
#include "utf8.h"

namespace wsengine {

// An unfinished message (or fragment copy) this small is never refused by
// the budget (it is still counted): a peer that fills the budget must not
// make every other connection fail on its next small message.
constexpr uint64_t kUnbudgetedBytes = 64 * 1024;

// What the receiver reports, in the order the peer sent it. After onClose or
// onFail nothing more is reported.
class ReceiverListener {
 public:
  virtual ~ReceiverListener() = default;
  // A whole data message (text: valid UTF-8). wireSize: its payload bytes on
  // the wire, over all its frames (compressed size when compressed).
  virtual void onMessage(std::string&& data, bool binary, uint64_t wireSize) = 0;
  // What one frame of a fragmented message added, after inflate (text: whole
  // code points only; the start of one cut by the frame boundary comes with
  // the next fragment). The message event still follows with every byte.
  // `hold` keeps these bytes charged to the server's budget (null without a
  // budget): keep it exactly as long as the bytes (Event::hold).
  virtual void onFragment(std::string&& data, bool binary, uint64_t wireSize,
                          std::shared_ptr<void> hold) = 0;
  // A ping or a pong (opcode kPing or kPong). Control frames have no text or
  // binary type: `binary` says the payload is not valid UTF-8. Return false
  // to stop parsing (the connection is going away).
  virtual bool onControl(uint8_t opcode, std::string&& payload, bool binary) = 0;
  // A valid close frame; code 1005 when it carried none. Nothing after it
  // is parsed (§5.5.1).
  virtual void onClose(int code, std::string&& reason) = 0;
  // The peer broke the protocol or a limit: the connection must fail with
  // this close code (1002, 1007, 1009 or 1011). decompressionError: the
  // compressed data was corrupt (1007).
  virtual void onFail(int code, const std::string& reason, bool decompressionError) = 0;
};

class Receiver : private FrameHandler {
 public:
  // settings (the role, maxPayload, the budget) must outlive the receiver.
  Receiver(const ConnSettings& settings, ReceiverListener& listener);
  ~Receiver() override;  // gives back what the message in progress holds of the budget
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  // permessage-deflate was agreed: frames may carry RSV1, and are inflated
  // with the peer's window (8..15) and context takeover. The inflater is
  // made at the first compressed message (an idle connection holds none).
  void enableInflate(int windowBits, bool noContextTakeover);

  // Parses bytes (unmasking them in place) and reports what they complete.
  // Does nothing once a close frame or a failure has been reported.
  void feed(uint8_t* data, size_t len);

  // Read in place: inside a large uncompressed data payload, where the next
  // socket read should put its bytes (the rest of the payload, at its place
  // in the message); feed() them from there and they are not copied again.
  // False: read into a buffer of your own (the read cannot be placed, or the
  // budget has no room for the memory it would take).
  bool readTarget(char** base, size_t* len);

  // A close frame or a failure was reported.
  bool done() const { return done_; }
  // Nothing received is pending: no partial frame, no message in progress,
  // no inflater (its window is history the next message may refer to), no
  // budget charge, not done. A new Receiver with the same settings (and
  // enableInflate) would go on exactly as this one, so an idle connection
  // need not keep one (Connection frees it between reads).
  bool idle() const {
    return !done_ && !inflaterReady_ && unfinishedCharged_ == 0 && unfinishedHeld_ == 0 &&
           parser_.betweenMessages();
  }
  // Drops the message in progress and its budget charge (connection gone).
  void discard();

 private:
  // FrameHandler
  bool onFrameHeader(const FrameHeader& h) override;
  bool onFramePayload(uint8_t* data, size_t len) override;
  uint8_t* payloadTarget(const uint8_t* src, size_t len) override;
  bool onFrameEnd() override;
  void onFrameError(int closeCode, const char* reason) override;

  bool fail(int code, const char* reason, bool decompressionError = false);
  bool control();
  bool deliver(bool final);
  // How far the inflater may grow msg_: maxPayload, or less when the budget
  // has less room (*capped: a kTooBig then means the budget, not maxPayload).
  uint64_t inflateLimit(bool* capped) const;
  bool inflated(Inflater::Result r, bool budgetCapped);
  // Sets this message's charge against the budget to n bytes; false (nothing
  // changed) when the budget cannot cover it. Up to kUnbudgetedBytes it is
  // only noted, and reaches the budget in settleUnfinished.
  bool chargeUnfinished(uint64_t n);
  void releaseUnfinished() { chargeUnfinished(0); }
  // Brings the budget to this message's noted charge (end of each read).
  void settleUnfinished();
  uint64_t heldBytes() const;
  bool failOverBudget();

  const ConnSettings& s_;
  ReceiverListener& l_;
  FrameParser parser_;
  bool done_ = false;
  bool msgCompressed_ = false;
  bool msgBinary_ = false;
  bool inflateNoCtx_ = false;
  uint8_t inflateBits_ = 0;   // 0: permessage-deflate not agreed
  bool inflaterReady_ = false;
  uint64_t msgWire_ = 0;      // wire payload bytes of the current message
  std::string msg_;           // the message being assembled (inflated)
  // Uncompressed messages: bytes of msg_ received so far. Past it, msg_ may
  // hold a region (stale bytes of a recycled buffer, or room made for payload
  // still to come) that readTarget() hands to the socket, so large payloads
  // are read straight into place (no copy); msg_ is cut to msgFill_ at the end.
  size_t msgFill_ = 0;
  size_t fragDelivered_ = 0;  // bytes of msg_ already given as fragments
  uint64_t unfinishedCharged_ = 0;  // of s_.unfinished, for msg_ (heldBytes())
  uint64_t unfinishedHeld_ = 0;     // noted; differs from the above only within a read
  std::string ctrl_;          // control frame payload
  Utf8Validator utf8_;
  Inflater inflater_;
};

}  // namespace wsengine
