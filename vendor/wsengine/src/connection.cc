#include "connection.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "random.h"

namespace wsengine {

namespace {

constexpr size_t kMaxControlPayload = 125;
constexpr size_t kDirectWriteMax = 16 * 1024;

// An empty string with room for n bytes; large ones come recycled.
void frameStorage(std::string& s, size_t n) {
  if (n >= kPooledMin) {
    s = takeBuffer(n);
    s.clear();
  } else {
    s.reserve(n);
  }
}

struct WriteReq {
  uv_write_t req;
  std::vector<OutFramePtr> frames;
  std::string raw;
  uint64_t accounted = 0;  // bytes of buffered_ this write releases
};

// Cuts a close reason to the 123 bytes a close frame can carry, on a UTF-8
// code point boundary.
std::string clampReason(const std::string& reason) {
  if (reason.size() <= kMaxControlPayload - 2) return reason;
  size_t n = kMaxControlPayload - 2;
  while (n > 0 && (static_cast<uint8_t>(reason[n]) & 0xC0) == 0x80) --n;
  return reason.substr(0, n);
}

// cork()/uncork() (wsengine.h): while corked, this thread's sends only queue;
// the connections they touched are written once at uncork.
thread_local int tCorkDepth = 0;
thread_local unsigned tCorkPass = 0;  // direct writes still allowed while corked
thread_local std::vector<std::shared_ptr<Connection>>* tCorked = nullptr;

std::string& tlsScratch() {
  thread_local std::string s;
  return s;
}

}  // namespace

std::string peerAddressKey(const uv_tcp_t* h) {
  struct sockaddr_storage ss;
  int len = sizeof ss;
  if (uv_tcp_getpeername(h, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return std::string();
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

void cork(unsigned passThrough) {
  if (tCorkDepth++ == 0) tCorkPass = passThrough;
}

void uncork() {
  if (tCorkDepth == 0 || --tCorkDepth > 0) return;
  tCorkPass = 0;
  if (!tCorked) return;
  std::vector<std::shared_ptr<Connection>> conns;
  conns.swap(*tCorked);
  for (auto& c : conns) c->flushFromOwner();
}

Connection::Connection(IoLoop& loop, std::shared_ptr<ConnectionOwner> owner,
                       std::shared_ptr<EventSink> sink, uint64_t ownerTag, uint64_t id,
                       ConnSettingsPtr settings)
    : loop_(loop),
      owner_(std::move(owner)),
      sink_(std::move(sink)),
      ownerTag_(ownerTag),
      id_(id),
      settings_(std::move(settings)),
      cfg_(*settings_),
      receiver_(cfg_, *this) {}

Connection::~Connection() = default;

// ---------------------------------------------------------------- sockets

void Connection::initHandles() {
  self_ = shared_from_this();
  uv_tcp_init(loop_.loop(), &tcp_);
  tcp_.data = this;
  uv_timer_init(loop_.loop(), &deadline_);
  deadline_.data = this;
  uv_timer_init(loop_.loop(), &pingTimer_);
  pingTimer_.data = this;
  openHandles_ = 3;
  tcpInit_ = true;
}

bool Connection::accept(uv_stream_t* listener) {
  initHandles();
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&tcp_)) != 0) {
    closeSocket();
    return false;
  }
  beginServerHandshake();
  return true;
}

bool Connection::adopt(int fd) {
  initHandles();
  if (uv_tcp_open(&tcp_, fd) != 0) {
    ::close(fd);
    closeSocket();
    return false;
  }
  beginServerHandshake();
  return true;
}

void Connection::beginServerHandshake() {
  uv_tcp_nodelay(&tcp_, 1);
  state_.store(kHandshake, std::memory_order_release);
  if (cfg_.tls) tlsSession_.reset(new TlsSession(cfg_.tls, true, std::string()));
  // A socket that sends nothing is given only firstByteTimeout: idle sockets
  // would otherwise each hold a handshake slot for the whole handshakeTimeout.
  double first = cfg_.limits.firstByteTimeout;
  acceptedMs_ = uv_now(loop_.loop());
  if (first > 0 && first < cfg_.limits.handshakeTimeout) {
    awaitingFirstByte_ = true;
    armDeadline(first);
  } else {
    armDeadline(cfg_.limits.handshakeTimeout);
  }
  startReading();
}

void Connection::reject(int status, const std::string& reason) {
  if (socketClosing_) return;
  state_.store(kClosing, std::memory_order_release);
  failed_ = true;
  std::string answer = buildErrorResponse(status, reason);
  if (tlsSession_) {
    // On a TLS server the answer goes through TLS like any other byte; before
    // the TLS handshake is done there is no channel to answer on: close.
    if (!tlsSession_->handshakeDone() ||
        !tlsSession_->write(reinterpret_cast<const uint8_t*>(answer.data()), answer.size())) {
      closeSocket();
      return;
    }
    answer.clear();
    tlsSession_->takeOutput(answer);
  }
  writeRaw(std::move(answer));
  closeAfterWrite_ = true;
  armDeadline(cfg_.closeTimeout);
  maybeShutdown();
}

void Connection::connect(const struct sockaddr* addr) {
  initHandles();
  auto* req = new uv_connect_t;
  req->data = this;
  int rc = uv_tcp_connect(req, &tcp_, addr, &Connection::onConnect);
  if (rc != 0) {
    delete req;
    failHandshake(0, std::string("Connect failed: ") + uv_strerror(rc));
  }
}

void Connection::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  delete req;
  if (status == UV_ECANCELED || self->socketClosing_) return;
  if (status != 0) {
    self->failHandshake(0, std::string("Connection failed: ") + uv_strerror(status));
    return;
  }
  self->tcpConnected_ = true;
  uv_tcp_nodelay(&self->tcp_, 1);
  self->startReading();
  if (self->cfg_.tls) {
    self->tlsSession_.reset(new TlsSession(self->cfg_.tls, false, self->cfg_.tlsHost));
    if (!self->tlsSession_->startHandshake()) {
      self->failHandshake(0, self->tlsSession_->error());
      return;
    }
    std::string out;
    self->tlsSession_->takeOutput(out);
    self->writeRaw(std::move(out));
  } else {
    self->onTransportReady();
  }
}

