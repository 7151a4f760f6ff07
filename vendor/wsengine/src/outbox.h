// The send path of one connection: frames built (masked on the client side,
// compressed when permessage-deflate is on), the queue of frames waiting for
// the socket, corking (wsengine.h's cork/uncork), writes from the sending
// thread while the socket is idle (small frames, large zero-copy frames, a
// corked batch), the pending pong, bufferedAmount and the writes the loop's Socket makes
// on the loop thread (in pieces of at most 1 GiB).
//
// Small frames queued one after another share one buffer (the tail frame at
// the back of the queue) instead of a frame object and string each.
//
// Threading: send(), sendShared(), trySendZeroCopy(), trySendSmall(), sendControl(),
// sendPong(), sendClose(), bufferedAmount(), deflateActive() and
// flushFromOwner() may run on any thread: what they share is under mu()
// (this outbox's own lock, never held while taking another) or atomic.
// Everything else (set-up, flush, writeRaw, write callbacks) runs on the
// connection's loop thread. Bytes reach the socket in the order they were
// queued whichever thread writes them: a thread writes directly only while
// nothing is queued and no write is in flight (both checked under mu()).
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "deflate.h"
#include "settings.h"
#include "small_lock.h"
#include "socket.h"

namespace wsengine {

class IoLoop;
class TlsSession;

// An outgoing frame: bytes from data[start]; shared so that a broadcast frame
// is built once for every target. Large frames return their storage to the
// buffer pool.
struct OutFrame {
  std::string data;
  size_t start = 0;
  size_t size() const { return data.size() - start; }
  OutFrame() = default;
  OutFrame(const OutFrame&) = delete;
  OutFrame& operator=(const OutFrame&) = delete;
  ~OutFrame() {
    if (data.capacity() >= kPooledMin) recycleBuffer(std::move(data));
  }
};
using OutFramePtr = std::shared_ptr<const OutFrame>;

// uv_buf_init() takes an unsigned (32-bit) length: a frame of 4 GiB or more
// cast into one buffer would be written short and desynchronise the stream.
// Spans are appended as pieces of at most maxPiece (<= kMaxWritePiece) bytes;
// an empty span still gets one (empty) buffer.
constexpr size_t kMaxWritePiece = size_t(1) << 30;
void appendWriteBufs(std::vector<uv_buf_t>& bufs, const char* data, size_t len,
                     size_t maxPiece = kMaxWritePiece);

class Outbox;

// The connection the outbox belongs to.
class OutboxHost {
 public:
  virtual ~OutboxHost() = default;
  // Any thread: a reference to the outbox that keeps its connection alive
  // (a flush posted to the loop and a corked thread's list hold one).
  virtual std::shared_ptr<Outbox> outboxRef() = 0;
  // Loop thread: a write completed (and what it freed let a waiting flush go).
  virtual void onWritten() = 0;
  // Loop thread: a write failed (a libuv error code); the socket must be closed.
  virtual void onWriteFailed(int status) = 0;
  // What the outbox works with, asked of the host instead of kept in each
  // outbox (per-connection memory: the connection holds them already).
  // Any thread: the settings (role, deflate, sendHighWaterMark) and the
  // loop, both for the host's lifetime.
  virtual const ConnSettings& outboxSettings() const = 0;
  virtual IoLoop& outboxLoop() const = 0;
  // Loop thread: the socket (null until it exists; nothing is written then)
  // and the TLS session that encrypts frames (null: plain TCP).
  virtual Socket* outboxSocket() = 0;
  virtual TlsSession* outboxTls() = 0;
};

class Outbox {
 public:
  // The host gives the settings, the loop, the socket and the TLS session.
  explicit Outbox(OutboxHost& host);
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  // --- loop thread ---
  // Until open(), only writeRaw() and control frames go out (to the host's
  // outboxSocket(), encrypted by its outboxTls() when there is one).
  // The opening handshake is done: data frames are accepted. fd >= 0 (plain
  // TCP): sending threads may write to it while the socket is idle.
  // deflateBits 8..15: compress messages (our side's window and takeover as
  // agreed); 0: permessage-deflate is off.
  void open(int fd, int deflateBits, bool deflateNoContextTakeover);
  // Hands what is queued to the Socket (unless it still holds bytes the socket
  // did not take: then the write that drains them flushes).
  void flush();
  // Bytes that are not frames (HTTP heads, TLS records), after what is
  // already being written; counted in bufferedAmount() until written.
  void writeRaw(std::string bytes);
  // Nothing queued and no write in flight.
  bool idle();
  // The FIN is about to go: what is flushed from now on is dropped.
  void stopWriting() { dropping_ = true; }
  // The socket is closing: no more direct writes, data or write callbacks.
  void close();
  // Drops every queued frame (the connection is finished).
  void clear();

