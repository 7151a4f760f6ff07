// The receive path (see receiver.h). One thread only.
#include "receiver.h"

#include <algorithm>

#include "buffer_pool.h"

namespace wsengine {

namespace {

// Frames this large are read straight into the message (see readTarget), in
// a recycled buffer: each read then stops at the frame's end, an extra system
// call that small frames would feel, large ones not. Regions grow by at most
// kPlaceChunk so that a slow peer announcing a huge frame pins little memory.
constexpr uint64_t kPlaceMin = kPooledMin;
constexpr uint64_t kPlaceChunk = 1024 * 1024;

// RFC 6455 §7.4: codes a peer may put in a close frame.
bool validCloseCode(int code) {
  if (code >= 3000 && code <= 4999) return true;
  switch (code) {
    case 1000: case 1001: case 1002: case 1003: case 1007: case 1008:
    case 1009: case 1010: case 1011: case 1012: case 1013: case 1014:
      return true;
    default:
      return false;
  }
}

// Fragment bytes handed out stay charged to the server's budget of
// unfinished-message bytes until the event that carries them is destroyed
// (the addon destroys it once JavaScript has the data).
struct BudgetCharge {
  std::shared_ptr<ByteBudget> budget;
  uint64_t bytes;
  BudgetCharge(std::shared_ptr<ByteBudget> b, uint64_t n) : budget(std::move(b)), bytes(n) {}
  ~BudgetCharge() { budget->give(bytes); }
};

}  // namespace

Receiver::Receiver(const ConnSettings& settings, ReceiverListener& listener)
    : s_(settings), l_(listener), parser_(settings.server) {
  parser_.setMaxMessageSize(s_.limits.maxPayload);
}

Receiver::~Receiver() {
  releaseUnfinished();
  settleUnfinished();
}

void Receiver::enableInflate(int windowBits, bool noContextTakeover) {
  parser_.setAllowRsv1(true);
  inflateBits_ = static_cast<uint8_t>(windowBits);
  inflateNoCtx_ = noContextTakeover;
}

void Receiver::feed(uint8_t* data, size_t len) {
  if (!done_ && !parser_.failed()) parser_.feed(data, len, *this);
  settleUnfinished();
}

void Receiver::discard() {
  std::string().swap(msg_);
  msgFill_ = 0;
  fragDelivered_ = 0;
  releaseUnfinished();
  settleUnfinished();
}

bool Receiver::fail(int code, const char* reason, bool decompressionError) {
  done_ = true;
  l_.onFail(code, reason, decompressionError);
  return false;
}

void Receiver::onFrameError(int closeCode, const char* reason) { fail(closeCode, reason); }

bool Receiver::readTarget(char** base, size_t* len) {
  // Inside a large uncompressed data payload the kernel copies the rest of
  // it into msg_ itself: the read cannot go past the frame, and the parser
  // unmasks it there (onFramePayload sees it already in place).
  if (done_ || msgCompressed_ || isControl(parser_.current().opcode) || parser_.current().payloadLen < kPlaceMin)
    return false;
  uint64_t left = parser_.payloadLeft();
  if (left == 0) return false;
  size_t region = msg_.size() - msgFill_;
  if (region == 0) {
    // No recycled bytes to overwrite: make room (resize zero-fills, one pass
    // of stores, still cheaper than a copy from the scratch buffer). New
    // memory: charged first; without room the bytes go through the caller's
    // buffer and onFramePayload fails the connection.
    region = static_cast<size_t>(std::min(left, kPlaceChunk));
    if (!chargeUnfinished(msgFill_ + region)) return false;
    msg_.resize(msgFill_ + region);
  }
  *base = &msg_[msgFill_];
  *len = static_cast<size_t>(std::min<uint64_t>(region, left));
  return true;
}

bool Receiver::onFrameHeader(const FrameHeader& h) {
  if (isControl(h.opcode)) {
    ctrl_.clear();
    return true;
  }
  if (h.opcode != kContinuation) {
    msgCompressed_ = h.rsv1;
    msgBinary_ = h.opcode == kBinary;
    msgWire_ = 0;
    msgFill_ = 0;
    fragDelivered_ = 0;
    utf8_.reset();
    if (msgCompressed_ && !inflaterReady_) {
      // The parser allows RSV1 only after enableInflate().
      inflaterReady_ = inflater_.init(inflateBits_, inflateNoCtx_);
      if (!inflaterReady_) return fail(1011, "Inflater unavailable");
    }
    // The parser already refused lengths over maxPayload. What the header
    // announces is not memory the peer has sent: a peer that announces a
    // large frame and stalls must pin no more than the budget allows.
    size_t want = msgCompressed_ ? 0 : static_cast<size_t>(std::min<uint64_t>(h.payloadLen, 64u << 20));
    if (msg_.capacity() < want && want >= kPooledMin) {
      recycleBuffer(std::move(msg_));
      // A recycled buffer (warm pages, read into without zero-filling) keeps
      // its size (see msgFill_) and is held whole from now on, so it is
      // charged whole (heldBytes); with no room for it, it goes back to the
      // pool. Otherwise only a first region is set aside, and the message
      // grows as its bytes arrive (readTarget), each region charged.
      msg_ = takePooled(want);
      if (!msg_.empty() && !chargeUnfinished(heldBytes())) {
        recycleBuffer(std::move(msg_));
        msg_ = std::string();
      }
      if (msg_.empty()) msg_.reserve(static_cast<size_t>(std::min<uint64_t>(want, kPlaceChunk)));
    } else {
      // A small message starts in a spare string the sink gave back (size
      // 0, see takeSpare) rather than in fresh memory. A compressed one's
      // size is unknown: its first frame's length is the hint (the inflater
      // grows it past that when it must).
      uint64_t hint = msgCompressed_ ? h.payloadLen : want;
      if (hint > msg_.capacity() && hint <= kSpareCapacity)
        msg_ = takeSpare(static_cast<size_t>(hint));
      if (msgCompressed_ || msg_.capacity() < want) {
        msg_.clear();
        msg_.reserve(want);
      }
    }
  }
  msgWire_ += h.payloadLen;
  return true;
}

// Payload bytes read into the caller's buffer go straight to their place in
// msg_, unmasked on the way, when a recycled buffer has room there.
uint8_t* Receiver::payloadTarget(const uint8_t* src, size_t len) {
  if (isControl(parser_.current().opcode) || msgCompressed_ || msg_.size() - msgFill_ < len) return nullptr;
  auto* to = reinterpret_cast<uint8_t*>(&msg_[msgFill_]);
  return to == src ? nullptr : to;
}

uint64_t Receiver::inflateLimit(bool* capped) const {
  uint64_t limit = s_.limits.maxPayload;
  *capped = false;
  if (s_.unfinished) {
    uint64_t reach = std::max(kUnbudgetedBytes, unfinishedCharged_ + s_.unfinished->room());
    if (reach < limit) {
      limit = reach;
      *capped = true;
    }
  }
  return limit;
}

// The outcome of inflating: over maxPayload fails with 1009 (so does the
// server's budget for unfinished messages when it capped the output),
// corrupt data fails with 1007 and says it was the compression.
bool Receiver::inflated(Inflater::Result r, bool budgetCapped) {
  if (r == Inflater::kOk) return true;
  if (r == Inflater::kTooBig) return budgetCapped ? failOverBudget() : fail(1009, "Message too big");
  return fail(1007, "Invalid compressed data", true);
}

bool Receiver::onFramePayload(uint8_t* data, size_t len) {
  if (isControl(parser_.current().opcode)) {
    ctrl_.append(reinterpret_cast<const char*>(data), len);
    return true;
  }
  size_t before = msgCompressed_ ? msg_.size() : msgFill_;
  size_t end;
  if (msgCompressed_) {
    // The inflater stops at the budget's room instead of allocating past it.
    bool capped;
    uint64_t limit = inflateLimit(&capped);
    if (!inflated(inflater_.feed(data, len, msg_, limit), capped)) return false;
    end = msg_.size();
  } else {
    if (msgFill_ < msg_.size() && reinterpret_cast<char*>(data) == &msg_[msgFill_] &&
        len <= msg_.size() - msgFill_) {
      // already in place: read there (readTarget) or put there (payloadTarget)
    } else {
      msg_.resize(msgFill_);  // never drops received bytes
      msg_.append(reinterpret_cast<const char*>(data), len);
    }
    msgFill_ += len;
    end = msgFill_;
  }
  if (!chargeUnfinished(heldBytes())) return failOverBudget();
  if (!msgBinary_ &&
      !utf8_.feed(reinterpret_cast<const uint8_t*>(msg_.data()) + before, end - before))
    return fail(1007, "Invalid UTF-8 in text message");
  return true;
}

bool Receiver::onFrameEnd() {
  if (isControl(parser_.current().opcode)) return control();
  if (!parser_.current().fin) return deliver(false);
  // The whole message is in: cut what is left of a region.
  if (!msgCompressed_ && msg_.size() != msgFill_) msg_.resize(msgFill_);
  if (msgCompressed_) {
    size_t before = msg_.size();
    bool capped;
    uint64_t limit = inflateLimit(&capped);
    if (!inflated(inflater_.finish(msg_, limit), capped)) return false;
    if (!msgBinary_ &&
        !utf8_.feed(reinterpret_cast<const uint8_t*>(msg_.data()) + before, msg_.size() - before))
      return fail(1007, "Invalid UTF-8 in text message");
  }
  if (!msgBinary_ && !utf8_.complete()) return fail(1007, "Invalid UTF-8 in text message");
  return deliver(true);
}

// A fragment carries the bytes this frame added (for text: whole code points
// only, the tail waits for the next frame); the final frame delivers the
// whole message.
bool Receiver::deliver(bool final) {
  if (final) {
    std::string data = std::move(msg_);
    msg_ = std::string();
    // The inflater reserves its output by slices sized from the input, so a
    // message that inflates to little (a peer's empty stored blocks: 15 KiB
    // on the wire, nothing out) can sit in up to 64 KiB. What is delivered
    // holds at most a spare's capacity (kSpareCapacity: such strings come
    // back for the next small messages) or twice its bytes plus a page. The
    // event queue counts capacity, so what it holds stays within its budget
    // either way; this keeps a tiny message from taking 64 KiB of it.
    if (msgCompressed_ && data.capacity() > kSpareCapacity && data.capacity() > 2 * data.size() + 4096) {
      std::string exact(data.data(), data.size());
      recycleBuffer(std::move(data));
      data = std::move(exact);
    }
    msgFill_ = 0;
    releaseUnfinished();
    l_.onMessage(std::move(data), msgBinary_, msgWire_);
    return true;
  }
  size_t have = msgCompressed_ ? msg_.size() : msgFill_;
  size_t end = have - (msgBinary_ ? 0 : utf8_.pendingBytes());
  size_t n = end - fragDelivered_;
  // The copy is charged apart from msg_ while it waits for its consumer: a
  // fragment then costs its bytes twice only for as long as both copies
  // really exist, and a reader too slow to take fragments cannot let a peer
  // double what the budget allows.
  std::shared_ptr<void> hold;
  if (s_.unfinished && n > 0) {
    if (n <= kUnbudgetedBytes)
      s_.unfinished->force(n);
    else if (!s_.unfinished->take(n))
      return failOverBudget();
    hold = std::make_shared<BudgetCharge>(s_.unfinished, n);
  }
  // A small fragment's copy goes into a spare string too.
  std::string data = n <= kSpareCapacity ? takeSpare(n) : std::string();
  data.assign(msg_, fragDelivered_, n);
  fragDelivered_ = end;
  l_.onFragment(std::move(data), msgBinary_, parser_.current().payloadLen, std::move(hold));
  return true;
}

bool Receiver::control() {
  const auto* p = reinterpret_cast<const uint8_t*>(ctrl_.data());
  if (parser_.current().opcode != kClose) {
    bool binary = !isValidUtf8(p, ctrl_.size());
    return l_.onControl(parser_.current().opcode, std::move(ctrl_), binary);
  }
  int code = 1005;
  std::string reason;
  if (ctrl_.size() == 1) return fail(1002, "Invalid close frame payload");
  if (ctrl_.size() >= 2) {
    code = (p[0] << 8) | p[1];
    if (!validCloseCode(code)) return fail(1002, "Invalid close code");
    if (!isValidUtf8(p + 2, ctrl_.size() - 2)) return fail(1007, "Invalid UTF-8 in close reason");
    reason.assign(ctrl_, 2, std::string::npos);
  }
  // Stop at a close frame: what follows it is ignored (§5.5.1).
  done_ = true;
  l_.onClose(code, std::move(reason));
  return false;
}

// maxUnfinishedBytes: what the connections of a server hold for messages not
// yet complete, counted as msg_'s size (bytes received, inflated bytes, or a
// region made ready for bytes to come, all of them memory in use), plus the
// copies in fragments until their consumer lets go of them (see deliver). A
// finished message leaves the budget: its event is bounded by the sink (the
// addon's queue pauses reading when full). Up to kUnbudgetedBytes per message
// (or fragment) are counted but never refused, so they need not reach the
// shared counter at once: they are settled when the read ends
// (settleUnfinished), and a message that starts and ends within one read,
// the common case, never touches it. That was two atomic operations on a
// counter every IO thread shares, per message (bench/PROFILE.md, sixth pass).
// What the other connections see lags by one read of this one's, at most
// kUnbudgetedBytes.
bool Receiver::chargeUnfinished(uint64_t n) {
  const auto& b = s_.unfinished;
  if (!b) return true;
  if (n <= kUnbudgetedBytes && unfinishedCharged_ <= kUnbudgetedBytes) {
    unfinishedHeld_ = n;
    return true;
  }
  // Over kUnbudgetedBytes, or coming down from a charge over it (a large
  // message finished: its bytes leave the budget now, not at the end of
  // the read): asked of (or given to) the budget at once, including what
  // this message held unsettled so far.
  if (n > unfinishedCharged_) {
    if (!b->take(n - unfinishedCharged_)) return false;
  } else if (n < unfinishedCharged_) {
    b->give(unfinishedCharged_ - n);
  }
  unfinishedCharged_ = unfinishedHeld_ = n;
  return true;
}

void Receiver::settleUnfinished() {
  const auto& b = s_.unfinished;
  if (!b || unfinishedHeld_ == unfinishedCharged_) return;
  if (unfinishedHeld_ > unfinishedCharged_)
    b->force(unfinishedHeld_ - unfinishedCharged_);
  else
    b->give(unfinishedCharged_ - unfinishedHeld_);
  unfinishedCharged_ = unfinishedHeld_;
}

uint64_t Receiver::heldBytes() const {
  // All of msg_'s size, received or not: a region readTarget() made, and a
  // recycled buffer's stale bytes too, which no other message can use while
  // this one holds them (the pool would allocate afresh).
  return std::max<uint64_t>(msgFill_, msg_.size());
}

bool Receiver::failOverBudget() {
  // The message can never be delivered: its bytes go now, not at close.
  discard();
  return fail(1009, "Unfinished messages exceed the server's maxUnfinishedBytes");
}

}  // namespace wsengine
