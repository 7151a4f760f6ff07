// The connection's transport (TCP and TLS plumbing, reading with
// backpressure), its close handshake, timers and events; the opening
// handshakes are in handshake.cc. Loop thread only, but for outboxRef()
// (any thread: the Outbox's senders call it; it only takes a reference).
#include "connection.h"

#include <cstring>

#include <unistd.h>

#include "buffer_pool.h"

namespace wsengine {

namespace {

// Cuts a close reason to the 123 bytes a close frame can carry, on a UTF-8
// code point boundary.
std::string clampReason(const std::string& reason) {
  constexpr size_t kMax = 125 - 2;
  if (reason.size() <= kMax) return reason;
  size_t n = kMax;
  while (n > 0 && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  return reason.substr(0, n);
}

std::string& tlsScratch() {
  thread_local std::string s;
  return s;
}

// The events of the socket read being parsed on this thread (see onRead),
// pushed to the sink together at its end. One per thread rather than one per
// connection: reads do not nest, and a connection kept no vector (nor the
// capacity a flood of small messages left in it) between reads. `by` is the
// connection holding it; any other emits at once.
struct HeldEvents {
  std::vector<Event> events;
  const void* by = nullptr;
};
HeldEvents& heldEvents() {
  thread_local HeldEvents h;
  return h;
}

}  // namespace

std::string addressKey(const struct sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    return std::string(reinterpret_cast<const char*>(&a->sin_addr), 4);
  }
  if (ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    const auto* b = reinterpret_cast<const uint8_t*>(&a->sin6_addr);
    static const uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d: the same peer.
    if (std::memcmp(b, kMapped, 12) == 0) return std::string(reinterpret_cast<const char*>(b + 12), 4);
    return std::string(reinterpret_cast<const char*>(b), 16);
  }
  return std::string();
}

std::string Connection::peerAddress() const {
  struct sockaddr_storage ss;
  return tcpInit_ && sock_.peerName(&ss) ? addressKey(ss) : std::string();
}

#if !WSENGINE_SOCKET_UV_POLL && UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu && defined(__GLIBCXX__)
// Every connection is one make_shared chunk: 16 bytes of control block plus
// this object plus malloc's 8-byte header, in 16-byte steps. At 248 the
// chunk is 272 bytes; at 256 it was 288 (bench/PROFILE.md, tenth pass).
static_assert(sizeof(Connection) + 16 + 8 <= 272, "Connection grew: per-connection memory");
#endif

Connection::Connection(IoLoop& loop, uint64_t id, ConnSettingsPtr settings)
    : loop_(loop),
      settings_(std::move(settings)),
      id_(id),
      outbox_(*this),
      pongDeadline_(false),
      holdEvents_(false),
      tcpInit_(false),
      tcpConnected_(false),
      tunneling_(false),
      reading_(false),
      pausedByBudget_(false),
      pausedBySendQueue_(false),
      socketClosing_(false),
      closeAfterWrite_(false),
      shutdownStarted_(false),
      shutdownDone_(false),
      awaitingFirstByte_(false),
      awaitingPong_(false),
      closeSent_(false),
      closeReceived_(false),
      closeReplyPending_(false),
      failed_(false),
      wasOpen_(false),
      closeRemote_(true),
      finished_(false),
      inflateNoCtx_(false),
      peerEnded_(false) {}

Connection::~Connection() = default;

// ---------------------------------------------------------------- sockets

void Connection::initHandles() {
  self_ = shared_from_this();
  sock_.init(&loop_.poller(), &kSocketOps, this);
  openHandles_ = 1;
  if (cfg().heartbeat.pingInterval > 0) {
    uv_timer_t* t = cold().pingTimer = new uv_timer_t;
    uv_timer_init(loop_.loop(), t);
    loop_.initHandle(reinterpret_cast<uv_handle_t*>(t));
    t->data = this;
    ++openHandles_;
  }
  tcpInit_ = true;
  hs_.reset(new Handshake);
}

const SocketOps Connection::kSocketOps = {&Connection::onAlloc, &Connection::onRead,
                                           &Connection::onConnect, &Connection::onShutdown,
                                           &Connection::onSocketClosed};

bool Connection::adopt(int fd, bool accepted) {
  // Aborted before its socket came (a stop() ran between the server's
  // registering it and this): it has finished and left the server's table,
  // so nothing would ever close the socket or let go of the connection.
  if (socketClosing_) {
    ::close(fd);
    return false;
  }
  initHandles();
  if (sock_.open(fd, accepted) != 0) {
    ::close(fd);
    closeSocket();
    return false;
  }
  beginServerHandshake();
  return true;
}

void Connection::feedReceived(std::string received) {
  if (received.empty() || socketClosing_ || state() != kHandshake) return;
  std::shared_ptr<Connection> hold = self_;
  // As onRead does for a first read: the rest of handshakeTimeout applies.
  if (awaitingFirstByte_) {
    awaitingFirstByte_ = false;
    armDeadline(cfg().limits.handshakeTimeout);
  }
  beginHold();
  onPlainData(reinterpret_cast<uint8_t*>(&received[0]), received.size());
  endHold();
  if (!socketClosing_ && (pausedByBudget_ || outbox_.overHighWaterMark())) updateReading();
}

void Connection::connect(const struct sockaddr* addr) {
  initHandles();
  int rc = sock_.connect(addr);
  if (rc != 0) {
    failHandshake(0, std::string("Connect failed: ") + uv_strerror(rc));
  }
}

void Connection::onConnect(Socket* s, int status) {
  auto* self = static_cast<Connection*>(s->data());
  if (status == UV_ECANCELED || self->socketClosing_) return;
  if (status != 0) {
    self->failHandshake(0, std::string("Connection failed: ") + uv_strerror(status));
    return;
  }
  self->tcpConnected_ = true;
  self->sock_.setNoDelay();
  self->startReading();
  if (!self->cfg().proxyConnect.empty()) {
    self->beginTunnel();  // then beginTransport() once the proxy agrees
  } else {
    self->beginTransport();
  }
}

void Connection::beginTransport() {
  if (cfg().tls) {
    cold().tls.reset(new TlsSession(cfg().tls, false, cfg().tlsHost, cfg().tlsPeer));
    if (!tls()->startHandshake()) {
      failHandshake(0, tls()->error());
      return;
    }
    writeTlsOutput();
  } else {
    onTransportReady();
  }
}

void Connection::writeHead(std::string bytes) {
  if (tls()) {
    tls()->write(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    writeTlsOutput();
  } else {
    outbox_.writeRaw(std::move(bytes));
  }
}

void Connection::writeTlsOutput() {
  std::string out;
  tls()->takeOutput(out);
  outbox_.writeRaw(std::move(out));
}

void Connection::startReading() {
  if (reading_ || socketClosing_) return;
  if (sock_.readStart() == 0) reading_ = true;
}

void Connection::resumeReading() {
  if (!pausedByBudget_) return;
  pausedByBudget_ = false;
  updateReading();
}

void Connection::updateReading() {
  // A peer that sends and never reads must not grow our send queue (pongs,
  // replies the application makes): while the queue is over its high-water
  // mark the connection is not read, so TCP pushes back on the peer. Also
  // before the open: a TLS peer that floods KeyUpdate requests and never
  // reads makes OpenSSL queue an answer to each, and the start's timeout
  // (20 s by default) was the only bound. The close handshake still reads.
  bool over = outbox_.overHighWaterMark();
  bool mayPause = state() <= kOpen;
  if (pausedBySendQueue_ && (!over || !mayPause)) pausedBySendQueue_ = false;
  if (!pausedBySendQueue_ && mayPause && !shutdownStarted_ && over) pausedBySendQueue_ = true;
  // A handshake waiting for the owner's verdict is not read either.
  bool want = !pausedByBudget_ && !pausedBySendQueue_ && !(hs_ && hs_->verifying);
  if (want) {
    startReading();
  } else if (reading_ && !socketClosing_ && !shutdownStarted_) {
    sock_.readStop();
    reading_ = false;
  }
}

void Connection::onAlloc(Socket* s, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data());
  // Plain TCP only: under TLS the socket's bytes are ciphertext.
  char* base;
  size_t len;
  if (!self->tls() && !self->failed_ && !self->closeReceived_ && !self->shutdownStarted_ &&
      self->state() >= kOpen && self->receiver_ && self->receiver_->readTarget(&base, &len)) {
    buf->base = base;
    buf->len = len;
    return;
  }
  buf->base = self->loop_.readBuffer();
  buf->len = self->loop_.readBufferSize();
}

void Connection::onRead(Socket* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data());
  // At process exit, between reads (a backlog of reads can keep the loop
  // from its posted functions for a second): see parkIoThreads.
  parkIfExiting(self->loop_);
  if (n == 0) return;
  // Keep ourselves alive through callbacks that may drop the owner's reference.
  std::shared_ptr<Connection> hold = self->self_;
  if (n < 0) {
    if (self->state() < kOpen && !self->cfg().server && !self->failed_) {
      self->failHandshake(0, n == UV_EOF ? "Connection closed by peer during handshake"
                                         : std::string("Read failed: ") + uv_strerror(n));
      return;
    }
    if (n == UV_EOF && self->closeReplyPending_) {
      // The peer sent its close frame and its FIN together. §5.5.1 still
      // wants our close frame, and a half-closed socket can carry it: stop
      // reading and let ackClose (or its closeTimeout) send it, then shut
      // down. Closing here sent the peer nothing.
      self->peerEnded_ = true;
      if (self->reading_) {
        self->sock_.readStop();
        self->reading_ = false;
      }
      return;
    }
    if (!self->closeReceived_ && !self->closeSent_) {
      self->closeCode_ = 1006;
      self->cold().closeReason = n == UV_EOF ? "Abnormal closure" : uv_strerror(static_cast<int>(n));
      self->closeRemote_ = true;
    }
    self->closeSocket();
    return;
  }
  self->awaitingPong_ = false;  // any traffic proves the peer alive
  if (self->awaitingFirstByte_) {
    // The rest of handshakeTimeout, counted from the accept.
    self->awaitingFirstByte_ = false;
    if (self->state() == kHandshake && !self->failed_) {
      double spent = static_cast<double>(uv_now(self->loop_.loop()) - self->hs_->acceptedMs) / 1000.0;
      double left = self->cfg().limits.handshakeTimeout - spent;
      self->armDeadline(left > 0.001 ? left : 0.001);
    }
  }
  // Events of this read go to the sink together at the end of this scope
  // (declared after `hold`, so it runs while the connection is alive); then
  // reading stops if the sink is over its budget.
  struct HoldEvents {
    Connection* c;
    explicit HoldEvents(Connection* conn) : c(conn) { c->beginHold(); }
    ~HoldEvents() {
      c->endHold();
      if (c->socketClosing_) return;
      if (c->pausedByBudget_ || c->outbox_.overHighWaterMark()) c->updateReading();
    }
  } held(self);
  auto* data = reinterpret_cast<uint8_t*>(buf->base);
  if (self->shutdownStarted_) {
    self->drainAfterShutdown(data, static_cast<size_t>(n));
    return;
  }
  if (!self->tls()) {
    self->onPlainData(data, static_cast<size_t>(n));
    return;
  }
  std::string& plain = tlsScratch();
  plain.clear();
  bool wasDone = self->tls()->handshakeDone();
  bool ok = self->tls()->feed(data, static_cast<size_t>(n), plain);
  if (self->tls()->hasOutput()) self->writeTlsOutput();
  if (!ok) {
    if (self->state() < kOpen && !self->cfg().server) {
      // The session's error already says "TLS ...": no second prefix.
      self->failHandshake(0, self->tls()->error());
    } else {
      if (!self->closeReceived_) {
        self->closeCode_ = 1006;
        self->cold().closeReason = "TLS error: " + self->tls()->error();
      }
      self->closeSocket();
    }
    return;
  }
  if (!wasDone && self->tls()->handshakeDone()) self->onTransportReady();
  if (!plain.empty()) {
    // Move out of the scratch: handlers below may re-enter TLS on this thread.
    std::string local;
    local.swap(plain);
    self->onPlainData(reinterpret_cast<uint8_t*>(&local[0]), local.size());
    if (plain.empty()) {
      local.clear();
      plain.swap(local);  // keep the capacity for the next read
    }
  }
  // What preceded the close_notify in this read was handled above.
  if (self->tls() && self->tls()->peerClosed() && !self->socketClosing_) self->onTlsPeerClosed();
}

