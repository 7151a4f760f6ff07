// The send path (see outbox.h for the threading rule).
#include "outbox.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>

#include "frame.h"
#include "io_loop.h"
#include "random.h"
#include "tls.h"
#include "utf8.h"

namespace wsengine {

namespace {

constexpr size_t kMaxControlPayload = 125;
// Frames up to this size are written by the sending thread when the socket
// is idle; larger ones are a system call of their own anyway (see
// trySendZeroCopy for the large ones that skip the copy).
constexpr size_t kDirectWriteMax = 16 * 1024;
// A corked connection's queue is written by the owner thread up to this
// many bytes (at uncork, or as soon as a long burst crosses it); more goes
// to the IO thread, which copies nothing again when the socket is full.
constexpr uint64_t kCorkedMax = kDirectWriteMax * 4;
// Small frames queued one after another are appended to one frame (the
// tail, see appendLocked) of at most this many bytes: one allocation per
// burst instead of a frame object and a string per message. Below
// kPooledMin, so a tail's storage is plain malloc.
constexpr size_t kTailMax = 16 * 1024;

// True when `n` more bytes would take the queue (`queued`) over
// sendHighWaterMark, with why in `message`: a message that alone is larger
// than the mark is never sent whatever the queue holds, and saying "over"
// with bufferedAmount 0 read as a bug.
bool overMark(uint64_t queued, uint64_t n, uint64_t mark, std::string& message) {
  if (queued + n <= mark) return false;
  if (queued == 0)
    message = "A message of " + std::to_string(n) + " bytes is larger than sendHighWaterMark (" +
              std::to_string(mark) + ")";
  else
    message = "Send buffer is over its high-water mark";
  return true;
}

// An empty string with room for n bytes; large ones come recycled.
void frameStorage(std::string& s, size_t n) {
  if (n >= kPooledMin) {
    s = takeBuffer(n);
    s.clear();
  } else {
    s.reserve(n);
  }
}

struct WriteReq : SocketWrite {  // its bufs point into frames or raw
  std::vector<OutFramePtr> frames;
  std::string raw;
  uint64_t accounted = 0;  // bytes of buffered_ this write releases
};

// The one write this file makes outside the loop's Socket: as much of the
// spans as the socket takes now, from the calling thread, never waiting (EINTR is
// retried). Returns the bytes written; 0 when the socket is full or failed
// (the loop thread's next write reports a failure).
size_t writeNow(int fd, const struct iovec* iov, size_t count) {
  ssize_t w;
  do {
    if (count == 1) {
      w = ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_DONTWAIT | MSG_NOSIGNAL);
    } else {
      struct msghdr msg;
      std::memset(&msg, 0, sizeof msg);
      msg.msg_iov = const_cast<struct iovec*>(iov);
      msg.msg_iovlen = count;
      w = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  } while (w < 0 && errno == EINTR);
  return w > 0 ? static_cast<size_t>(w) : 0;
}

// The bytes of the spans past the first `skip`, copied into one new frame.
OutFramePtr restOf(const struct iovec* iov, size_t count, size_t skip) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += iov[i].iov_len;
  auto rest = std::make_shared<OutFrame>();
  frameStorage(rest->data, total - skip);
  for (size_t i = 0; i < count; ++i) {
    if (skip >= iov[i].iov_len) {
      skip -= iov[i].iov_len;
      continue;
    }
    rest->data.append(static_cast<const char*>(iov[i].iov_base) + skip, iov[i].iov_len - skip);
    skip = 0;
  }
  return rest;
}

struct iovec span(const OutFrame& f) {
  struct iovec v;
  v.iov_base = const_cast<char*>(f.data.data() + f.start);
  v.iov_len = f.size();
  return v;
}

// cork()/uncork() (wsengine.h): while corked, this thread's sends only queue;
// the outboxes they touched are written once at uncork.
thread_local int tCorkDepth = 0;
thread_local unsigned tCorkPass = 0;  // direct writes still allowed while corked
thread_local std::vector<std::shared_ptr<Outbox>>* tCorked = nullptr;

// Frames this thread wrote out of a queue (consumeLocked), kept for the
// next tails it starts (appendLocked). An echo server's JS thread starts a
// tail per connection per delivered batch and writes it at uncork: with
// malloc, each tail was a fresh 4-16 KiB block grown by reallocation (a
// copy), returned when written and often trimmed back to the kernel, so
// the next one page-faulted in again (echo 1 KiB, DWARF profiles: malloc
// and free under Outbox 2.1 % -> 0.6 % of the server's CPU, bench/PROFILE.md
// sixth pass). Bounded in
// bytes per thread; an idle connection still holds no tail (the memory
// sits here, not in the connection). Only frames below kPooledMin are
// kept (larger ones go back to the buffer pool in ~OutFrame), only ones
// nothing else holds (use_count 1: a broadcast frame still queued on
// another connection is not taken), and the frame is reset before reuse.
struct TailCache {
  std::vector<OutFramePtr> frames;
  size_t bytes = 0;
};
thread_local TailCache tTails;
constexpr size_t kTailCacheBytes = size_t(1) << 20;
constexpr size_t kTailKeepMin = 1024;  // smaller ones are tcache-cheap anyway

// A written frame whose storage this thread may reuse as a tail.
void keepTail(OutFramePtr& f) {
  if (!f || f.use_count() != 1) return;
  size_t cap = f->data.capacity();
  if (cap < kTailKeepMin || cap >= kPooledMin || tTails.bytes + cap > kTailCacheBytes) return;
  tTails.bytes += cap;
  tTails.frames.push_back(std::move(f));
}

// An empty frame with room for at least `want` bytes: a kept one when this
// thread has one, else a new one with room for `reserve`.
std::shared_ptr<OutFrame> takeTail(size_t want, size_t reserve) {
  if (!tTails.frames.empty()) {
    std::shared_ptr<OutFrame> f = std::const_pointer_cast<OutFrame>(std::move(tTails.frames.back()));
    tTails.frames.pop_back();
    tTails.bytes -= f->data.capacity();
    f->data.clear();
    f->start = 0;
    if (f->data.capacity() < want) f->data.reserve(reserve);
    return f;
  }
  auto f = std::make_shared<OutFrame>();
  f->data.reserve(reserve);
  return f;
}

}  // namespace

