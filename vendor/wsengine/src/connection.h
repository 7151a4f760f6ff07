// One WebSocket connection, client or server role, on one IO loop: the TCP
// socket (optionally under TLS), the opening handshake, framing, message
// assembly with UTF-8 checks and permessage-deflate, heartbeat and the close
// handshake. Sends may come from any thread; everything else runs on the loop.
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "deflate.h"
#include "http.h"
#include "io_loop.h"
#include "receiver.h"
#include "settings.h"
#include "tls.h"
#include "wsengine/wsengine.h"

namespace wsengine {

class Connection;

// An outgoing frame: bytes from data[start]; shared so that a broadcast frame
// is built once for every target.
// Large frames return their storage to the buffer pool.
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

// The IP address of a TCP handle's peer as a map key (4 bytes for IPv4, an
// IPv4-mapped IPv6 address included; 16 for IPv6); empty when unknown.
std::string peerAddressKey(const uv_tcp_t* h);

// Receives the life-cycle steps of a connection (on its loop thread).
class ConnectionOwner {
 public:
  virtual ~ConnectionOwner() = default;
  // Server role: the request is valid and the 101 is about to be written.
  // False refuses the upgrade (the connection answers 503: maxConnections).
  virtual bool onConnUpgrading(Connection* c) {
    (void)c;
    return true;
  }
  // The opening handshake succeeded (the Open event is the owner's to emit).
  virtual void onConnOpen(Connection* c) = 0;
  // Client role: TCP/TLS/handshake failed before open.
  virtual void onConnFailed(Connection* c, int httpStatus, const std::string& error) = 0;
  // The connection is closed for good (after open: code/reason/remote say
  // how). Whether a close event follows is the owner's choice.
  virtual void onConnClosed(Connection* c, bool wasOpen, int code, const std::string& reason,
                            bool remote) = 0;
};

class Connection : public std::enable_shared_from_this<Connection>, private ReceiverListener {
 public:
  enum State { kConnecting, kHandshake, kOpen, kClosing, kClosed };

  // settings: shared by every connection of one server start or client start.
  Connection(IoLoop& loop, std::shared_ptr<ConnectionOwner> owner, std::shared_ptr<EventSink> sink,
             uint64_t ownerTag, uint64_t id, ConnSettingsPtr settings);
  ~Connection() override;

  // --- loop thread ---
  // Server role: take the pending connection of `listener` and start reading
  // the opening handshake. Returns false if accept failed.
  bool accept(uv_stream_t* listener);
  // Server role: adopt a socket accepted on another loop (fd already ours).
  bool adopt(int fd);
  // Server role: answer an HTTP error (e.g. 503 over maxConnections) and
  // close; on TLS through TLS, or a plain close before the TLS handshake.
  void reject(int status, const std::string& reason);
  // Client role: connect to addr and run TLS + the opening handshake.
  void connect(const struct sockaddr* addr);
  // Starts the close handshake (code 0: no status code in the frame).
  void close(int code, const std::string& reason);
  // Drops the socket now, without a close handshake (1006 "Connection
  // aborted" unless a close frame went either way). The owner's
  // onConnClosed still follows, as after any close.
  void abort();
  void resumeReading();

  // --- any thread ---
  // Frames (and compresses) one message and queues it.
  SendResult send(const uint8_t* data, size_t len, bool binary);
  // Queues a frame built once for several connections (no deflate).
  SendResult sendShared(const OutFramePtr& frame, uint64_t payloadLen);
  // Server role, no deflate, large payload: when the socket is idle, writes
  // the frame straight from `data` (no copy of what the socket takes) and
  // returns true with *res filled; false when the frame must be queued
  // (then nothing was done: the caller uses sendShared).
  bool trySendZeroCopy(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res);
  // Queues a control frame (ping/pong/close), payload <= 125.
  void sendControl(uint8_t opcode, const uint8_t* data, size_t len);
  uint64_t bufferedAmount() const { return buffered_.load(std::memory_order_relaxed); }
  // Writes what a corked thread queued (see cork() in wsengine.h).
  void flushFromOwner();
  State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
  bool deflateActive() const { return deflateOn_; }
  uint64_t id() const { return id_; }
  IoLoop& loop() const { return loop_; }
  const std::string& requestTarget() const { return requestTarget_; }
  const Headers& peerHeaders() const { return peerHeaders_; }
  // The peer's address as peerAddressKey() gives it (loop thread).
  std::string peerAddress() const { return tcpInit_ ? peerAddressKey(&tcp_) : std::string(); }
  int responseStatus() const { return responseStatus_; }
  // Client role: the TCP connection was established (a failure after this is
  // not one that another address of the host could avoid).
  bool tcpConnected() const { return tcpConnected_; }

  // Builds an unmasked frame (server role) for a broadcast.
  static OutFramePtr buildServerFrame(const uint8_t* data, size_t len, uint8_t opcode);