void Connection::onTransportReady() {
  if (cfg_.server) return;  // the server waits for the request
  state_.store(kHandshake, std::memory_order_release);
  clientKey_ = makeClientKey();
  std::string offer = cfg_.deflate.enabled ? buildDeflateOffer(cfg_.deflate) : std::string();
  std::string req = buildUpgradeRequest(cfg_.hostHeader, cfg_.target, clientKey_, offer,
                                        cfg_.extraHeaders);
  if (tlsSession_) {
    tlsSession_->write(reinterpret_cast<const uint8_t*>(req.data()), req.size());
    std::string out;
    tlsSession_->takeOutput(out);
    writeRaw(std::move(out));
  } else {
    writeRaw(std::move(req));
  }
}

void Connection::startReading() {
  if (reading_ || socketClosing_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::onAlloc,
                    &Connection::onRead) == 0)
    reading_ = true;
}

void Connection::resumeReading() {
  if (!pausedByBudget_) return;
  pausedByBudget_ = false;
  updateReading();
}

void Connection::updateReading() {
  // A peer that sends and never reads must not grow our send queue (pongs,
  // replies the application makes): while the queue is over its high-water
  // mark the connection is not read, so TCP pushes back on the peer. Only
  // while open: the close handshake still reads.
  if (pausedBySendQueue_ && (!sendQueueOver() || state() != kOpen)) pausedBySendQueue_ = false;
  if (!pausedBySendQueue_ && state() == kOpen && !shutdownStarted_ && sendQueueOver())
    pausedBySendQueue_ = true;
  bool want = !pausedByBudget_ && !pausedBySendQueue_;
  if (want) {
    startReading();
  } else if (reading_ && !socketClosing_ && !shutdownStarted_) {
    uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
    reading_ = false;
  }
}

void Connection::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  // Plain TCP only: under TLS the socket's bytes are ciphertext.
  char* base;
  size_t len;
  if (!self->tlsSession_ && !self->failed_ && !self->closeReceived_ && !self->shutdownStarted_ &&
      self->state() >= kOpen && self->receiver_.readTarget(&base, &len)) {
    buf->base = base;
    buf->len = len;
    return;
  }
  buf->base = self->loop_.readBuffer();
  buf->len = self->loop_.readBufferSize();
}

void Connection::onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data);
  if (n == 0) return;
  // Keep ourselves alive through callbacks that may drop the owner's reference.
  std::shared_ptr<Connection> hold = self->self_;
  if (n < 0) {
    if (self->state() < kOpen && !self->cfg_.server && !self->failed_) {
      self->failHandshake(0, n == UV_EOF ? "Connection closed by peer during handshake"
                                         : std::string("Read failed: ") + uv_strerror(n));
      return;
    }
    if (!self->closeReceived_ && !self->closeSent_) {
      self->closeCode_ = 1006;
      self->closeReason_ = n == UV_EOF ? "Abnormal closure" : uv_strerror(static_cast<int>(n));
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
      double spent = static_cast<double>(uv_now(self->loop_.loop()) - self->acceptedMs_) / 1000.0;
      double left = self->cfg_.limits.handshakeTimeout - spent;
      self->armDeadline(left > 0.001 ? left : 0.001);
    }
  }
  // Events of this read go to the sink together at the end of this scope
  // (declared after `hold`, so it runs while the connection is alive); then
  // reading stops if the sink is over its budget.
  struct HoldEvents {
    Connection* c;
    uv_stream_t* s;
    HoldEvents(Connection* conn, uv_stream_t* stream) : c(conn), s(stream) { c->holdEvents_ = true; }
    ~HoldEvents() {
      c->holdEvents_ = false;
      c->flushHeld();
      if (c->socketClosing_) return;
      if (c->pausedByBudget_ || c->sendQueueOver()) c->updateReading();
    }
  } held(self, s);
  auto* data = reinterpret_cast<uint8_t*>(buf->base);
  if (self->shutdownStarted_) return;  // draining until the peer's FIN
  if (self->tlsSession_) {
    std::string& plain = tlsScratch();
    plain.clear();
    bool wasDone = self->tlsSession_->handshakeDone();
    bool ok = self->tlsSession_->feed(data, static_cast<size_t>(n), plain);
    if (self->tlsSession_->hasOutput()) {
      std::string out;
      self->tlsSession_->takeOutput(out);
      self->writeRaw(std::move(out));
    }
    if (!ok) {
      if (self->state() < kOpen && !self->cfg_.server) {
        // The session's error already says "TLS ...": no second prefix.
        self->failHandshake(0, self->tlsSession_->error());
      } else {
        if (!self->closeReceived_) {
          self->closeCode_ = 1006;
          self->closeReason_ = "TLS error: " + self->tlsSession_->error();
        }
        self->closeSocket();
      }
      return;
    }
    if (!wasDone && self->tlsSession_->handshakeDone()) self->onTransportReady();
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
  } else {
    self->onPlainData(data, static_cast<size_t>(n));
  }
}