void cork(unsigned passThrough) {
  if (tCorkDepth++ == 0) tCorkPass = passThrough;
}

void uncork() {
  if (tCorkDepth == 0 || --tCorkDepth > 0) return;
  tCorkPass = 0;
  flushCorked();
}

void flushCorked() {
  if (!tCorked || tCorked->empty()) return;
  std::vector<std::shared_ptr<Outbox>> outboxes;
  outboxes.swap(*tCorked);
  for (auto& o : outboxes) o->flushFromOwner();
}

void appendWriteBufs(std::vector<uv_buf_t>& bufs, const char* data, size_t len, size_t maxPiece) {
  if (maxPiece == 0 || maxPiece > kMaxWritePiece) maxPiece = kMaxWritePiece;
  do {
    size_t n = std::min(len, maxPiece);
    bufs.push_back(uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(n)));
    data += n;
    len -= n;
  } while (len > 0);
}

Outbox::Outbox(OutboxHost& host) : host_(host) {}

void Outbox::open(int fd, int deflateBits, bool deflateNoContextTakeover) {
  std::lock_guard<SmallLock> lock(mu());
  fd_ = fd;
  deflateBits_ = static_cast<uint8_t>(deflateBits);
  deflateNoCtx_ = deflateNoContextTakeover;
  open_.store(true, std::memory_order_release);
}

void Outbox::close() {
  {
    // Under the lock: a direct write in progress finishes before the fd goes.
    std::lock_guard<SmallLock> lock(mu());
    fd_ = -1;
    open_.store(false, std::memory_order_release);
  }
  closed_ = true;
  dropping_ = true;
}