void Connection::onTlsPeerClosed() {
  // close_notify is the peer's end of stream (RFC 8446 §6.1; RFC 5246 §7.2.1
  // asks for ours in reply). Peers that shut TLS down properly, asyncio's
  // among them, send it and then wait for ours before they close TCP: a
  // client waiting for the server's FIN after the closing handshake would
  // otherwise wait out closeTimeout, and a connection whose peer only
  // half-closed would stay open for ever.
  if (shutdownStarted_) {
    // Our close_notify and FIN are queued: close once the FIN is out.
    if (shutdownDone_) closeSocket();
    return;
  }
  if (state() < kOpen) {
    // As the end of the TCP stream during the opening handshake.
    if (!cfg().server && !failed_) {
      failHandshake(0, "Connection closed by peer during handshake (TLS close_notify)");
    } else {
      closeSocket();
    }
    return;
  }
  if (!closeReceived_ && !closeSent_) {
    closeCode_ = 1006;
    cold().closeReason = "Abnormal closure (TLS close_notify without a close frame)";
    closeRemote_ = true;
  }
  stopHeartbeat();
  state_.store(kClosing, std::memory_order_release);
  // Waiting for the owner's ackClose: it sends our close frame, then shuts
  // down (below), or its deadline does.
  if (closeReplyPending_) return;
  closeAfterWrite_ = true;
  armDeadline(cfg().closeTimeout);  // bounds the wait for our last writes
  outbox_.flush();
  maybeShutdown();
}