void Connection::onPlainData(uint8_t* data, size_t len) {
  int st = state();
  if (st == kHandshake) {
    handleHandshakeBytes(data, len);
  } else if (st == kOpen || (st == kClosing && !failed_)) {
    receiver_.feed(data, len);
  }
}

// --------------------------------------------------------------- handshake

void Connection::handleHandshakeBytes(uint8_t* data, size_t len) {
  handshakeBuf_.append(reinterpret_cast<const char*>(data), len);
  // The head can only end in a chunk holding '\n': skip re-parsing the whole
  // buffer for bytes that cannot complete it (a trickling peer would make the
  // parse quadratic), unless it is already over the size limit.
  if (!std::memchr(data, '\n', len) && handshakeBuf_.size() <= cfg_.limits.maxHeaderSize) return;
  size_t consumed = 0;
  std::string error;
  HttpParse r;
  if (cfg_.server) {
    HttpRequest req;
    r = parseHttpRequest(handshakeBuf_.data(), handshakeBuf_.size(), cfg_.limits.maxHeaderSize,
                         cfg_.limits.maxHeaders, req, consumed, error);
    if (r == HttpParse::Incomplete) return;
    if (r == HttpParse::TooLarge) return reject(431, "Request header fields too large");
    if (r == HttpParse::Bad) return reject(400, error.empty() ? "Bad request" : error);
    serverHandshake(req);
  } else {
    HttpResponse res;
    r = parseHttpResponse(handshakeBuf_.data(), handshakeBuf_.size(), cfg_.limits.maxHeaderSize,
                          cfg_.limits.maxHeaders, res, consumed, error);
    if (r == HttpParse::Incomplete) return;
    if (r != HttpParse::Done) {
      failHandshake(0, r == HttpParse::TooLarge ? "Response header too large"
                                                : "Bad HTTP response: " + error);
      return;
    }
    clientHandshake(res);
  }
  if (state() != kOpen) return;
  std::string rest = handshakeBuf_.substr(consumed);
  std::string().swap(handshakeBuf_);
  if (!rest.empty()) receiver_.feed(reinterpret_cast<uint8_t*>(&rest[0]), rest.size());
}

void Connection::serverHandshake(const HttpRequest& req) {
  UpgradeVerdict v = validateUpgradeRequest(req);
  if (v.status != 0) return reject(v.status, v.reason);
  std::string extResponse;
  std::string offers;
  if (cfg_.deflate.enabled && req.get("Sec-WebSocket-Extensions", offers)) {
    std::string error;
    DeflateParams params;
    if (negotiateDeflateServer(offers, cfg_.deflate, params, extResponse, error)) {
      deflateParams_ = params;
      deflateOn_ = true;
    } else if (!error.empty()) {
      return reject(400, "Bad Sec-WebSocket-Extensions: " + error);
    }
  }
  std::string key;
  req.get("Sec-WebSocket-Key", key);
  requestTarget_ = req.target;
  peerHeaders_ = req.headers;
  if (!owner_->onConnUpgrading(this)) return reject(503, "Too many connections");
  std::string response = buildUpgradeResponse(computeAcceptKey(key), extResponse);
  if (tlsSession_) {
    tlsSession_->write(reinterpret_cast<const uint8_t*>(response.data()), response.size());
    std::string out;
    tlsSession_->takeOutput(out);
    writeRaw(std::move(out));
  } else {
    writeRaw(std::move(response));
  }
  becomeOpen();
}

void Connection::clientHandshake(const HttpResponse& res) {
  responseStatus_ = res.status;
  peerHeaders_ = res.headers;
  std::string error;
  if (!validateUpgradeResponse(res, computeAcceptKey(clientKey_), error)) {
    failHandshake(res.status, error);
    return;
  }
  std::string ext;
  if (res.get("Sec-WebSocket-Extensions", ext) && !ext.empty()) {
    if (!cfg_.deflate.enabled) {
      failHandshake(res.status, "Server accepted an extension that was not offered: " + ext);
      return;
    }
    DeflateParams params;
    if (!acceptDeflateResponse(ext, cfg_.deflate, params, error)) {
      failHandshake(res.status, "Invalid Sec-WebSocket-Extensions response: " + error);
      return;
    }
    deflateParams_ = params;
    deflateOn_ = true;
  }
  becomeOpen();
}

