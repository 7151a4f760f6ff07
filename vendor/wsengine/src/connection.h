// One WebSocket connection, client or server role, on one IO loop: the TCP
// socket (optionally under TLS), the opening handshakes (handshake.cc), the
// close handshake, the heartbeat and the deadlines, and the events it raises.
// It wires a Receiver (what the peer sends) and an Outbox (what we send) to
// the socket.
//
// Threading: the loop thread, except the send-side methods marked "any
// thread" below, which go to the Outbox (see outbox.h), and state().
#pragma once

#include <uv.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "io_loop.h"
#include "outbox.h"
#include "receiver.h"
#include "settings.h"
#include "tls.h"
#include "wsengine/wsengine.h"

namespace wsengine {

class Connection;
struct HttpRequest;
struct HttpResponse;

// A peer's IP address as a map key (4 bytes for IPv4, an IPv4-mapped IPv6
// address included; 16 for IPv6); empty for another family.
std::string addressKey(const struct sockaddr_storage& ss);

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
  // The opening handshake succeeded (the Open event is the owner's to emit;
  // takePeerHeaders() hands it the peer's headers).
  virtual void onConnOpen(Connection* c) = 0;
  // Client role: TCP/TLS/handshake failed before open.
  virtual void onConnFailed(Connection* c, int httpStatus, const std::string& error) = 0;
  // The connection is closed for good (after open: code/reason/remote say
  // how). Whether a close event follows is the owner's choice.
  virtual void onConnClosed(Connection* c, bool wasOpen, int code, const std::string& reason,
                            bool remote) = 0;
};