void Outbox::clear() {
  std::lock_guard<SmallLock> lock(mu());
  queue_.clear();
  pendingPongAt_ = 0;
  tailOpen_ = false;
}

bool Outbox::idle() {
  if (writesInFlight_ > 0) return false;
  std::lock_guard<SmallLock> lock(mu());
  return queue_.empty();
}

// ---------------------------------------------------------------- frames

OutFramePtr Outbox::buildFrame(const uint8_t* data, size_t len, uint8_t opcode, bool compress,
                               SendResult* res) {
  auto f = std::make_shared<OutFrame>();
  bool rsv1 = false;
  frameStorage(f->data, kMaxFrameHeader + (compress ? len / 2 + 64 : len));
  f->data.resize(kMaxFrameHeader);
  if (compress) {
    if (deflater_.compress(data, len, f->data)) {
      rsv1 = true;
    } else {
      if (res) res->compressionError = true;
      f->data.resize(kMaxFrameHeader);
      f->data.append(reinterpret_cast<const char*>(data), len);
    }
  } else if (len) {
    f->data.append(reinterpret_cast<const char*>(data), len);
  }
  uint64_t plen = f->data.size() - kMaxFrameHeader;
  uint8_t hdr[kMaxFrameHeader];
  uint8_t key[4];
  bool masked = !settings().server;
  if (masked) randomBytes(key, 4);
  size_t hl = writeFrameHeader(hdr, true, rsv1, opcode, plen, masked ? key : nullptr);
  f->start = kMaxFrameHeader - hl;
  std::memcpy(&f->data[f->start], hdr, hl);
  if (masked && plen) applyMask(reinterpret_cast<uint8_t*>(&f->data[kMaxFrameHeader]), plen, key, 0);
  if (res) res->wireSize = plen;
  return f;
}

OutFramePtr Outbox::buildServerFrame(const uint8_t* data, size_t len, uint8_t opcode) {
  auto f = std::make_shared<OutFrame>();
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, false, opcode, len, nullptr);
  frameStorage(f->data, hl + len);
  f->data.append(reinterpret_cast<const char*>(hdr), hl);
  if (len) f->data.append(reinterpret_cast<const char*>(data), len);
  return f;
}

OutFramePtr Outbox::buildDeflatedServerFrame(const uint8_t* data, size_t len, uint8_t opcode,
                                             Deflater& deflater, uint64_t* wireSize) {
  auto f = std::make_shared<OutFrame>();
  frameStorage(f->data, kMaxFrameHeader + len / 2 + 64);
  f->data.resize(kMaxFrameHeader);
  if (!deflater.compress(data, len, f->data)) return nullptr;
  uint64_t plen = f->data.size() - kMaxFrameHeader;
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, true, opcode, plen, nullptr);
  f->start = kMaxFrameHeader - hl;
  std::memcpy(&f->data[f->start], hdr, hl);
  *wireSize = plen;
  return f;
}

// ------------------------------------------------------------ any thread