void Connection::becomeOpen() {
  uv_timer_stop(&deadline_);
  if (deflateOn_) {
    // We inflate what the peer compressed: its window and takeover setting.
    int bits = cfg_.server ? deflateParams_.clientMaxWindowBits : deflateParams_.serverMaxWindowBits;
    bool noCtx = cfg_.server ? deflateParams_.clientNoContextTakeover
                             : deflateParams_.serverNoContextTakeover;
    receiver_.enableInflate(bits, noCtx);
  }
  wasOpen_ = true;
  if (!tlsSession_) {
    uv_os_fd_t fd;
    if (uv_fileno(reinterpret_cast<uv_handle_t*>(&tcp_), &fd) == 0) {
      std::lock_guard<std::mutex> lock(sendMu_);
      fd_ = fd;
    }
  }
  state_.store(kOpen, std::memory_order_release);
  startHeartbeat();
  flushHeld();  // the owner's events come after this connection's so far
  owner_->onConnOpen(this);
}

void Connection::failHandshake(int httpStatus, const std::string& error) {
  if (failed_) return;
  failed_ = true;
  state_.store(kClosing, std::memory_order_release);
  flushHeld();
  owner_->onConnFailed(this, httpStatus, error);
  closeSocket();
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
  if (opcode == kPing && cfg_.heartbeat.enablePong && !closeSent_)
    sendPong(reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
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
  uv_timer_stop(&pingTimer_);
  if (!closeSent_) {
    // The peer started the close handshake: echo its code.
    closeCode_ = code;
    closeReason_ = std::move(reason);
    closeRemote_ = true;
    closeSent_ = true;
    state_.store(kClosing, std::memory_order_release);
    uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code & 0xFF)};
    sendControl(kClose, payload, code == 1005 ? 0 : 2);
  }
  armDeadline(cfg_.closeTimeout);
  if (cfg_.server) {
    // §7.1.1: the server closes the TCP connection first.
    closeAfterWrite_ = true;
    flush();
    maybeShutdown();
  }
  // The client waits for the server's FIN (or the deadline).
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

void Connection::failConnection(int code, const std::string& reason) {
  if (failed_ || socketClosing_) return;
  flushHeld();  // what preceded the violation reaches the application first
  failed_ = true;
  uv_timer_stop(&pingTimer_);
  // Before the close frame is queued: no data frame may follow it.
  state_.store(kClosing, std::memory_order_release);
  if (!closeSent_) {
    closeSent_ = true;
    closeCode_ = code;
    closeReason_ = reason;
    closeRemote_ = false;
    std::string r = clampReason(reason);
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload += r;
    sendControl(kClose, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  }
  closeAfterWrite_ = true;
  armDeadline(cfg_.closeTimeout);
  flush();
  maybeShutdown();
}

void Connection::close(int code, const std::string& reason) {
  if (socketClosing_) return;
  int st = state();
  if (st < kOpen) {
    closeCode_ = code;
    closeReason_ = reason;
    closeRemote_ = false;
    closeSocket();
    return;
  }
  if (closeSent_) return;
  closeSent_ = true;
  closeCode_ = code ? code : 1005;
  closeReason_ = reason;
  closeRemote_ = false;
  state_.store(kClosing, std::memory_order_release);
  uv_timer_stop(&pingTimer_);
  std::string payload;
  if (code) {
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xFF));
    payload += clampReason(reason);
  }
  sendControl(kClose, reinterpret_cast<const uint8_t*>(payload.data()), payload.size());
  armDeadline(cfg_.closeTimeout);
  if (closeReceived_ && cfg_.server) {
    closeAfterWrite_ = true;
    maybeShutdown();
  }
}

void Connection::abort() {
  if (socketClosing_) return;
  if (!closeSent_ && !closeReceived_) {
    closeCode_ = 1006;
    closeReason_ = "Connection aborted";
    closeRemote_ = false;
  }
  closeSocket();
}

// ---------------------------------------------------------------- timers

void Connection::armDeadline(double seconds) {
  if (!tcpInit_ || socketClosing_) return;
  if (seconds <= 0) {
    uv_timer_stop(&deadline_);
    return;
  }
  uv_timer_start(&deadline_, &Connection::onDeadline, static_cast<uint64_t>(seconds * 1000), 0);
}

void Connection::onDeadline(uv_timer_t* t) {
  auto* self = static_cast<Connection*>(t->data);
  std::shared_ptr<Connection> hold = self->self_;
  int st = self->state();
  if (st == kOpen) {
    // Armed after a ping: nothing has arrived since.
    if (!self->closeSent_) {
      self->closeCode_ = 1011;
      self->closeReason_ = "Ping timeout";
      self->closeRemote_ = false;
    }
    self->closeSocket();
    return;
  }
  if (st == kHandshake && self->cfg_.server && !self->failed_) {
    self->closeCode_ = 1006;
    self->closeReason_ = self->awaitingFirstByte_ ? "No data within firstByteTimeout" : "Handshake timeout";
  }
  self->closeSocket();
}