void Connection::drainAfterShutdown(const uint8_t* data, size_t len) {
  if (!tls() || tls()->peerClosed()) return;
  std::string& plain = tlsScratch();
  plain.clear();
  bool ok = tls()->feed(data, len, plain);
  plain.clear();
  // Anything the session wants to say now (a KeyUpdate reply) has nowhere
  // to go after our FIN.
  std::string dropped;
  tls()->takeOutput(dropped);
  if (!ok) {
    closeSocket();
    return;
  }
  if (tls()->peerClosed()) onTlsPeerClosed();
}

void Connection::onPlainData(uint8_t* data, size_t len) {
  if (tunneling_) return handleTunnelBytes(data, len);
  int st = state();
  if (st == kHandshake) {
    handleHandshakeBytes(data, len);
  } else if (st == kOpen || (st == kClosing && !failed_)) {
    feedReceiver(data, len);
  }
}

void Connection::feedReceiver(uint8_t* data, size_t len) {
  if (!receiver_) {
    receiver_.reset(new Receiver(*settings_, *this));
    if (inflateBits_) receiver_->enableInflate(inflateBits_, inflateNoCtx_);
  }
  receiver_->feed(data, len);
  // Reads do not nest (the receiver's listener only emits, writes and
  // closes), so nothing else is using it here.
  if (receiver_->idle()) receiver_.reset();
}