SendResult Outbox::send(const uint8_t* data, size_t len, bool binary) {
  // Asked of the host once: the outbox keeps no copy (per-connection memory).
  const ConnSettings& s = settings();
  SendResult res;
  res.payloadSize = len;
  if (!open_.load(std::memory_order_acquire)) {
    res.message = "Not connected";
  } else if (!binary && !isValidUtf8(data, len)) {
    res.message = "Invalid UTF-8: a text message must be valid UTF-8";
  } else if (overMark(bufferedAmount(), len, s.limits.sendHighWaterMark, res.message)) {
    // refused: the message says why
  } else {
    Next next;
    {
      std::lock_guard<SmallLock> lock(mu());
      // Checked again under the lock: a close frame queued since must stay last.
      if (!open_.load(std::memory_order_relaxed)) {
        res.message = "Not connected";
        res.bufferedAmount = bufferedAmount();
        return res;
      }
      // Compressed under the lock: with context takeover, frames must go
      // out in the order the deflater saw them.
      bool compress = deflateBits_ != 0 && len >= s.deflate.threshold;
      if (compress && !deflaterReady_) {
        const DeflateOptions& d = s.deflate;
        deflaterReady_ = deflater_.init(deflateBits_, deflateNoCtx_, d.level, d.memLevel);
        if (!deflaterReady_) res.compressionError = true;
      }
      const uint8_t opcode = binary ? kBinary : kText;
      compress = compress && deflaterReady_;
      // Uncompressed and small: straight into the pending bytes. A client's
      // frame to an idle socket is built as its own frame and written at
      // once (its payload must be masked in a copy anyway).
      const size_t clientFrame = len + (len < 126 ? 2 : 4) + 4;  // len <= 16 KiB, masked
      if (!compress && len <= kDirectWriteMax && (s.server || !directNowLocked(clientFrame))) {
        uint8_t hdr[kMaxFrameHeader];
        uint8_t key[4];
        bool masked = !s.server;
        if (masked) randomBytes(key, 4);
        size_t hl = writeFrameHeader(hdr, true, false, opcode, len, masked ? key : nullptr);
        res.wireSize = len;
        next = appendLocked(hdr, hl, data, len, masked ? key : nullptr);
      } else {
        next = enqueueLocked(buildFrame(data, len, opcode, compress, &res));
      }
    }
    afterEnqueue(next);
    res.success = true;
  }
  res.bufferedAmount = bufferedAmount();
  return res;
}

SendResult Outbox::sendShared(const OutFramePtr& frame, uint64_t payloadLen) {
  SendResult res;
  res.payloadSize = payloadLen;
  res.wireSize = payloadLen;
  if (!open_.load(std::memory_order_acquire)) {
    res.message = "Not connected";
  } else if (overMark(bufferedAmount(), frame->size(), settings().limits.sendHighWaterMark, res.message)) {
    // refused: the message says why
  } else {
    Next next;
    {
      std::lock_guard<SmallLock> lock(mu());
      if (open_.load(std::memory_order_relaxed)) {
        next = enqueueLocked(frame);
        res.success = true;
      } else {
        res.message = "Not connected";
        next = kNothing;
      }
    }
    afterEnqueue(next);
  }
  res.bufferedAmount = bufferedAmount();
  return res;
}

bool Outbox::trySendZeroCopy(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res) {
  // Small frames are cheaper to copy and batch (cork); large ones are a
  // syscall of their own anyway, so they skip the copy into a frame and the
  // hop to the IO thread, even while corked.
  if (len <= kDirectWriteMax || !settings().server) return false;
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, false, opcode, len, nullptr);
  Next next;
  {
    std::lock_guard<SmallLock> lock(mu());
    // Idle socket only: nothing queued or being written may go after us.
    if (!directLocked() || !queue_.empty()) return false;
    res->payloadSize = len;
    res->wireSize = len;
    if (overMark(bufferedAmount(), hl + len, settings().limits.sendHighWaterMark, res->message)) {
      res->bufferedAmount = bufferedAmount();
      return true;
    }
    struct iovec iov[2];
    iov[0].iov_base = hdr;
    iov[0].iov_len = hl;
    iov[1].iov_base = const_cast<uint8_t*>(data);
    iov[1].iov_len = len;
    next = writeOrQueueLocked(iov, 2, nullptr);
  }
  afterEnqueue(next);
  res->success = true;
  res->bufferedAmount = bufferedAmount();
  return true;
}

bool Outbox::trySendSmall(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res) {
  if (len > kDirectWriteMax || !settings().server || deflateBits_ != 0) return false;
  // The same checks, in the same order, and the same result as sendShared
  // with a frame built for this connection alone.
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, false, opcode, len, nullptr);
  res->payloadSize = len;
  res->wireSize = len;
  if (!open_.load(std::memory_order_acquire)) {
    res->message = "Not connected";
  } else if (overMark(bufferedAmount(), hl + len, settings().limits.sendHighWaterMark, res->message)) {
    // refused: the message says why
  } else {
    Next next = kNothing;
    {
      std::lock_guard<SmallLock> lock(mu());
      if (open_.load(std::memory_order_relaxed)) {
        next = appendLocked(hdr, hl, data, len, nullptr);
        res->success = true;
      } else {
        res->message = "Not connected";
      }
    }
    afterEnqueue(next);
  }
  res->bufferedAmount = bufferedAmount();
  return true;
}