void Connection::startHeartbeat() {
  int interval = cfg_.heartbeat.pingInterval;
  if (interval <= 0) return;
  uint64_t ms = static_cast<uint64_t>(interval) * 1000;
  uv_timer_start(&pingTimer_, &Connection::onPingTimer, ms, ms);
}

void Connection::onPingTimer(uv_timer_t* t) {
  auto* self = static_cast<Connection*>(t->data);
  if (self->state() != kOpen) return;
  static const char kPayload[] = "ixwebsocket::heartbeat";
  uint64_t sentAt = uv_now(self->loop_.loop());
  int pongTimeout = self->cfg_.heartbeat.pingTimeout;
  if (pongTimeout > 0 && self->awaitingPong_ &&
      sentAt - self->pingSentMs_ >= static_cast<uint64_t>(pongTimeout) * 1000) {
    // The pong deadline falls due with this tick (equal timeouts): time out
    // now rather than send another ping to a peer already given up on.
    onDeadline(&self->deadline_);
    return;
  }
  self->sendControl(kPing, reinterpret_cast<const uint8_t*>(kPayload), sizeof(kPayload) - 1);
  int timeout = self->cfg_.heartbeat.pingTimeout;
  // Only the oldest unanswered ping is timed: a later one cannot extend it.
  if (timeout > 0 && !self->awaitingPong_) {
    self->awaitingPong_ = true;
    self->pingSentMs_ = sentAt;
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(&self->deadline_))) {
      uv_timer_start(&self->deadline_, &Connection::onPongDeadline,
                     static_cast<uint64_t>(timeout) * 1000, 0);
    }
  }
}

// A flag rather than comparing millisecond clocks: a pong read in the same
// loop millisecond as its ping, or a late timer, must not count as silence.
void Connection::onPongDeadline(uv_timer_t* d) {
  auto* c = static_cast<Connection*>(d->data);
  if (c->state() == kOpen) {
    if (!c->awaitingPong_) return;  // heard from the peer; the next ping re-arms
    uint64_t limit = static_cast<uint64_t>(c->cfg_.heartbeat.pingTimeout) * 1000;
    uint64_t waited = uv_now(c->loop_.loop()) - c->pingSentMs_;
    if (waited < limit) {
      // Armed for an earlier, answered ping: wait out the current one.
      uv_timer_start(d, &Connection::onPongDeadline, limit - waited, 0);
      return;
    }
  }
  onDeadline(d);
}

// ------------------------------------------------------------------ output

void appendWriteBufs(std::vector<uv_buf_t>& bufs, const char* data, size_t len, size_t maxPiece) {
  if (maxPiece == 0 || maxPiece > kMaxWritePiece) maxPiece = kMaxWritePiece;
  do {
    size_t n = std::min(len, maxPiece);
    bufs.push_back(uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(n)));
    data += n;
    len -= n;
  } while (len > 0);
}

OutFramePtr Connection::buildFrame(const uint8_t* data, size_t len, uint8_t opcode, bool compress,
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
  bool masked = !cfg_.server;
  if (masked) randomBytes(key, 4);
  size_t hl = writeFrameHeader(hdr, true, rsv1, opcode, plen, masked ? key : nullptr);
  f->start = kMaxFrameHeader - hl;
  std::memcpy(&f->data[f->start], hdr, hl);
  if (masked && plen) applyMask(reinterpret_cast<uint8_t*>(&f->data[kMaxFrameHeader]), plen, key, 0);
  if (res) res->wireSize = plen;
  return f;
}

OutFramePtr Connection::buildServerFrame(const uint8_t* data, size_t len, uint8_t opcode) {
  auto f = std::make_shared<OutFrame>();
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, false, opcode, len, nullptr);
  frameStorage(f->data, hl + len);
  f->data.append(reinterpret_cast<const char*>(hdr), hl);
  if (len) f->data.append(reinterpret_cast<const char*>(data), len);
  return f;
}

SendResult Connection::send(const uint8_t* data, size_t len, bool binary) {
  SendResult res;
  res.conn = id_;
  res.payloadSize = len;
  if (state() != kOpen) {
    res.message = "Not connected";
    res.bufferedAmount = bufferedAmount();
    return res;
  }
  if (!binary && !isValidUtf8(data, len)) {
    res.message = "Invalid UTF-8: a text message must be valid UTF-8";
    res.bufferedAmount = bufferedAmount();
    return res;
  }
  if (bufferedAmount() + len > cfg_.limits.sendHighWaterMark) {
    res.message = "Send buffer is over its high-water mark";
    res.bufferedAmount = bufferedAmount();
    return res;
  }
  uint8_t opcode = binary ? kBinary : kText;
  Next next;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    bool compress = deflateOn_ && len >= cfg_.deflate.threshold;
    if (compress && !deflaterReady_) {
      int bits = cfg_.server ? deflateParams_.serverMaxWindowBits : deflateParams_.clientMaxWindowBits;
      bool noCtx = cfg_.server ? deflateParams_.serverNoContextTakeover
                               : deflateParams_.clientNoContextTakeover;
      deflaterReady_ = deflater_.init(bits, noCtx, cfg_.deflate.level, cfg_.deflate.memLevel);
      if (!deflaterReady_) res.compressionError = true;
    }
    OutFramePtr f = buildFrame(data, len, opcode, compress && deflaterReady_, &res);
    next = enqueueLocked(std::move(f));
  }
  afterEnqueue(next);
  res.success = true;
  res.bufferedAmount = bufferedAmount();
  return res;
}