class Connection : public std::enable_shared_from_this<Connection>,
                   private ReceiverListener,
                   private OutboxHost {
 public:
  enum State { kConnecting, kHandshake, kOpen, kClosing, kClosed };

  // settings: shared by every connection of one server start or client start
  // (its owner, event sink and owner tag included).
  Connection(IoLoop& loop, uint64_t id, ConnSettingsPtr settings);
  ~Connection() override;

  // --- loop thread ---
  // Server role: adopt an accepted socket (the fd is ours from here, closed
  // on failure) and start reading the opening handshake. `accepted`: it
  // comes from the listener (acceptOne), already non-blocking and
  // close-on-exec. False (fd closed) when it failed or the connection was
  // aborted before.
  bool adopt(int fd, bool accepted = false);
  // Server role, right after adopt(): the bytes the socket's previous owner
  // had already read from it (Server::adopt), handled as the first read.
  void feedReceived(std::string received);
  // Server role: answer an HTTP error (e.g. 503 over maxConnections) and
  // close; on TLS through TLS, or a plain close before the TLS handshake.
  void reject(int status, const std::string& reason, const Headers& extra = Headers());
  // Server role with verifyClient: the owner's verdict on the Verify event
  // (ignored unless the connection still waits for it).
  void answerVerify(const VerifyAnswer& answer);
  // closeReplyOnAck: the owner has handled the events before the peer's
  // close frame; the close reply goes out now (once).
  void ackClose();
  // Client role: connect to addr and run TLS + the opening handshake.
  void connect(const struct sockaddr* addr);
  // Starts the close handshake (code 0: no status code in the frame).
  void close(int code, const std::string& reason);
  // Drops the socket now, without a close handshake (1006 "Connection
  // aborted" unless a close frame went either way). The owner's
  // onConnClosed still follows, as after any close.
  void abort();
  void resumeReading();
  // For the owner's onConnOpen: the request target (server role), the
  // peer's headers (they are handed over: an open connection keeps nothing
  // of its handshake) and the response status (client role). Also for its
  // onConnFailed after a refused upgrade (client role: a redirect's
  // Location); the status is 0 when no upgrade response came.
  std::string takeRequestTarget() { return std::move(hs_->target); }
  Headers takePeerHeaders() { return std::move(hs_->headers); }
  int responseStatus() const { return hs_->responseStatus; }
  // For Open (and Verify) events: the peer's address and port, TLS, and what
  // the handshake agreed (subprotocol, extensions). Loop thread, before the
  // handshake state goes (in onConnOpen).
  std::shared_ptr<const PeerInfo> peerInfo() const;
  // The peer's address as addressKey() gives it; empty when unknown.
  std::string peerAddress() const;
  // Client role: the TCP connection was established (a failure after this is
  // not one that another address of the host could avoid).
  bool tcpConnected() const { return tcpConnected_; }
  // Client role, through a proxy: its CONNECT reply has not come yet.
  bool tunneling() const { return tunneling_; }

  // --- any thread (the Outbox) ---
  // Frames (and compresses) one message and queues it.
  SendResult send(const uint8_t* data, size_t len, bool binary) {
    SendResult r = outbox_.send(data, len, binary);
    r.conn = id_;
    return r;
  }
  // Queues a frame built once for several connections (Outbox::buildServerFrame).
  SendResult sendShared(const OutFramePtr& frame, uint64_t payloadLen) {
    SendResult r = outbox_.sendShared(frame, payloadLen);
    r.conn = id_;
    return r;
  }
  // See Outbox::trySendZeroCopy.
  bool trySendZeroCopy(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res) {
    if (!outbox_.trySendZeroCopy(data, len, opcode, res)) return false;
    res->conn = id_;
    return true;
  }
  // See Outbox::trySendSmall.
  bool trySendSmall(const uint8_t* data, size_t len, uint8_t opcode, SendResult* res) {
    if (!outbox_.trySendSmall(data, len, opcode, res)) return false;
    res->conn = id_;
    return true;
  }
  uint64_t bufferedAmount() const { return outbox_.bufferedAmount(); }
  // A ping with this payload (<= 125 bytes); false once the close frame
  // went (or before open).
  bool ping(const uint8_t* data, size_t len) { return outbox_.sendPing(data, len); }
  bool deflateActive() const { return outbox_.deflateActive(); }
  int sharedDeflateBits() const { return outbox_.sharedDeflateBits(); }
  const ConnSettings& settings() const { return *settings_; }
  State state() const { return static_cast<State>(state_.load(std::memory_order_acquire)); }
  // Loop thread: it reached open (its owner heard onConnOpen), and whether
  // finish() ran (the owner heard onConnClosed): between the two its close
  // event is still to come.
  bool wasOpen() const { return wasOpen_; }
  bool finished() const { return finished_; }
  uint64_t id() const { return id_; }
  IoLoop& loop() const { return loop_; }

 private:
  // ReceiverListener
  void onMessage(std::string&& data, bool binary, uint64_t wireSize) override;
  void onFragment(std::string&& data, bool binary, uint64_t wireSize,
                  std::shared_ptr<void> hold) override;
  bool onControl(uint8_t opcode, std::string&& payload, bool binary) override;
  void onClose(int code, std::string&& reason) override;
  void onFail(int code, const std::string& reason, bool decompressionError) override;
  // OutboxHost
  std::shared_ptr<Outbox> outboxRef() override;
  void onWritten() override;
  void onWriteFailed(int status) override;
  const ConnSettings& outboxSettings() const override { return *settings_; }
  IoLoop& outboxLoop() const override { return loop_; }
  Socket* outboxSocket() override { return tcpInit_ ? &sock_ : nullptr; }
  TlsSession* outboxTls() override { return tls(); }

  // The socket's callbacks (kSocketOps).
  static void onAlloc(Socket* s, uv_buf_t* buf);
  static void onRead(Socket* s, ssize_t n, const uv_buf_t* buf);
  static void onConnect(Socket* s, int status);
  static void onShutdown(Socket* s, int status);
  static void onSocketClosed(Socket* s);
  static const SocketOps kSocketOps;
  static void onHandleClosed(uv_handle_t* h);  // the heartbeat timer's
  static void onPingTimer(uv_timer_t* t);
  static void onDeadlineDue(void* self);  // Deadlines' callback
  void onDeadline();
  void onPongDeadline();

  // transport (connection.cc)
  void initHandles();
  void startReading();
  // Reading stops while the sink is over its budget or the send queue over
  // its high-water mark, and starts again once neither holds.
  void updateReading();
  void onPlainData(uint8_t* data, size_t len);  // bytes after TLS
  // HTTP heads and the like: through TLS when it is on.
  void writeHead(std::string bytes);
  void writeTlsOutput();  // what the TLS session has for the socket
  void closeSocket();    // closes socket and timer; the connection ends once both are
  void maybeShutdown();  // closeAfterWrite_ and nothing left to write: FIN, then wait for EOF
  // The peer's TLS close_notify: its end of stream, answered with ours.
  void onTlsPeerClosed();
  // Reads after our FIN: plain bytes are dropped; TLS bytes still go through
  // the session, whose close_notify ends the wait for the peer's FIN.
  void drainAfterShutdown(const uint8_t* data, size_t len);
  void finish();         // the socket and the timer closed

  // opening handshakes (handshake.cc)
  void beginServerHandshake();
  void beginTransport();    // client role: TLS (if on), then onTransportReady
  void onTransportReady();  // TCP (and TLS) up
  void handleHandshakeBytes(uint8_t* data, size_t len);
  void serverHandshake(HttpRequest& req);
  void finishUpgrade(const Headers& extra);  // the 101 (or 503 over maxConnections)
  void feedRestOfHandshake();                // open: bytes behind the head, hs_ freed
  void clientHandshake(HttpResponse& res);
  void becomeOpen();
  void failHandshake(int httpStatus, const std::string& error);

  // HTTP proxy tunnel (tunnel.cc): the CONNECT request and its reply, before
  // TLS and the opening handshake.
  void beginTunnel();
  void handleTunnelBytes(uint8_t* data, size_t len);

  // close handshake, timers, events (connection.cc)
  void failConnection(int code, const std::string& reason);
  void sendCloseFrame(int code, const std::string& reason);
  // One deadline at a time (a new one replaces the armed one); <= 0 disarms.
  void armDeadline(double seconds);
  void armDeadlineMs(uint64_t ms, bool pong);
  void disarmDeadline();
  void startHeartbeat();
  void stopHeartbeat() {
    if (uv_timer_t* t = pingTimer()) uv_timer_stop(t);
  }
  void emit(Event&& ev);
  void beginHold();
  void endHold();
  void flushHeld();

  IoLoop& loop_;
  const ConnSettingsPtr settings_;  // before receiver_ and outbox_: they use it
  const ConnSettings& cfg() const { return *settings_; }
  // The owner while it lives and this connection has not finished (null
  // after finish(): onConnClosed is called once).
  std::shared_ptr<ConnectionOwner> owner() const {
    return finished_ ? nullptr : settings_->owner.lock();
  }
  EventSink& sink() const { return *settings_->sink; }
  uint64_t id_;
  std::shared_ptr<Connection> self_;  // keeps us alive while the socket (and timer) are open
  // The receive state exists only while something received is pending (a
  // partial frame, a fragmented message, an inflater's window, a close seen):
  // made by the read that needs it, freed by the read that leaves it idle
  // (Receiver::idle). An idle connection holds this pointer, not ~230 bytes.
  std::unique_ptr<Receiver> receiver_;
  void feedReceiver(uint8_t* data, size_t len);
  Outbox outbox_;
  // What few connections use, or only once (per-connection memory: one
  // pointer while none of it is needed): the close reason (from the first
  // close step on), the TLS session, the heartbeat's timer. Made on first
  // use, kept until the connection goes.
  struct Cold {
    std::string closeReason;
    std::unique_ptr<TlsSession> tls;
    uv_timer_t* pingTimer = nullptr;  // only with a heartbeat (pingInterval > 0)
    uint64_t pingSentMs = 0;
  };
  std::unique_ptr<Cold> cold_;
  Cold& cold() {
    if (!cold_) cold_.reset(new Cold);
    return *cold_;
  }
  TlsSession* tls() const { return cold_ ? cold_->tls.get() : nullptr; }
  uv_timer_t* pingTimer() const { return cold_ ? cold_->pingTimer : nullptr; }
  const std::string& closeReason() const;

  std::atomic<int> state_{kConnecting};
  int closeCode_ = 1006;
  Socket sock_;
  // The armed deadline on the loop's Deadlines (handshake, close or pong
  // timeout): its due time, 0 when none; pongDeadline_ picks the callback.
  uint64_t deadlineDue_ = 0;

  // What only the opening handshake needs (handshake.cc): made with the
  // socket, freed once the connection is open.
  struct Handshake {
    std::string buf;        // the peer's head, as far as it has come
    std::string clientKey;  // client role: our Sec-WebSocket-Key
    std::string target;     // server role: the request target
    Headers headers;        // the peer's
    int responseStatus = 0;  // client role
    bool deflateOn = false;
    DeflateParams deflate;
    uint64_t acceptedMs = 0;  // server role: loop time of the accept
    size_t consumed = 0;      // length of the peer's head in buf
    size_t interimBytes = 0;  // client role: 1xx heads read so far
    bool verifying = false;   // server role: waiting for answerVerify
    std::string protocol;     // the agreed subprotocol
    std::string extensions;   // the agreed Sec-WebSocket-Extensions
    std::vector<std::string> offered;  // server role: the client's subprotocols
    std::string origin;       // server role: the Origin header
  };
  std::unique_ptr<Handshake> hs_;

  // The flags, together and one bit each (this is per-connection memory: 21
  // bools took 21 bytes). Loop thread only, like everything above but
  // state_: bits of one byte are written by read-modify-write, so no flag
  // here may be touched by another thread. No default member initializers
  // (for bit-fields that is C++20): the constructor sets each one.
  uint8_t openHandles_ = 0;
  // permessage-deflate agreed: the peer's window bits (0: none), for each
  // Receiver made (receiver_ comes and goes); inflateNoCtx_ below.
  uint8_t inflateBits_ = 0;
  bool pongDeadline_ : 1;  // the armed deadline is the pong timeout
  // While a socket read is parsed, its events are held (in the thread's
  // HeldEvents, see connection.cc) and pushed together at its end (see
  // onRead); otherwise emit() pushes at once.
  bool holdEvents_ : 1;
  bool tcpInit_ : 1;
  bool tcpConnected_ : 1;
  bool tunneling_ : 1;  // waiting for the proxy's reply to CONNECT
  bool reading_ : 1;
  bool pausedByBudget_ : 1;
  bool pausedBySendQueue_ : 1;
  bool socketClosing_ : 1;
  bool closeAfterWrite_ : 1;  // shut down once queued writes are out
  bool shutdownStarted_ : 1;
  bool shutdownDone_ : 1;  // our FIN is out (uv_shutdown completed)
  // Server role: armed with firstByteTimeout until the peer's first byte.
  bool awaitingFirstByte_ : 1;
  // heartbeat: a ping sent and nothing received since (sent at cold_->pingSentMs)
  bool awaitingPong_ : 1;
  bool closeSent_ : 1;
  bool closeReceived_ : 1;
  // closeReplyOnAck: the peer's close arrived, our reply waits for ackClose
  // (or the deadline); its code is closeCode_.
  bool closeReplyPending_ : 1;
  bool failed_ : 1;
  bool wasOpen_ : 1;
  bool closeRemote_ : 1;
  bool finished_ : 1;  // finish() ran: the owner heard onConnClosed
  // permessage-deflate agreed: context takeover (with inflateBits_), for
  // each Receiver made.
  bool inflateNoCtx_ : 1;
  // The peer's FIN came while our close reply waited for ackClose: the reply
  // still goes out (§5.5.1), then our FIN.
  bool peerEnded_ : 1;
};

}  // namespace wsengine