void Outbox::sendControl(uint8_t opcode, const uint8_t* data, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  enqueue(buildFrame(data, len, opcode, false, nullptr), false);
}

bool Outbox::sendPing(const uint8_t* data, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  OutFramePtr f = buildFrame(data, len, kPing, false, nullptr);
  Next next;
  {
    std::lock_guard<SmallLock> lock(mu());
    if (!open_.load(std::memory_order_relaxed)) return false;  // closed (or not open yet)
    next = enqueueLocked(std::move(f));
  }
  afterEnqueue(next);
  return true;
}

void Outbox::sendClose(const uint8_t* payload, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  OutFramePtr f = buildFrame(payload, len, kClose, false, nullptr);
  Next next;
  {
    std::lock_guard<SmallLock> lock(mu());
    open_.store(false, std::memory_order_release);  // before the frame: nothing may follow it
    next = enqueueLocked(std::move(f));
  }
  afterEnqueue(next);
}

// RFC 6455 §5.5.3: a pong may answer only the latest of several pings. A pong
// still waiting in the queue takes the new payload in its place; pongs
// already handed to the socket are left alone.
void Outbox::sendPong(const uint8_t* data, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  OutFramePtr f = buildFrame(data, len, kPong, false, nullptr);
  Next next;
  {
    std::lock_guard<SmallLock> lock(mu());
    if (pendingPongAt_ > 0 && pendingPongAt_ <= queue_.size()) {
      OutFramePtr& old = queue_[pendingPongAt_ - 1];
      buffered_.fetch_add(f->size(), std::memory_order_relaxed);
      buffered_.fetch_sub(old->size(), std::memory_order_relaxed);
      old = std::move(f);
      return;
    }
    next = enqueueLocked(f);
    if (!queue_.empty() && queue_.back() == f && queue_.size() <= UINT32_MAX)
      pendingPongAt_ = static_cast<uint32_t>(queue_.size());
    else
      pendingPongAt_ = 0;  // written at once (or only its tail queued)
  }
  afterEnqueue(next);
}

void Outbox::enqueue(OutFramePtr f, bool data) {
  Next next;
  {
    std::lock_guard<SmallLock> lock(mu());
    if (data && !open_.load(std::memory_order_relaxed)) return;
    next = enqueueLocked(std::move(f));
  }
  afterEnqueue(next);
}

// With mu() held: the socket is open for direct writes and none is in flight.
bool Outbox::directLocked() const {
  return fd_ >= 0 && writesInFlight_ == 0 && open_.load(std::memory_order_relaxed);
}

// With mu() held: a frame of this size would be written now by the sending
// thread (uncorked, or within the cork's pass-through; small; nothing queued
// or being written).
bool Outbox::directNowLocked(size_t frameSize) const {
  return (tCorkDepth == 0 || tCorkPass > 0) && frameSize <= kDirectWriteMax && queue_.empty() &&
         directLocked();
}