SendResult Connection::sendShared(const OutFramePtr& frame, uint64_t payloadLen) {
  SendResult res;
  res.conn = id_;
  res.payloadSize = payloadLen;
  res.wireSize = payloadLen;
  if (state() != kOpen) {
    res.message = "Not connected";
  } else if (bufferedAmount() + frame->size() > cfg_.limits.sendHighWaterMark) {
    res.message = "Send buffer is over its high-water mark";
  } else {
    enqueue(frame);
    res.success = true;
  }
  res.bufferedAmount = bufferedAmount();
  return res;
}

bool Connection::trySendZeroCopy(const uint8_t* data, size_t len, uint8_t opcode,
                                 SendResult* res) {
  // Small frames are cheaper to copy and batch (cork); large ones are a
  // syscall of their own anyway, so they skip the copy into a frame and the
  // hop to the IO thread, even while corked.
  if (len <= kDirectWriteMax || !cfg_.server) return false;
  uint8_t hdr[kMaxFrameHeader];
  size_t hl = writeFrameHeader(hdr, true, false, opcode, len, nullptr);
  Next next;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    // Idle socket only: nothing queued or being written may go after us.
    if (fd_ < 0 || !outbox_.empty() || writesInFlight_ != 0 || state() != kOpen) return false;
    res->conn = id_;
    res->payloadSize = len;
    res->wireSize = len;
    if (bufferedAmount() + hl + len > cfg_.limits.sendHighWaterMark) {
      res->message = "Send buffer is over its high-water mark";
      res->bufferedAmount = bufferedAmount();
      return true;
    }
    struct iovec iov[2];
    iov[0].iov_base = hdr;
    iov[0].iov_len = hl;
    iov[1].iov_base = const_cast<uint8_t*>(data);
    iov[1].iov_len = len;
    struct msghdr msg;
    std::memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = 2;
    ssize_t w;
    do {
      w = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    size_t done = w > 0 ? static_cast<size_t>(w) : 0;
    if (done == hl + len) {
      next = kNothing;
    } else {
      // The socket is full (or failed: the IO thread's write reports it):
      // copy only what it did not take.
      auto rest = std::make_shared<OutFrame>();
      frameStorage(rest->data, hl + len - done);
      if (done < hl) rest->data.append(reinterpret_cast<const char*>(hdr) + done, hl - done);
      size_t from = done > hl ? done - hl : 0;
      rest->data.append(reinterpret_cast<const char*>(data) + from, len - from);
      next = queueLocked(std::move(rest));
    }
  }
  afterEnqueue(next);
  res->success = true;
  res->bufferedAmount = bufferedAmount();
  return true;
}

void Connection::sendControl(uint8_t opcode, const uint8_t* data, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  enqueue(buildFrame(data, len, opcode, false, nullptr));
}

// RFC 6455 §5.5.3: a pong may answer only the latest of several pings. A pong
// still waiting in the outbox takes the new payload in its place; pongs
// already handed to the socket are left alone.
void Connection::sendPong(const uint8_t* data, size_t len) {
  if (len > kMaxControlPayload) len = kMaxControlPayload;
  OutFramePtr f = buildFrame(data, len, kPong, false, nullptr);
  Next next;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    if (pendingPong_ && pendingPongAt_ < outbox_.size() && outbox_[pendingPongAt_] == pendingPong_) {
      buffered_.fetch_add(f->size(), std::memory_order_relaxed);
      buffered_.fetch_sub(pendingPong_->size(), std::memory_order_relaxed);
      outbox_[pendingPongAt_] = f;
      pendingPong_ = std::move(f);
      return;
    }
    next = enqueueLocked(f);
    if (!outbox_.empty() && outbox_.back() == f) {
      pendingPongAt_ = outbox_.size() - 1;
      pendingPong_ = std::move(f);
    } else {
      pendingPong_.reset();  // written at once (or only its tail queued)
    }
  }
  afterEnqueue(next);
}

void Connection::enqueue(OutFramePtr f) {
  Next next;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    next = enqueueLocked(std::move(f));
  }
  afterEnqueue(next);
}