  // --- any thread ---
  // Frames (and compresses) one message and queues it (or writes it).
  SendResult send(const uint8_t* data, size_t len, bool binary);
  // Queues a frame built once for several connections (no deflate).
  SendResult sendShared(const OutFramePtr& frame, uint64_t payloadLen);
  // Server role, no deflate, large payload: when the socket is idle, writes
  // the frame straight from `data` (no copy of what the socket takes) and
  // returns true with *res filled; false when the frame must be queued
  // (then nothing was done: the caller uses sendShared).
  bool trySendZeroCopy(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res);
  // Server role, no deflate, small payload (<= 16 KiB): frames it straight
  // into the connection's pending bytes (see appendLocked) without a frame
  // object of its own, and returns true with *res filled exactly as
  // sendShared would; false (nothing done) for a large payload.
  bool trySendSmall(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res);
  // Queues a control frame (ping, pong), payload cut to 125 bytes.
  void sendControl(uint8_t opcode, const uint8_t* data, size_t len);
  // Queues a ping unless the close frame went (false then).
  bool sendPing(const uint8_t* data, size_t len);
  // Queues a pong; a newer one replaces a pong not yet handed to the socket.
  void sendPong(const uint8_t* data, size_t len);
  // Queues the close frame (payload <= 125 bytes); from here on no data
  // frame is accepted (RFC 6455 §5.5.1: none may follow it).
  void sendClose(const uint8_t* payload, size_t len);
  uint64_t bufferedAmount() const { return buffered_.load(std::memory_order_relaxed); }
  bool overHighWaterMark() const {
    return bufferedAmount() > settings().limits.sendHighWaterMark;
  }
  bool deflateActive() const { return deflateBits_ != 0; }
  // Server role, permessage-deflate with server_no_context_takeover agreed:
  // each message is compressed on its own, so one frame compressed once fits
  // every such connection with the same window bits and settings (a topic's
  // publish shares it). 0 when the connection compresses with context.
  int sharedDeflateBits() const { return deflateNoCtx_ ? deflateBits_ : 0; }
  const ConnSettings& settings() const { return host_.outboxSettings(); }
  // Writes what a corked thread queued (see cork() in wsengine.h).
  void flushFromOwner();

  // Builds an unmasked frame (server role) for a broadcast.
  static OutFramePtr buildServerFrame(const uint8_t* data, size_t len, uint8_t opcode);
  // The same, compressed by `deflater` (no context takeover); null when zlib
  // fails. *wireSize: the compressed payload's length.
  static OutFramePtr buildDeflatedServerFrame(const uint8_t* data, size_t len, uint8_t opcode,
                                              Deflater& deflater, uint64_t* wireSize);

 private:
  enum Next { kNothing, kPost, kCork };
  static void onWrite(SocketWrite* req, int status);
  OutFramePtr buildFrame(const uint8_t* data, size_t len, uint8_t opcode, bool compress,
                         SendResult* res);
  void enqueue(OutFramePtr f, bool data);
  Next enqueueLocked(OutFramePtr f);
  Next queueLocked(OutFramePtr f);
  Next writeOrQueueLocked(const struct iovec* iov, size_t count, OutFramePtr whole);
  bool directNowLocked(size_t frameSize) const;
  Next appendLocked(const uint8_t* hdr, size_t hl, const uint8_t* data, size_t len,
                    const uint8_t* maskKey);
  Next boundLocked(uint64_t before, Next next);
  bool writeQueuedLocked();
  void consumeLocked(size_t written);
  void afterEnqueue(Next next);
  bool directLocked() const;
  void writeFrames(std::vector<OutFramePtr>&& frames);
  void submit(void* req);

  // This outbox's own lock. A shared table of striped locks would save 40
  // bytes per connection, but a compression or a large copy is done under
  // this lock (send(): frames must leave in the order the deflater saw
  // them), and with a shared lock an IO thread flushing an unrelated
  // connection on the same stripe would wait that long, and with it every
  // connection that thread serves.
  // One word (small_lock.h), not a 40-byte std::mutex: every connection
  // has one.
  SmallLock& mu() const { return mu_; }

  OutboxHost& host_;
  mutable SmallLock mu_;

  // (Members ordered so that small ones share 8-byte words: this is
  // per-connection memory.)
  // Data frames accepted (from open() to the close frame or close()); under mu().
  std::atomic<bool> open_{false};
  bool dropping_ = false;  // loop thread. FIN sent or socket closing: flushed frames are dropped
  bool closed_ = false;    // loop thread. Socket closing: write callbacks end here
  // queue_.back() is a frame of coalesced small frames this outbox built
  // (never shared, not yet handed to the socket): the next small frame is
  // appended to it (appendLocked). Under mu().
  bool tailOpen_ = false;
  int fd_ = -1;  // plain TCP while open, for direct writes; under mu()
  int writesInFlight_ = 0;  // socket writes; changed under mu() (loop thread)
  // The pong in queue_ not yet handed to the socket, as its index + 1 (0:
  // none): a newer ping replaces its payload instead of queueing another
  // (RFC 6455 §5.5.3), so a ping flood holds at most one pong. Under mu();
  // reset by everything that removes frames from queue_ (consumeLocked,
  // flush, clear), so the index stays that pong's.
  uint32_t pendingPongAt_ = 0;
  bool deflaterReady_ = false;  // deflater_ is made; under mu()
  bool deflateNoCtx_ = false;
  uint8_t deflateBits_ = 0;  // written in open(), before data is accepted
  // A flush is due: posted to the loop, left to uncork(), or left to the
  // onWrite that drains the Socket's write queue (see flush()).
  bool flushPosted_ = false;
  std::vector<OutFramePtr> queue_;
  Deflater deflater_;        // under mu(), made at the first compressed send
  std::atomic<uint64_t> buffered_{0};
};

}  // namespace wsengine