// With mu() held: one small frame, its header (hl bytes) and payload given
// apart (the payload masked with maskKey on the way in, client role), queued
// exactly as enqueueLocked would queue it built as a frame of its own (same
// order, same bufferedAmount, same direct write, same cork bound), without
// a frame object: on an idle socket (server role) the sending thread writes
// header and payload from where they are and copies only what the socket
// did not take; otherwise both are appended to the tail frame, which holds
// the small frames queued one after another (a corked batch of replies is
// one allocation and one span to write instead of one frame each).
Outbox::Next Outbox::appendLocked(const uint8_t* hdr, size_t hl, const uint8_t* data, size_t len,
                                  const uint8_t* maskKey) {
  const size_t n = hl + len;
  size_t skip = 0;  // bytes of the frame already written
  bool direct = !maskKey && directNowLocked(n);
  if (direct) {
    if (tCorkDepth > 0) --tCorkPass;
    struct iovec iov[2];
    iov[0].iov_base = const_cast<uint8_t*>(hdr);
    iov[0].iov_len = hl;
    iov[1].iov_base = const_cast<uint8_t*>(data);
    iov[1].iov_len = len;
    skip = writeNow(fd_, iov, len ? 2 : 1);
    if (skip == n) return kNothing;
  }
  uint64_t before = bufferedAmount();
  const size_t m = n - skip;
  OutFrame* tail = nullptr;
  if (tailOpen_) {
    tail = const_cast<OutFrame*>(queue_.back().get());  // built non-const below
    size_t need = tail->data.size() + m;
    if (need > kTailMax) {
      tail = nullptr;
    } else if (need > tail->data.capacity()) {
      tail->data.reserve(std::min(kTailMax, std::max(need, 2 * tail->data.capacity())));
    }
  }
  if (!tail) {
    // Room for a few more like it: a frame queued behind others (or corked)
    // is seldom the last.
    std::shared_ptr<OutFrame> f = takeTail(m, std::max(m, std::min(kTailMax, std::max<size_t>(4 * m, 512))));
    tail = f.get();
    queue_.push_back(std::move(f));
    tailOpen_ = true;
  }
  std::string& out = tail->data;
  if (skip < hl) out.append(reinterpret_cast<const char*>(hdr) + skip, hl - skip);
  size_t from = skip > hl ? skip - hl : 0;
  if (from < len) {
    if (maskKey) {
      size_t at = out.size();
      out.resize(at + (len - from));
      copyMasked(reinterpret_cast<uint8_t*>(&out[at]), data + from, len - from, maskKey, from);
    } else {
      out.append(reinterpret_cast<const char*>(data) + from, len - from);
    }
  }
  buffered_.fetch_add(m, std::memory_order_relaxed);
  Next next = kNothing;
  if (!flushPosted_) {
    flushPosted_ = true;
    next = tCorkDepth > 0 ? kCork : kPost;
  }
  // What the socket did not take of a direct write waits for the IO
  // thread, as in writeOrQueueLocked; a queued frame counts against the cork
  // bound, as in enqueueLocked.
  return direct ? next : boundLocked(before, next);
}

// With mu() held. Corked: queue, and have uncork() write it. Otherwise, when
// nothing is queued or being written, the calling thread writes a small frame
// itself (no hop to the IO thread: lower latency, fewer wake-ups); what the
// socket does not take at once is queued for the IO thread.
Outbox::Next Outbox::enqueueLocked(OutFramePtr f) {
  if (directNowLocked(f->size())) {
    if (tCorkDepth > 0) --tCorkPass;
    struct iovec iov = span(*f);
    return writeOrQueueLocked(&iov, 1, std::move(f));
  }
  uint64_t before = bufferedAmount();
  return boundLocked(before, queueLocked(std::move(f)));
}

// With mu() held, after a frame was queued (bufferedAmount() was `before`).
Outbox::Next Outbox::boundLocked(uint64_t before, Next next) {
  // A corked connection holds at most kCorkedMax bytes, or half its
  // sendHighWaterMark when that is smaller: the send that crosses it writes
  // the queue now, as uncorked sends would have. So corking bounds the memory
  // a long burst holds, and never refuses a send over the high-water mark
  // that an uncorked one to an idle socket would have accepted. What the
  // socket does not take goes to the IO thread (and sends queue behind it
  // without another attempt until its writes drain the queue below the
  // bound).
  uint64_t bound = std::min<uint64_t>(kCorkedMax, settings().limits.sendHighWaterMark / 2);
  if (tCorkDepth > 0 && before <= bound && bufferedAmount() > bound && directLocked() &&
      !writeQueuedLocked())
    return kPost;
  return next;
}