 private:
  // ReceiverListener
  void onMessage(std::string&& data, bool binary, uint64_t wireSize) override;
  void onFragment(std::string&& data, bool binary, uint64_t wireSize,
                  std::shared_ptr<void> hold) override;
  bool onControl(uint8_t opcode, std::string&& payload, bool binary) override;
  void onClose(int code, std::string&& reason) override;
  void onFail(int code, const std::string& reason, bool decompressionError) override;

  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onConnect(uv_connect_t* req, int status);
  static void onHandleClosed(uv_handle_t* h);
  static void onDeadline(uv_timer_t* t);
  static void onPingTimer(uv_timer_t* t);
  static void onPongDeadline(uv_timer_t* t);

  void startReading();
  void initHandles();
  void beginServerHandshake();
  void onTransportData(uint8_t* data, size_t len);  // bytes after TLS
  void onPlainData(uint8_t* data, size_t len);
  void onTransportReady();  // TCP (and TLS) up
  void handleHandshakeBytes(uint8_t* data, size_t len);
  void serverHandshake(const HttpRequest& req);
  void clientHandshake(const HttpResponse& res);
  void becomeOpen();
  void failConnection(int code, const std::string& reason);
  void failHandshake(int httpStatus, const std::string& error);
  void emit(Event&& ev);
  enum Next { kNothing, kPost, kCork };
  void enqueue(OutFramePtr f);
  Next enqueueLocked(OutFramePtr f);
  Next queueLocked(OutFramePtr f);
  void afterEnqueue(Next next);
  void writeFailed(void* req);
  void flush();
  void writeRaw(std::string bytes);
  void writeBuffers(std::vector<OutFramePtr>&& frames);
  void closeSocket();  // closes every handle; the connection ends in onHandleClosed
  void maybeShutdown();  // closeAfterWrite_ and nothing left to write: FIN, then wait for EOF
  static void onShutdown(uv_shutdown_t* req, int status);
  void finish();       // all handles closed
  void armDeadline(double seconds);
  void startHeartbeat();
  OutFramePtr buildFrame(const uint8_t* data, size_t len, uint8_t opcode, bool compress,
                         SendResult* res);
  void sendPong(const uint8_t* data, size_t len);
  bool sendQueueOver() const { return bufferedAmount() > cfg_.limits.sendHighWaterMark; }
  // Reading stops while the sink is over its budget or the send queue over its
  // high-water mark, and starts again once neither holds.
  void updateReading();

  IoLoop& loop_;
  std::shared_ptr<ConnectionOwner> owner_;
  std::shared_ptr<EventSink> sink_;
  // While a socket read is parsed, its events are held here and pushed
  // together at its end (see onRead); otherwise emit() pushes at once.
  bool holdEvents_ = false;
  std::vector<Event> held_;
  void flushHeld();
  uint64_t ownerTag_;
  uint64_t id_;
  const ConnSettingsPtr settings_;  // before receiver_: it uses them
  const ConnSettings& cfg_;
  std::shared_ptr<Connection> self_;  // keeps us alive while handles are open
  Receiver receiver_;

  uv_tcp_t tcp_;
  uv_timer_t deadline_;
  uv_timer_t pingTimer_;
  int openHandles_ = 0;
  bool tcpInit_ = false;
  bool reading_ = false;
  bool pausedByBudget_ = false;
  bool pausedBySendQueue_ = false;
  // Server role: armed with firstByteTimeout until the peer's first byte.
  bool awaitingFirstByte_ = false;
  uint64_t acceptedMs_ = 0;
  bool socketClosing_ = false;
  bool closeAfterWrite_ = false;  // shut down once queued writes are out
  bool shutdownStarted_ = false;
  int writesInFlight_ = 0;  // uv_write requests; changed under sendMu_

  std::atomic<int> state_{kConnecting};
  std::unique_ptr<TlsSession> tlsSession_;
  std::string handshakeBuf_;
  std::string clientKey_;
  std::string requestTarget_;
  Headers peerHeaders_;
  int responseStatus_ = 0;

  // heartbeat: a ping sent and nothing received since (sent at pingSentMs_)
  bool awaitingPong_ = false;
  uint64_t pingSentMs_ = 0;

  // close handshake
  bool closeSent_ = false;
  bool closeReceived_ = false;
  int closeCode_ = 1006;
  std::string closeReason_;
  bool closeRemote_ = true;
  bool failed_ = false;
  bool wasOpen_ = false;
  bool tcpConnected_ = false;

  // send side (any thread, under sendMu_)
  std::mutex sendMu_;
  std::vector<OutFramePtr> outbox_;
  // The pong in outbox_ not yet handed to the socket (at pendingPongAt_): a
  // newer ping replaces its payload instead of queueing another (RFC 6455
  // §5.5.3), so a ping flood holds at most one pong. Null when none.
  OutFramePtr pendingPong_;
  size_t pendingPongAt_ = 0;
  // A flush is due: posted to the loop, left to uncork(), or left to the
  // onWrite that drains libuv's write queue (see flush()).
  bool flushPosted_ = false;
  Deflater deflater_;
  bool deflaterReady_ = false;
  DeflateParams deflateParams_;
  bool deflateOn_ = false;  // written before state_ becomes kOpen
  std::atomic<uint64_t> buffered_{0};
  int fd_ = -1;  // plain TCP once open, for direct writes; under sendMu_
};

}  // namespace wsengine
