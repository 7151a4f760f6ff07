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
// Frames this large are read straight into the message (see onAlloc), in a
// recycled buffer: each read then stops at the frame's end, an extra system
// call that small frames would feel, large ones not. Regions grow by at most
// kPlaceChunk so that a slow peer announcing a huge frame pins little memory.
constexpr uint64_t kPlaceMin = kPooledMin;
constexpr uint64_t kPlaceChunk = 1024 * 1024;

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

// Fragment bytes handed to the sink stay charged to the server's budget of
// unfinished-message bytes until the event that carries them is destroyed
// (the addon destroys it once JavaScript has the data).
struct BudgetCharge {
  std::shared_ptr<ByteBudget> budget;
  uint64_t bytes;
  BudgetCharge(std::shared_ptr<ByteBudget> b, uint64_t n) : budget(std::move(b)), bytes(n) {}
  ~BudgetCharge() { budget->give(bytes); }
};

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
      parser_(cfg_.server) {
  parser_.setMaxMessageSize(cfg_.limits.maxPayload);
}

Connection::~Connection() { releaseUnfinished(); }

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
  // Inside a large uncompressed data payload, the kernel copies the rest of
  // it into msg_ itself: the read cannot go past the frame, and the parser
  // unmasks it there (onFramePayload sees it already in place).
  if (!self->tlsSession_ && !self->failed_ && !self->closeReceived_ && !self->shutdownStarted_ &&
      !self->msgCompressed_ && !isControl(self->frame_.opcode) && self->state() >= kOpen &&
      self->frame_.payloadLen >= kPlaceMin) {
    uint64_t left = self->parser_.payloadLeft();
    size_t region = self->msg_.size() - self->msgFill_;
    if (left > 0 && region == 0) {
      // No recycled bytes to overwrite: make room (resize zero-fills, one
      // pass of stores, still cheaper than a copy from the scratch buffer).
      // New memory: charged first; without room the bytes go through the
      // scratch buffer and onFramePayload fails the connection.
      region = static_cast<size_t>(std::min(left, kPlaceChunk));
      if (self->chargeUnfinished(self->msgFill_ + region)) {
        self->msg_.resize(self->msgFill_ + region);
        self->madeEnd_ = self->msg_.size();
      } else {
        region = 0;
      }
    }
    if (left > 0 && region > 0) {
      buf->base = &self->msg_[self->msgFill_];
      buf->len = static_cast<size_t>(std::min<uint64_t>(region, left));
      return;
    }
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
    feedFrames(data, len);
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
  if (!rest.empty()) feedFrames(reinterpret_cast<uint8_t*>(&rest[0]), rest.size());
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
  parser_.setAllowRsv1(deflateOn_);
  if (deflateOn_) {
    // We inflate what the peer compressed: its window and takeover setting.
    int bits = cfg_.server ? deflateParams_.clientMaxWindowBits : deflateParams_.serverMaxWindowBits;
    bool noCtx = cfg_.server ? deflateParams_.clientNoContextTakeover
                             : deflateParams_.serverNoContextTakeover;
    inflaterReady_ = inflater_.init(bits, noCtx);
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

// ------------------------------------------------------------------ frames

void Connection::feedFrames(uint8_t* data, size_t len) {
  if (closeReceived_ || failed_ || parser_.failed()) return;
  parser_.feed(data, len, *this);
}

// The outcome of inflating: over maxPayload fails with 1009 (so does the
// server's budget for unfinished messages when it capped the output),
// corrupt data raises an error event (decompressionError) and fails with 1007.
bool Connection::inflated(Inflater::Result r, bool budgetCapped) {
  if (r == Inflater::kOk) return true;
  if (r == Inflater::kTooBig) {
    if (budgetCapped)
      failOverBudget();
    else
      failConnection(1009, "Message too big");
    return false;
  }
  Event ev;
  ev.type = EventType::Error;
  ev.decompressionError = true;
  ev.reason = "Invalid compressed data";
  emit(std::move(ev));
  failConnection(1007, "Invalid compressed data");
  return false;
}

bool Connection::onFrameHeader(const FrameHeader& h) {
  frame_ = h;
  frameWire_ = h.payloadLen;
  if (isControl(h.opcode)) {
    ctrl_.clear();
    return true;
  }
  if (h.opcode != kContinuation) {
    msgCompressed_ = h.rsv1;
    msgBinary_ = h.opcode == kBinary;
    msgWire_ = 0;
    msgFill_ = 0;
    madeEnd_ = 0;
    fragDelivered_ = 0;
    utf8_.reset();
    // The parser already refused lengths over maxPayload; cap the up-front
    // reservation anyway so a slow sender cannot pin large buffers.
    size_t want = msgCompressed_ ? 0 : static_cast<size_t>(std::min<uint64_t>(h.payloadLen, 64u << 20));
    if (msg_.capacity() < want && want >= kPooledMin) {
      recycleBuffer(std::move(msg_));
      msg_ = takeBuffer(want);  // keeps its size: see msgFill_
    } else if (msgCompressed_ || msg_.capacity() < want) {
      msg_.clear();
      msg_.reserve(want);
    }
  }
  msgWire_ += h.payloadLen;
  return true;
}

// Payload bytes read into the shared scratch buffer go straight to their
// place in msg_, unmasked on the way, when a recycled buffer has room there.
uint8_t* Connection::payloadTarget(const uint8_t* src, size_t len) {
  if (isControl(frame_.opcode) || msgCompressed_ || msg_.size() - msgFill_ < len) return nullptr;
  auto* to = reinterpret_cast<uint8_t*>(&msg_[msgFill_]);
  return to == src ? nullptr : to;
}

bool Connection::onFramePayload(uint8_t* data, size_t len) {
  if (isControl(frame_.opcode)) {
    ctrl_.append(reinterpret_cast<const char*>(data), len);
    return true;
  }
  size_t before = msgCompressed_ ? msg_.size() : msgFill_;
  size_t end;
  if (msgCompressed_) {
    if (!inflaterReady_) {
      failConnection(1011, "Inflater unavailable");
      return false;
    }
    // The inflater stops at the budget's room instead of allocating past it.
    uint64_t limit = cfg_.limits.maxPayload;
    bool capped = false;
    if (cfg_.unfinished) {
      uint64_t reach = std::max(kUnbudgetedBytes, unfinishedCharged_ + cfg_.unfinished->room());
      if (reach < limit) {
        limit = reach;
        capped = true;
      }
    }
    Inflater::Result r = inflater_.feed(data, len, msg_, limit);
    if (!inflated(r, capped)) return false;
    end = msg_.size();
  } else {
    if (msgFill_ < msg_.size() && reinterpret_cast<char*>(data) == &msg_[msgFill_] &&
        len <= msg_.size() - msgFill_) {
      // already in place: read there (onAlloc) or put there (payloadTarget)
    } else {
      msg_.resize(msgFill_);  // never drops received bytes
      msg_.append(reinterpret_cast<const char*>(data), len);
    }
    msgFill_ += len;
    end = msgFill_;
  }
  if (!chargeUnfinished(heldBytes())) {
    failOverBudget();
    return false;
  }
  if (!msgBinary_ &&
      !utf8_.feed(reinterpret_cast<const uint8_t*>(msg_.data()) + before, end - before)) {
    failConnection(1007, "Invalid UTF-8 in text message");
    return false;
  }
  return true;
}

bool Connection::onFrameEnd() {
  if (isControl(frame_.opcode)) {
    handleControl();
    // Stop at a close frame: what follows it in the same read is ignored (§5.5.1).
    return !failed_ && !socketClosing_ && !closeReceived_;
  }
  if (!frame_.fin) return emitDataChunk(false);
  // The whole message is in: cut what is left of a region.
  if (!msgCompressed_ && msg_.size() != msgFill_) msg_.resize(msgFill_);
  if (msgCompressed_) {
    size_t before = msg_.size();
    uint64_t limit = cfg_.limits.maxPayload;
    bool capped = false;
    if (cfg_.unfinished) {
      uint64_t reach = std::max(kUnbudgetedBytes, unfinishedCharged_ + cfg_.unfinished->room());
      if (reach < limit) {
        limit = reach;
        capped = true;
      }
    }
    Inflater::Result r = inflater_.finish(msg_, limit);
    if (!inflated(r, capped)) return false;
    if (!msgBinary_ &&
        !utf8_.feed(reinterpret_cast<const uint8_t*>(msg_.data()) + before, msg_.size() - before)) {
      failConnection(1007, "Invalid UTF-8 in text message");
      return false;
    }
  }
  if (!msgBinary_ && !utf8_.complete()) {
    failConnection(1007, "Invalid UTF-8 in text message");
    return false;
  }
  return emitDataChunk(true);
}

// A fragment event carries the bytes this frame added (for text: whole code
// points only, the tail waits for the next frame); the final frame raises the
// message event with the whole message.
bool Connection::emitDataChunk(bool final) {
  Event ev;
  ev.binary = msgBinary_;
  if (final) {
    ev.type = EventType::Message;
    ev.wireSize = msgWire_;
    ev.data = std::move(msg_);
    msg_ = std::string();
    msgFill_ = 0;
    releaseUnfinished();
  } else {
    ev.type = EventType::Fragment;
    ev.wireSize = frameWire_;
    size_t have = msgCompressed_ ? msg_.size() : msgFill_;
    size_t end = have - (msgBinary_ ? 0 : utf8_.pendingBytes());
    size_t n = end - fragDelivered_;
    // The copy is charged apart from msg_ while it waits for the sink to
    // consume it: a fragment then costs its bytes twice only for as long as
    // both copies really exist, and a reader too slow to take fragments
    // cannot let a peer double what the budget allows.
    if (cfg_.unfinished && n > 0) {
      if (n <= kUnbudgetedBytes) {
        cfg_.unfinished->force(n);
      } else if (!cfg_.unfinished->take(n)) {
        failOverBudget();
        return false;
      }
      ev.hold = std::make_shared<BudgetCharge>(cfg_.unfinished, n);
    }
    ev.data.assign(msg_, fragDelivered_, n);
    fragDelivered_ = end;
  }
  emit(std::move(ev));
  return true;
}

void Connection::handleControl() {
  const auto* p = reinterpret_cast<const uint8_t*>(ctrl_.data());
  switch (frame_.opcode) {
    case kPing: {
      if (cfg_.heartbeat.enablePong && !closeSent_) sendPong(p, ctrl_.size());
      Event ev;
      ev.type = EventType::Ping;
      ev.wireSize = ctrl_.size();
      ev.binary = !isValidUtf8(p, ctrl_.size());
      ev.data = ctrl_;
      emit(std::move(ev));
      break;
    }
    case kPong: {
      Event ev;
      ev.type = EventType::Pong;
      ev.wireSize = ctrl_.size();
      ev.binary = !isValidUtf8(p, ctrl_.size());
      ev.data = ctrl_;
      emit(std::move(ev));
      break;
    }
    case kClose: {
      int code = 1005;
      std::string reason;
      if (ctrl_.size() == 1) return failConnection(1002, "Invalid close frame payload");
      if (ctrl_.size() >= 2) {
        code = (p[0] << 8) | p[1];
        if (!validCloseCode(code)) return failConnection(1002, "Invalid close code");
        if (!isValidUtf8(p + 2, ctrl_.size() - 2))
          return failConnection(1007, "Invalid UTF-8 in close reason");
        reason.assign(ctrl_, 2, std::string::npos);
      }
      closeReceived_ = true;
      uv_timer_stop(&pingTimer_);
      if (!closeSent_) {
        // The peer started the close handshake: echo its code.
        closeCode_ = code;
        closeReason_ = reason;
        closeRemote_ = true;
        closeSent_ = true;
        state_.store(kClosing, std::memory_order_release);
        uint8_t payload[2] = {static_cast<uint8_t>(code >> 8), static_cast<uint8_t>(code & 0xFF)};
        sendControl(kClose, payload, code == 1005 ? 0 : 2);
      }
      if (cfg_.server) {
        // §7.1.1: the server closes the TCP connection first.
        closeAfterWrite_ = true;
        armDeadline(cfg_.closeTimeout);
        flush();
        maybeShutdown();
      } else {
        armDeadline(cfg_.closeTimeout);  // wait for the server's FIN
      }
      break;
    }
    default:
      break;
  }
}

void Connection::onFrameError(int closeCode, const char* reason) { failConnection(closeCode, reason); }

// maxUnfinishedBytes: what the connections of a server hold for messages not
// yet complete, counted as msg_'s size (bytes received, inflated bytes, or a
// region made ready for bytes to come, all of them memory in use), plus the
// copies in fragment events until the sink lets go of them (see
// emitDataChunk). A finished message leaves the budget: its event is bounded
// by the sink (the addon's queue pauses reading when full). Up to
// kUnbudgetedBytes per message (or fragment) are counted but never refused.
bool Connection::chargeUnfinished(uint64_t n) {
  const auto& b = cfg_.unfinished;
  if (!b || n == unfinishedCharged_) return true;
  if (n > unfinishedCharged_) {
    if (n <= kUnbudgetedBytes)
      b->force(n - unfinishedCharged_);
    else if (!b->take(n - unfinishedCharged_))
      return false;
  } else {
    b->give(unfinishedCharged_ - n);
  }
  unfinishedCharged_ = n;
  return true;
}

uint64_t Connection::heldBytes() const {
  if (msgCompressed_) return msg_.size();
  // Stale bytes of a recycled buffer past msgFill_ are not new memory (the
  // pool held them); a region onAlloc made is.
  return std::max<uint64_t>(msgFill_, std::min<uint64_t>(madeEnd_, msg_.size()));
}

void Connection::failOverBudget() {
  // The message can never be delivered: its bytes go now, not at close.
  std::string().swap(msg_);
  msgFill_ = 0;
  madeEnd_ = 0;
  fragDelivered_ = 0;
  releaseUnfinished();
  failConnection(1009, "Unfinished messages exceed the server's maxUnfinishedBytes");
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
  state_.store(kClosing, std::memory_order_release);
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

void Connection::abort(bool raiseEvent) {
  if (socketClosing_) return;
  if (!raiseEvent) closeEventDone_ = true;
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
  std::string().swap(msg_);
  releaseUnfinished();
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