// With mu() held, on an idle socket: writes queued frames from this thread
// (up to 256 per system call: a task's burst of small frames to one
// connection is one call) until the queue is empty or the socket takes less
// than it was given. True when the queue is empty.
bool Outbox::writeQueuedLocked() {
  while (!queue_.empty() && directLocked()) {
    struct iovec iov[256];
    size_t n = std::min<size_t>(queue_.size(), 256), total = 0;
    for (size_t i = 0; i < n; ++i) {
      iov[i] = span(*queue_[i]);
      total += iov[i].iov_len;
    }
    size_t written = writeNow(fd_, iov, n);
    consumeLocked(written);
    if (written < total) break;
  }
  return queue_.empty();
}

// With mu() held, on an idle socket: writes the spans from this thread; what
// the socket does not take (full, or failed: the IO thread's write reports
// it) is queued: `whole` itself when the socket took nothing, else a copy of
// the rest.
Outbox::Next Outbox::writeOrQueueLocked(const struct iovec* iov, size_t count, OutFramePtr whole) {
  size_t total = 0;
  for (size_t i = 0; i < count; ++i) total += iov[i].iov_len;
  size_t written = writeNow(fd_, iov, count);
  if (written == total) return kNothing;
  return queueLocked(written == 0 && whole ? std::move(whole) : restOf(iov, count, written));
}

// With mu() held: the frame waits for the IO thread (or uncork).
Outbox::Next Outbox::queueLocked(OutFramePtr f) {
  buffered_.fetch_add(f->size(), std::memory_order_relaxed);
  queue_.push_back(std::move(f));
  tailOpen_ = false;
  if (flushPosted_) return kNothing;  // a flush is already due
  flushPosted_ = true;
  return tCorkDepth > 0 ? kCork : kPost;
}

// With mu() held: the socket took `written` bytes from the front of queue_.
void Outbox::consumeLocked(size_t written) {
  if (written == 0) return;
  size_t left = written, done = 0;
  while (done < queue_.size() && left >= queue_[done]->size()) left -= queue_[done++]->size();
  // The tail was written (or is about to be replaced by its rest).
  if (done + (left > 0 ? 1 : 0) >= queue_.size()) tailOpen_ = false;
  if (left > 0) {
    // The socket took part of a frame: keep the rest in its place.
    struct iovec part = span(*queue_[done]);
    queue_[done] = restOf(&part, 1, left);
  }
  for (size_t i = 0; i < done; ++i) keepTail(queue_[i]);
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(done));
  buffered_.fetch_sub(written, std::memory_order_relaxed);
  pendingPongAt_ = 0;  // sent, or moved: no longer replaceable
}

void Outbox::afterEnqueue(Next next) {
  if (next == kPost) {
    std::shared_ptr<Outbox> self = host_.outboxRef();
    host_.outboxLoop().post([self] { self->flush(); });
  } else if (next == kCork) {
    if (!tCorked) tCorked = new std::vector<std::shared_ptr<Outbox>>();  // per thread, kept
    tCorked->push_back(host_.outboxRef());
  }
}

// At uncork, on the owner thread: one system call for everything this
// connection queued when its socket is idle; the rest (or all, under TLS or
// while the IO thread is writing) goes to the IO thread.
void Outbox::flushFromOwner() {
  {
    std::lock_guard<SmallLock> lock(mu());
    if (queue_.empty()) {
      flushPosted_ = false;
      return;
    }
    // Large amounts go to the IO thread: what the socket does not take at
    // once would be copied again here, on the owner's thread.
    if (directLocked() && buffered_.load(std::memory_order_relaxed) <= kCorkedMax &&
        writeQueuedLocked()) {
      flushPosted_ = false;
      return;
    }
  }
  std::shared_ptr<Outbox> self = host_.outboxRef();
  host_.outboxLoop().post([self] { self->flush(); });
}

// ------------------------------------------------------------ loop thread