// With sendMu_ held. Corked: queue, and have uncork() write it. Otherwise,
// when nothing is queued or being written, the calling thread writes a small
// frame itself (no hop to the IO thread: lower latency, fewer wake-ups); what
// the socket does not take at once is queued for the IO thread.
Connection::Next Connection::enqueueLocked(OutFramePtr f) {
  if ((tCorkDepth == 0 || tCorkPass > 0) && f->size() <= kDirectWriteMax && fd_ >= 0 &&
      outbox_.empty() && writesInFlight_ == 0 && state() == kOpen) {
    if (tCorkDepth > 0) --tCorkPass;
    const char* p = f->data.data() + f->start;
    size_t n = f->size();
    ssize_t w;
    do {
      w = ::send(fd_, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
    } while (w < 0 && errno == EINTR);
    if (w == static_cast<ssize_t>(n)) return kNothing;
    if (w > 0) {
      auto rest = std::make_shared<OutFrame>();
      rest->data.assign(p + w, n - static_cast<size_t>(w));
      f = std::move(rest);
    }
    // EAGAIN or an error: the IO thread writes it and reports any failure.
  }
  return queueLocked(std::move(f));
}

// With sendMu_ held: the frame waits for the IO thread (or uncork).
Connection::Next Connection::queueLocked(OutFramePtr f) {
  buffered_.fetch_add(f->size(), std::memory_order_relaxed);
  outbox_.push_back(std::move(f));
  if (flushPosted_) return kNothing;  // a flush is already due
  flushPosted_ = true;
  return tCorkDepth > 0 ? kCork : kPost;
}

void Connection::afterEnqueue(Next next) {
  if (next == kPost) {
    std::shared_ptr<Connection> self = shared_from_this();
    loop_.post([self] { self->flush(); });
  } else if (next == kCork) {
    if (!tCorked) tCorked = new std::vector<std::shared_ptr<Connection>>();  // per thread, kept
    tCorked->push_back(shared_from_this());
  }
}

// At uncork, on the owner thread: one sendmsg for everything this connection
// queued when its socket is idle; the rest (or all, under TLS or while the IO
// thread is writing) goes to the IO thread.
void Connection::flushFromOwner() {
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    if (outbox_.empty()) {
      flushPosted_ = false;
      return;
    }
    // Large amounts go to the IO thread: what the socket does not take at
    // once would be copied again here, on the owner's thread.
    if (fd_ >= 0 && writesInFlight_ == 0 && state() == kOpen &&
        buffered_.load(std::memory_order_relaxed) <= kDirectWriteMax * 4) {
      struct iovec iov[64];
      size_t n = std::min<size_t>(outbox_.size(), 64);
      for (size_t i = 0; i < n; ++i) {
        iov[i].iov_base = const_cast<char*>(outbox_[i]->data.data() + outbox_[i]->start);
        iov[i].iov_len = outbox_[i]->size();
      }
      struct msghdr msg;
      std::memset(&msg, 0, sizeof msg);
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      ssize_t w;
      do {
        w = ::sendmsg(fd_, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      } while (w < 0 && errno == EINTR);
      if (w > 0) {
        size_t left = static_cast<size_t>(w), done = 0;
        while (done < n && left >= outbox_[done]->size()) left -= outbox_[done++]->size();
        uint64_t freed = static_cast<uint64_t>(w);
        if (done < n && left > 0) {
          // The socket took part of a frame: keep the rest in its place.
          const OutFrame& part = *outbox_[done];
          auto rest = std::make_shared<OutFrame>();
          rest->data.assign(part.data.data() + part.start + left, part.size() - left);
          outbox_[done] = std::move(rest);
        }
        outbox_.erase(outbox_.begin(), outbox_.begin() + static_cast<long>(done));
        buffered_.fetch_sub(freed, std::memory_order_relaxed);
        pendingPong_.reset();  // sent, or moved: no longer replaceable
      }
      if (outbox_.empty()) {
        flushPosted_ = false;
        return;
      }
    }
  }
  std::shared_ptr<Connection> self = shared_from_this();
  loop_.post([self] { self->flush(); });
}

void Connection::flush() {
  std::vector<OutFramePtr> frames;
  bool drop = socketClosing_ || shutdownStarted_ || !tcpInit_;
  // While libuv still holds bytes it could not write (the socket is full: a
  // peer not reading keeps them there), frames wait in the outbox, where
  // bufferedAmount sees them and a newer pong replaces an unsent one; the
  // onWrite that empties libuv's queue flushes them. (Handing every flush to
  // libuv queued pongs without bound.) A socket that takes everything at once
  // leaves libuv's queue empty: the next write goes at once.
  bool stalled = !drop && uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_)) > 0;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    if (stalled && writesInFlight_ > 0) {
      flushPosted_ = !outbox_.empty();
      return;
    }
    frames.swap(outbox_);
    pendingPong_.reset();
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
  writeBuffers(std::move(frames));
}

void Connection::writeBuffers(std::vector<OutFramePtr>&& frames) {
  auto* w = new WriteReq;
  w->req.data = this;
  for (auto& f : frames) w->accounted += f->size();
  if (tlsSession_) {
    for (auto& f : frames)
      tlsSession_->write(reinterpret_cast<const uint8_t*>(f->data.data() + f->start), f->size());
    tlsSession_->takeOutput(w->raw);
    std::vector<uv_buf_t> iov;
    appendWriteBufs(iov, &w->raw[0], w->raw.size());
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), iov.data(),
                      static_cast<unsigned>(iov.size()), &Connection::onWrite);
    if (rc != 0) writeFailed(w);
    return;
  }
  w->frames = std::move(frames);
  std::vector<uv_buf_t> iov;
  iov.reserve(w->frames.size());
  for (auto& f : w->frames) appendWriteBufs(iov, f->data.data() + f->start, f->size());
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), iov.data(),
                    static_cast<unsigned>(iov.size()), &Connection::onWrite);
  if (rc != 0) writeFailed(w);
}