const std::string& Connection::closeReason() const {
  static const std::string kNone;
  return cold_ ? cold_->closeReason : kNone;
}

// ---------------------------------------------------------------- receiver

void Connection::onMessage(std::string&& data, bool binary, uint64_t wireSize) {
  Event ev;
  ev.type = EventType::Message;
  ev.binary = binary;
  ev.wireSize = wireSize;
  ev.data = std::move(data);
  emit(std::move(ev));
}

void Connection::onFragment(std::string&& data, bool binary, uint64_t wireSize,
                            std::shared_ptr<void> hold) {
  Event ev;
  ev.type = EventType::Fragment;
  ev.binary = binary;
  ev.wireSize = wireSize;
  ev.data = std::move(data);
  ev.hold = std::move(hold);
  emit(std::move(ev));
}

bool Connection::onControl(uint8_t opcode, std::string&& payload, bool binary) {
  if (opcode == kPing && cfg().heartbeat.enablePong && !closeSent_)
    outbox_.sendPong(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  Event ev;
  ev.type = opcode == kPing ? EventType::Ping : EventType::Pong;
  ev.wireSize = payload.size();
  ev.binary = binary;
  ev.data = std::move(payload);
  emit(std::move(ev));
  return !failed_ && !socketClosing_ && !closeReceived_;
}

void Connection::onClose(int code, std::string&& reason) {
  closeReceived_ = true;
  stopHeartbeat();
  if (!closeSent_) {
    // The peer started the close handshake: echo its code.
    closeCode_ = code;
    cold().closeReason = std::move(reason);
    closeRemote_ = true;
    state_.store(kClosing, std::memory_order_release);
    if (cfg().closeReplyOnAck) {
      // The owner has yet to handle the messages before this close (they
      // are in its queue): what it sends in reply must go out ahead of our
      // close frame, after which nothing may be sent (§5.5.1). The reply
      // waits for ackClose, at most closeTimeout.
      closeReplyPending_ = true;
      Event ev;
      ev.type = EventType::Closing;
      emit(std::move(ev));
      armDeadline(cfg().closeTimeout);
      return;
    }
    closeSent_ = true;
    sendCloseFrame(code == 1005 ? 0 : code, std::string());
  }
  armDeadline(cfg().closeTimeout);
  if (cfg().server) {
    // §7.1.1: the server closes the TCP connection first.
    closeAfterWrite_ = true;
    outbox_.flush();
    maybeShutdown();
  }
  // The client waits for the server's FIN (or the deadline).
}

void Connection::ackClose() {
  if (!closeReplyPending_ || socketClosing_) return;
  closeReplyPending_ = false;
  closeSent_ = true;
  sendCloseFrame(closeCode_ == 1005 ? 0 : closeCode_, std::string());
  armDeadline(cfg().closeTimeout);
  // §7.1.1: the server closes the TCP connection first; so does a client
  // whose peer has ended TLS already (its close_notify came with its close
  // frame, see onTlsPeerClosed) or TCP (its FIN did, see onRead): it may be
  // waiting for ours.
  if (cfg().server || peerEnded_ || (tls() && tls()->peerClosed())) {
    closeAfterWrite_ = true;
    outbox_.flush();
    maybeShutdown();
  }
}

void Connection::onFail(int code, const std::string& reason, bool decompressionError) {
  if (decompressionError) {
    Event ev;
    ev.type = EventType::Error;
    ev.decompressionError = true;
    ev.reason = reason;
    emit(std::move(ev));
  }
  failConnection(code, reason);
}

// ----------------------------------------------------------------- outbox

std::shared_ptr<Outbox> Connection::outboxRef() {
  return std::shared_ptr<Outbox>(shared_from_this(), &outbox_);
}

void Connection::onWritten() {
  if (socketClosing_) return;
  if (pausedBySendQueue_) updateReading();
  maybeShutdown();
}

void Connection::onWriteFailed(int status) {
  if (socketClosing_) return;
  if (!closeSent_ && !closeReceived_) {
    closeCode_ = 1006;
    cold().closeReason = std::string("Write failed: ") + uv_strerror(status);
    closeRemote_ = true;
  }
  closeSocket();
}

void Connection::maybeShutdown() {
  if (!closeAfterWrite_ || shutdownStarted_ || socketClosing_ || !outbox_.idle()) return;
  if (tls() && tls()->handshakeDone()) {
    tls()->shutdown();
    writeTlsOutput();
  }
  shutdownStarted_ = true;
  outbox_.stopWriting();
  // FIN after our last bytes; keep reading (and discarding) until the peer's
  // FIN, so unread input never turns our close into a reset.
  if (sock_.shutdown() != 0) {
    closeSocket();
    return;
  }
  if (!reading_) startReading();
}

void Connection::onShutdown(Socket* s, int status) {
  auto* self = static_cast<Connection*>(s->data());
  if (self->socketClosing_) return;
  if (status != 0) {
    if (status != UV_ECANCELED) self->closeSocket();
    return;
  }
  self->shutdownDone_ = true;
  // Both TLS directions are closed: there is nothing left to wait for.
  if (self->tls() && self->tls()->peerClosed()) self->closeSocket();
}

// ----------------------------------------------------------------- closing

void Connection::sendCloseFrame(int code, const std::string& reason) {
  std::string payload;
  if (code) {
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload += clampReason(reason);
  }
  outbox_.sendClose(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
}

void Connection::failConnection(int code, const std::string& reason) {
  if (failed_ || socketClosing_) return;
  flushHeld();  // what preceded the violation reaches the application first
  failed_ = true;
  stopHeartbeat();
  state_.store(kClosing, std::memory_order_release);
  if (!closeSent_) {
    closeSent_ = true;
    closeCode_ = code;
    cold().closeReason = reason;
    closeRemote_ = false;
    sendCloseFrame(code, reason);
  }
  closeAfterWrite_ = true;
  armDeadline(cfg().closeTimeout);
  outbox_.flush();
  maybeShutdown();
}

void Connection::close(int code, const std::string& reason) {
  if (socketClosing_) return;
  if (state() < kOpen) {
    closeCode_ = code;
    cold().closeReason = reason;
    closeRemote_ = false;
    closeSocket();
    return;
  }
  if (closeReplyPending_) return ackClose();  // the peer closed first: echo its code
  if (closeSent_) return;
  closeSent_ = true;
  closeCode_ = code ? code : 1005;
  cold().closeReason = reason;
  closeRemote_ = false;
  state_.store(kClosing, std::memory_order_release);
  stopHeartbeat();
  sendCloseFrame(code, reason);
  armDeadline(cfg().closeTimeout);
  if (closeReceived_ && cfg().server) {
    closeAfterWrite_ = true;
    maybeShutdown();
  }
}

void Connection::abort() {
  if (socketClosing_) return;
  if (!closeSent_ && !closeReceived_) {
    closeCode_ = 1006;
    cold().closeReason = "Connection aborted";
    closeRemote_ = false;
  }
  closeSocket();
}

void Connection::closeSocket() {
  if (socketClosing_) return;
  flushHeld();
  socketClosing_ = true;
  if (state() == kOpen && !closeSent_ && !closeReceived_ && closeCode_ == 1006 &&
      closeReason().empty()) {
    cold().closeReason = "Abnormal closure";
  }
  outbox_.close();
  state_.store(kClosed, std::memory_order_release);
  if (!tcpInit_) {
    finish();
    return;
  }
  disarmDeadline();
  if (uv_timer_t* t = pingTimer()) {
    uv_timer_stop(t);
    uv_close(reinterpret_cast<uv_handle_t*>(t), &Connection::onHandleClosed);
  }
  sock_.close();
}

void Connection::onSocketClosed(Socket* s) {
  auto* self = static_cast<Connection*>(s->data());
  if (--self->openHandles_ == 0) self->finish();
}

void Connection::onHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  if (self->cold_ && h == reinterpret_cast<uv_handle_t*>(self->cold_->pingTimer)) {
    delete self->cold_->pingTimer;
    self->cold_->pingTimer = nullptr;
  }
  if (--self->openHandles_ == 0) self->finish();
}

void Connection::finish() {
  std::shared_ptr<Connection> hold = self_;
  self_.reset();
  receiver_.reset();  // gives back its budget charge (the socket is closed)
  outbox_.clear();
  flushHeld();
  std::shared_ptr<ConnectionOwner> owner = this->owner();
  finished_ = true;
  if (owner) owner->onConnClosed(this, wasOpen_, closeCode_, closeReason(), closeRemote_);
}

// ------------------------------------------------------------------ timers

void Connection::armDeadline(double seconds) {
  if (seconds <= 0) {
    disarmDeadline();
    return;
  }
  armDeadlineMs(secondsToMs(seconds), false);
}

void Connection::armDeadlineMs(uint64_t ms, bool pong) {
  if (!tcpInit_ || socketClosing_) return;
  Deadlines& d = loop_.deadlines();
  d.cancel(deadlineDue_, this);
  pongDeadline_ = pong;
  deadlineDue_ = d.arm(ms, this, &Connection::onDeadlineDue);
}

void Connection::disarmDeadline() {
  if (deadlineDue_ == 0) return;
  loop_.deadlines().cancel(deadlineDue_, this);
  deadlineDue_ = 0;
}

void Connection::onDeadlineDue(void* ctx) {
  auto* self = static_cast<Connection*>(ctx);
  self->deadlineDue_ = 0;
  if (self->pongDeadline_)
    self->onPongDeadline();
  else
    self->onDeadline();
}

void Connection::onDeadline() {
  std::shared_ptr<Connection> hold = self_;
  if (closeReplyPending_) {
    // The owner did not acknowledge the peer's close in time: reply anyway.
    ackClose();
    return;
  }
  int st = state();
  if (st == kOpen) {
    // Armed after a ping: nothing has arrived since.
    if (!closeSent_) {
      closeCode_ = 1011;
      cold().closeReason = "Ping timeout";
      closeRemote_ = false;
    }
    closeSocket();
    return;
  }
  if (st == kHandshake && cfg().server && !failed_) {
    closeCode_ = 1006;
    cold().closeReason = awaitingFirstByte_ ? "No data within firstByteTimeout" : "Handshake timeout";
  }
  if (st == kClosing && closeSent_ && !closeReceived_) {
    // Our close got no close frame back within closeTimeout (a peer that
    // stopped reading, or never answers): the handshake did not complete,
    // and whatever was queued before our close may never have been read.
    // No close frame received is 1006 (RFC 6455 section 7.1.5), as ws and
    // browsers report it; the code we sent would claim a clean close.
    closeCode_ = 1006;
    cold().closeReason = "Close handshake timed out";
    closeRemote_ = false;
  }
  closeSocket();
}

void Connection::startHeartbeat() {
  int interval = cfg().heartbeat.pingInterval;
  uv_timer_t* t = pingTimer();
  if (interval <= 0 || !t) return;
  uint64_t ms = static_cast<uint64_t>(interval) * 1000;
  uv_timer_start(t, &Connection::onPingTimer, ms, ms);
}

void Connection::onPingTimer(uv_timer_t* t) {
  auto* self = static_cast<Connection*>(t->data);
  if (self->state() != kOpen) return;
  static const char kPayload[] = "ixwebsocket::heartbeat";
  uint64_t sentAt = uv_now(self->loop_.loop());
  int timeout = self->cfg().heartbeat.pingTimeout;
  if (timeout > 0 && self->awaitingPong_ &&
      sentAt - self->cold().pingSentMs >= static_cast<uint64_t>(timeout) * 1000) {
    // The pong deadline falls due with this tick (equal timeouts): no other
    // ping to a peer about to be given up on. The deadline itself decides
    // (Deadlines::run), after a stalled loop has read what came meanwhile.
    return;
  }
  self->outbox_.sendControl(kPing, reinterpret_cast<const uint8_t*>(kPayload), sizeof(kPayload) - 1);
  // Only the oldest unanswered ping is timed: a later one cannot extend it.
  if (timeout > 0 && !self->awaitingPong_) {
    self->awaitingPong_ = true;
    self->cold().pingSentMs = sentAt;
    // A pong deadline still armed was an answered ping's: this ping gets its
    // own due time (Deadlines::run times a deadline that fell due during a
    // stall of the loop by its own due time).
    if (self->deadlineDue_ == 0 || self->pongDeadline_)
      self->armDeadlineMs(static_cast<uint64_t>(timeout) * 1000, true);
  }
}

// A flag rather than comparing millisecond clocks: a pong read in the same
// loop millisecond as its ping, or a late timer, must not count as silence.
void Connection::onPongDeadline() {
  if (state() == kOpen) {
    if (!awaitingPong_) return;  // heard from the peer; the next ping re-arms
    uint64_t limit = static_cast<uint64_t>(cfg().heartbeat.pingTimeout) * 1000;
    uint64_t waited = uv_now(loop_.loop()) - cold().pingSentMs;
    if (waited < limit) {
      // Armed for an earlier, answered ping: wait out the current one.
      armDeadlineMs(limit - waited, true);
      return;
    }
  }
  onDeadline();
}

// ------------------------------------------------------------------ events

void Connection::emit(Event&& ev) {
  ev.owner = settings_->ownerTag;
  ev.conn = id_;
  if (holdEvents_) {
    heldEvents().events.push_back(std::move(ev));
    return;
  }
  if (!sink().push(std::move(ev))) pausedByBudget_ = true;
}

void Connection::beginHold() {
  HeldEvents& h = heldEvents();
  if (h.by) return;  // another connection's read is being parsed: emit at once
  h.by = this;
  holdEvents_ = true;
}

void Connection::endHold() {
  if (!holdEvents_) return;
  flushHeld();
  holdEvents_ = false;
  heldEvents().by = nullptr;
}

void Connection::flushHeld() {
  if (!holdEvents_) return;
  std::vector<Event>& held = heldEvents().events;
  if (held.empty()) return;
  // The sink hands back spare payload strings under the same lock: the
  // next small messages parsed on this thread are assembled in them.
  std::vector<std::string>& stash = spareStash();
  if (!sink().pushAllTakeSpares(held, stash, kSpareStash - stash.size())) pausedByBudget_ = true;
  held.clear();
  // A flood of small messages leaves a large vector behind: keep a modest one.
  if (held.capacity() > 4096) std::vector<Event>().swap(held);
}

}  // namespace wsengine