void Outbox::flush() {
  std::vector<OutFramePtr> frames;
  Socket* sock = host_.outboxSocket();
  bool drop = dropping_ || !sock;
  // While the Socket still holds bytes it could not write (the socket is
  // full: a peer not reading keeps them there), frames wait in the queue,
  // where bufferedAmount sees them and a newer pong replaces an unsent one;
  // the onWrite that empties the Socket's queue flushes them. (Handing every
  // flush to the Socket queued pongs without bound.) A socket that takes
  // everything at once leaves that queue empty: the next write goes at once.
  bool stalled = !drop && sock->writesPending();
  {
    std::lock_guard<SmallLock> lock(mu());
    if (stalled && writesInFlight_ > 0) {
      flushPosted_ = !queue_.empty();
      return;
    }
    frames.swap(queue_);
    pendingPongAt_ = 0;
    tailOpen_ = false;
    flushPosted_ = false;
    // Counted before the lock is released so that no direct write can slip
    // in ahead of these frames.
    if (!frames.empty() && !drop) ++writesInFlight_;
  }
  if (frames.empty()) return;
  if (drop) {
    uint64_t n = 0;
    for (auto& f : frames) n += f->size();
    buffered_.fetch_sub(n, std::memory_order_relaxed);
    return;
  }
  writeFrames(std::move(frames));
}

void Outbox::writeFrames(std::vector<OutFramePtr>&& frames) {
  auto* w = new WriteReq;
  w->data = this;
  for (auto& f : frames) w->accounted += f->size();
  std::vector<uv_buf_t>& bufs = w->bufs;
  if (TlsSession* tls = host_.outboxTls()) {
    for (auto& f : frames)
      tls->write(reinterpret_cast<const uint8_t*>(f->data.data() + f->start), f->size());
    tls->takeOutput(w->raw);
    appendWriteBufs(bufs, &w->raw[0], w->raw.size());
  } else {
    w->frames = std::move(frames);
    bufs.reserve(w->frames.size());
    for (auto& f : w->frames) appendWriteBufs(bufs, f->data.data() + f->start, f->size());
  }
  submit(w);
}

void Outbox::writeRaw(std::string bytes) {
  if (bytes.empty() || closed_ || !host_.outboxSocket()) return;
  auto* w = new WriteReq;
  w->data = this;
  // Counted like frames: a peer can make the TLS layer write without end (a
  // KeyUpdate it requests is answered with one of ours, ~27 bytes a time)
  // while it reads nothing, and these bytes must hold its reading back at
  // the high-water mark too (Connection::updateReading).
  w->accounted = bytes.size();
  buffered_.fetch_add(w->accounted, std::memory_order_relaxed);
  w->raw = std::move(bytes);
  appendWriteBufs(w->bufs, &w->raw[0], w->raw.size());
  {
    std::lock_guard<SmallLock> lock(mu());
    ++writesInFlight_;
  }
  submit(w);
}

// Hands a write (counted in writesInFlight_) to the socket.
void Outbox::submit(void* req) {
  auto* w = static_cast<WriteReq*>(req);
  int rc = host_.outboxSocket()->write(w, &Outbox::onWrite);
  if (rc == 0) return;
  buffered_.fetch_sub(w->accounted, std::memory_order_relaxed);
  delete w;
  {
    std::lock_guard<SmallLock> lock(mu());
    --writesInFlight_;
  }
  host_.onWriteFailed(rc);
}

void Outbox::onWrite(SocketWrite* req, int status) {
  auto* w = static_cast<WriteReq*>(req);
  auto* self = static_cast<Outbox*>(req->data);
  self->buffered_.fetch_sub(w->accounted, std::memory_order_relaxed);
  bool more;
  Socket* sock = self->host_.outboxSocket();
  bool drained = !sock || !sock->writesPending();
  {
    std::lock_guard<SmallLock> lock(self->mu());
    --self->writesInFlight_;
    more = drained && self->flushPosted_ && !self->queue_.empty();
  }
  delete w;
  if (status == UV_ECANCELED || self->closed_) return;
  if (status < 0) {
    self->host_.onWriteFailed(status);
    return;
  }
  if (more) self->flush();
  self->host_.onWritten();
}

}  // namespace wsengine