void Connection::writeFailed(void* req) {
  auto* w = static_cast<WriteReq*>(req);
  buffered_.fetch_sub(w->accounted, std::memory_order_relaxed);
  delete w;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    --writesInFlight_;
  }
  closeSocket();
}

void Connection::writeRaw(std::string bytes) {
  if (bytes.empty() || socketClosing_ || !tcpInit_) return;
  auto* w = new WriteReq;
  w->req.data = this;
  w->raw = std::move(bytes);
  std::vector<uv_buf_t> iov;
  appendWriteBufs(iov, &w->raw[0], w->raw.size());
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    ++writesInFlight_;
  }
  if (uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), iov.data(),
               static_cast<unsigned>(iov.size()), &Connection::onWrite) != 0)
    writeFailed(w);
}

void Connection::onWrite(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  auto* self = static_cast<Connection*>(req->data);
  self->buffered_.fetch_sub(w->accounted, std::memory_order_relaxed);
  bool more;
  bool drained = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&self->tcp_)) == 0;
  {
    std::lock_guard<std::mutex> lock(self->sendMu_);
    --self->writesInFlight_;
    more = drained && self->flushPosted_ && !self->outbox_.empty();
  }
  delete w;
  if (status == UV_ECANCELED || self->socketClosing_) return;
  if (status < 0) {
    if (!self->closeSent_ && !self->closeReceived_) {
      self->closeCode_ = 1006;
      self->closeReason_ = std::string("Write failed: ") + uv_strerror(status);
      self->closeRemote_ = true;
    }
    self->closeSocket();
    return;
  }
  if (more) self->flush();
  if (self->pausedBySendQueue_) self->updateReading();
  self->maybeShutdown();
}

void Connection::maybeShutdown() {
  if (!closeAfterWrite_ || shutdownStarted_ || socketClosing_ || writesInFlight_ > 0) return;
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    if (!outbox_.empty()) return;
  }
  if (tlsSession_ && tlsSession_->handshakeDone()) {
    tlsSession_->shutdown();
    std::string out;
    tlsSession_->takeOutput(out);
    writeRaw(std::move(out));
  }
  shutdownStarted_ = true;
  // FIN after our last bytes; keep reading (and discarding) until the peer's
  // FIN, so unread input never turns our close into a reset.
  auto* req = new uv_shutdown_t;
  req->data = this;
  if (uv_shutdown(req, reinterpret_cast<uv_stream_t*>(&tcp_), &Connection::onShutdown) != 0) {
    delete req;
    closeSocket();
    return;
  }
  if (!reading_) startReading();
}

void Connection::onShutdown(uv_shutdown_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  delete req;
  if (status != 0 && status != UV_ECANCELED && !self->socketClosing_) self->closeSocket();
}

// ----------------------------------------------------------------- closing

void Connection::closeSocket() {
  if (socketClosing_) return;
  flushHeld();
  socketClosing_ = true;
  if (state() == kOpen && !closeSent_ && !closeReceived_ && closeCode_ == 1006 &&
      closeReason_.empty()) {
    closeReason_ = "Abnormal closure";
  }
  {
    // Under the lock: a direct write in progress finishes before the fd goes.
    std::lock_guard<std::mutex> lock(sendMu_);
    state_.store(kClosed, std::memory_order_release);
    fd_ = -1;
  }
  if (!tcpInit_) {
    finish();
    return;
  }
  uv_timer_stop(&deadline_);
  uv_timer_stop(&pingTimer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&deadline_), &Connection::onHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&pingTimer_), &Connection::onHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::onHandleClosed);
}

void Connection::onHandleClosed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  if (--self->openHandles_ == 0) self->finish();
}

void Connection::finish() {
  std::shared_ptr<Connection> hold = self_;
  self_.reset();
  receiver_.discard();
  {
    std::lock_guard<std::mutex> lock(sendMu_);
    outbox_.clear();
  }
  flushHeld();
  if (owner_) {
    auto owner = std::move(owner_);
    owner->onConnClosed(this, wasOpen_, closeCode_, closeReason_, closeRemote_);
  }
}

void Connection::emit(Event&& ev) {
  ev.owner = ownerTag_;
  ev.conn = id_;
  if (holdEvents_) {
    held_.push_back(std::move(ev));
    return;
  }
  if (!sink_->push(std::move(ev))) pausedByBudget_ = true;
}

void Connection::flushHeld() {
  if (held_.empty()) return;
  if (!sink_->pushAll(held_)) pausedByBudget_ = true;
  // A flood of small messages leaves a large vector behind: keep a modest one.
  if (held_.capacity() > 4096) std::vector<Event>().swap(held_);
}

}  // namespace wsengine
