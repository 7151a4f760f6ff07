// The connection's opening handshakes (RFC 6455 §4): the server reads the
// request, validates it, negotiates permessage-deflate, asks its owner
// (maxConnections) and answers 101 or an HTTP error; the client sends the
// request and checks the answer. Both end in becomeOpen(), which hands the
// agreed parameters to the Receiver and the Outbox. Loop thread only.
#include <cstring>

#include "connection.h"
#include "http.h"

namespace wsengine {

void Connection::beginServerHandshake() {
  sock_.setNoDelay();
  state_.store(kHandshake, std::memory_order_release);
  if (cfg().tls) {
    cold().tls.reset(new TlsSession(cfg().tls, true, std::string()));
  }
  // A socket that sends nothing is given only firstByteTimeout: idle sockets
  // would otherwise each hold a handshake slot for the whole handshakeTimeout.
  double first = cfg().limits.firstByteTimeout;
  hs_->acceptedMs = uv_now(loop_.loop());
  if (first > 0 && first < cfg().limits.handshakeTimeout) {
    awaitingFirstByte_ = true;
    armDeadline(first);
  } else {
    armDeadline(cfg().limits.handshakeTimeout);
  }
  startReading();
}

void Connection::reject(int status, const std::string& reason, const Headers& extra) {
  if (socketClosing_) return;
  state_.store(kClosing, std::memory_order_release);
  failed_ = true;
  std::string answer = buildErrorResponse(status, reason, extra);
  if (tls()) {
    // On a TLS server the answer goes through TLS like any other byte; before
    // the TLS handshake is done there is no channel to answer on: close.
    if (!tls()->handshakeDone() ||
        !tls()->write(reinterpret_cast<const uint8_t*>(answer.data()), answer.size())) {
      closeSocket();
      return;
    }
    writeTlsOutput();
  } else {
    outbox_.writeRaw(std::move(answer));
  }
  closeAfterWrite_ = true;
  armDeadline(cfg().closeTimeout);
  maybeShutdown();
}

void Connection::onTransportReady() {
  if (cfg().server) return;  // the server waits for the request
  state_.store(kHandshake, std::memory_order_release);
  hs_->clientKey = makeClientKey();
  std::string offer = cfg().deflate.enabled ? buildDeflateOffer(cfg().deflate) : std::string();
  writeHead(buildUpgradeRequest(cfg().hostHeader, cfg().target, hs_->clientKey, offer,
                                cfg().protocols, cfg().extraHeaders));
}

void Connection::handleHandshakeBytes(uint8_t* data, size_t len) {
  std::string& buf = hs_->buf;
  buf.append(reinterpret_cast<const char*>(data), len);
  // Waiting for the owner's verdict (reading is stopped; these came with
  // the head): kept for after the 101.
  if (hs_->verifying) return;
  // The head can only end in a chunk holding '\n': skip re-parsing the whole
  // buffer for bytes that cannot complete it (a trickling peer would make the
  // parse quadratic), unless it is already over the size limit.
  if (!std::memchr(data, '\n', len) && buf.size() <= cfg().limits.maxHeaderSize) return;
  size_t consumed = 0;
  std::string error;
  HttpParse r;
  if (cfg().server) {
    HttpRequest req;
    r = parseHttpRequest(buf.data(), buf.size(), cfg().limits.maxHeaderSize,
                         cfg().limits.maxHeaders, req, consumed, error);
    if (r == HttpParse::Incomplete) return;
    if (r == HttpParse::TooLarge) return reject(431, "Request header fields too large");
    if (r == HttpParse::Bad) return reject(400, error.empty() ? "Bad request" : error);
    serverHandshake(req);
  } else {
    HttpResponse res;
    // RFC 9110 §15.2: a client reads past interim responses (103 Early
    // Hints...) to the final one. They are skipped by offset and dropped
    // once, so many small ones in one read cost a parse each, not a move of
    // the rest. Together they may take maxHeaderSize, as one head may: a
    // server that sends only them used to keep a core busy until the start's
    // timeout.
    size_t skipped = 0;
    while (true) {
      r = parseHttpResponse(buf.data() + skipped, buf.size() - skipped, cfg().limits.maxHeaderSize,
                            cfg().limits.maxHeaders, res, consumed, error);
      if (r == HttpParse::Done && interimStatus(res.status)) {
        skipped += consumed;
        hs_->interimBytes += consumed;
        if (hs_->interimBytes > cfg().limits.maxHeaderSize) {
          failHandshake(0, "Interim (1xx) responses over maxHeaderSize (" +
                               std::to_string(cfg().limits.maxHeaderSize) + " bytes)");
          return;
        }
        continue;
      }
      buf.erase(0, skipped);
      break;
    }
    if (r == HttpParse::Incomplete) return;
    if (r != HttpParse::Done) {
      // TooLarge: the parser says which bound (its size or its count).
      if (r == HttpParse::TooLarge)
        failHandshake(0, "Response header too large: " + error + " (maxHeaderSize " +
                             std::to_string(cfg().limits.maxHeaderSize) + ", maxHeaders " +
                             std::to_string(cfg().limits.maxHeaders) + ")");
      else
        failHandshake(0, "Bad HTTP response: " + error);
      return;
    }
    clientHandshake(res);
  }
  hs_->consumed = consumed;
  if (state() == kOpen) feedRestOfHandshake();
}

void Connection::feedRestOfHandshake() {
  // Open (the owner has taken what it wanted): frames the peer sent right
  // behind its head go to the receiver, the rest of the handshake goes.
  std::string rest = hs_->buf.substr(hs_->consumed);
  hs_.reset();
  if (!rest.empty()) feedReceiver(reinterpret_cast<uint8_t*>(&rest[0]), rest.size());
}

std::shared_ptr<const PeerInfo> Connection::peerInfo() const {
  auto info = std::make_shared<PeerInfo>();
  struct sockaddr_storage sa;
  if (tcpInit_ && sock_.peerName(&sa)) {
    char name[64] = {0};
    if (sa.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&sa);
      uv_ip6_name(a, name, sizeof name);
      info->remotePort = ntohs(a->sin6_port);
    } else if (sa.ss_family == AF_INET) {
      auto* a = reinterpret_cast<sockaddr_in*>(&sa);
      uv_ip4_name(a, name, sizeof name);
      info->remotePort = ntohs(a->sin_port);
    }
    info->remoteAddress = name;
  }
  info->secure = tls() != nullptr;
  if (TlsSession* t = tls()) {
    info->tlsProtocol = t->protocolName();
    info->tlsCipher = t->cipherName();
    info->tlsResumed = t->resumed();
    info->peerCertificate = t->peerCertificatePem();
  }
  if (hs_) {
    info->protocol = hs_->protocol;
    info->extensions = hs_->extensions;
    info->offered = hs_->offered;
    info->origin = hs_->origin;
  }
  return info;
}

void Connection::serverHandshake(HttpRequest& req) {
  UpgradeVerdict v = validateUpgradeRequest(req);
  if (v.status != 0) return reject(v.status, v.reason);
  // Cross-site WebSocket hijacking: a browser always sends the page's
  // Origin (RFC 6455 §10.2); a server that names its origins refuses others
  // before any byte of the connection reaches the application.
  bool hasOrigin = req.get("Origin", hs_->origin);
  if (!cfg().allowedOrigins.empty() && hasOrigin) {
    bool allowed = false;
    for (const std::string& o : cfg().allowedOrigins) allowed = allowed || sameOrigin(o, hs_->origin);
    if (!allowed) return reject(403, "Forbidden: origin not allowed");
  }
  // §4.2.2: the first subprotocol of the client's offer this server speaks,
  // none when there is no match (the client decides whether that will do).
  std::string offer;
  if (req.get("Sec-WebSocket-Protocol", offer)) {
    if (!parseTokenList(offer, hs_->offered))
      return reject(400, "Bad Request: invalid Sec-WebSocket-Protocol");
    for (const std::string& p : hs_->offered) {
      bool ours = false;
      for (const std::string& q : cfg().protocols) ours = ours || p == q;
      if (ours) {
        hs_->protocol = p;
        break;
      }
    }
  }
  std::string extResponse;
  std::string offers;
  if (cfg().deflate.enabled && req.get("Sec-WebSocket-Extensions", offers)) {
    std::string error;
    DeflateParams params;
    if (negotiateDeflateServer(offers, cfg().deflate, params, extResponse, error)) {
      hs_->deflate = params;
      hs_->deflateOn = true;
    } else if (!error.empty()) {
      return reject(400, "Bad Sec-WebSocket-Extensions: " + error);
    }
  }
  req.get("Sec-WebSocket-Key", hs_->clientKey);
  hs_->extensions = std::move(extResponse);
  hs_->target = std::move(req.target);
  hs_->headers = std::move(req.headers);
  if (cfg().verifyClient) {
    // The owner decides before the 101 (the deadline armed at the accept,
    // handshakeTimeout, still runs). Nothing is read meanwhile.
    hs_->verifying = true;
    updateReading();
    Event ev;
    ev.type = EventType::Verify;
    ev.uri = hs_->target;
    ev.headers = hs_->headers;
    ev.peer = peerInfo();
    emit(std::move(ev));
    return;
  }
  finishUpgrade(Headers());
}

void Connection::answerVerify(const VerifyAnswer& a) {
  if (!hs_ || !hs_->verifying || socketClosing_ || failed_ || state() != kHandshake) return;
  hs_->verifying = false;
  if (!a.accept) {
    int status = a.status >= 400 && a.status <= 599 ? a.status : 401;
    return reject(status, a.message, a.headers);
  }
  if (a.chooseProtocol) {
    bool offered = a.protocol.empty();
    for (const std::string& p : hs_->offered) offered = offered || p == a.protocol;
    // The owner's facade checks this; a 101 naming it would fail the client.
    if (!offered) return reject(500, "Internal Server Error: subprotocol not offered");
    hs_->protocol = a.protocol;
  }
  finishUpgrade(a.headers);
  if (state() != kOpen) return;
  feedRestOfHandshake();
  updateReading();
}

void Connection::finishUpgrade(const Headers& extra) {
  std::shared_ptr<ConnectionOwner> owner = this->owner();
  if (!owner || !owner->onConnUpgrading(this)) return reject(503, "Too many connections");
  writeHead(buildUpgradeResponse(computeAcceptKey(hs_->clientKey), hs_->extensions, hs_->protocol,
                                 extra));
  becomeOpen();
}

void Connection::clientHandshake(HttpResponse& res) {
  hs_->responseStatus = res.status;
  std::string error;
  if (!validateUpgradeResponse(res, computeAcceptKey(hs_->clientKey), error)) {
    hs_->headers = std::move(res.headers);  // the owner may follow a Location
    failHandshake(res.status, error);
    return;
  }
  // §4.1: a subprotocol the client did not offer fails the connection.
  std::string proto;
  if (res.get("Sec-WebSocket-Protocol", proto)) {
    bool offered = false;
    for (const std::string& p : cfg().protocols) offered = offered || p == proto;
    if (!offered) {
      failHandshake(res.status, cfg().protocols.empty()
                                    ? "Server selected a subprotocol although none was offered: " + proto
                                    : "Server selected a subprotocol that was not offered: " + proto);
      return;
    }
    hs_->protocol = proto;
  }
  std::string ext;
  if (res.get("Sec-WebSocket-Extensions", ext) && !ext.empty()) {
    if (!cfg().deflate.enabled) {
      failHandshake(res.status, "Server accepted an extension that was not offered: " + ext);
      return;
    }
    DeflateParams params;
    if (!acceptDeflateResponse(ext, cfg().deflate, params, error)) {
      failHandshake(res.status, "Invalid Sec-WebSocket-Extensions response: " + error);
      return;
    }
    hs_->deflate = params;
    hs_->deflateOn = true;
    hs_->extensions = ext;
  }
  hs_->headers = std::move(res.headers);
  becomeOpen();
}

void Connection::becomeOpen() {
  disarmDeadline();
  const DeflateParams& p = hs_->deflate;
  int sendBits = 0;
  bool sendNoCtx = false;
  if (hs_->deflateOn) {
    // Each side compresses with its own window and takeover setting: we
    // inflate with the peer's, and deflate with ours.
    bool server = cfg().server;
    inflateBits_ = static_cast<uint8_t>(server ? p.clientMaxWindowBits : p.serverMaxWindowBits);
    inflateNoCtx_ = server ? p.clientNoContextTakeover : p.serverNoContextTakeover;
    sendBits = server ? p.serverMaxWindowBits : p.clientMaxWindowBits;
    sendNoCtx = server ? p.serverNoContextTakeover : p.clientNoContextTakeover;
  }
  wasOpen_ = true;
  int fd = -1;
  if (!tls()) fd = sock_.fd();
  outbox_.open(fd, sendBits, sendNoCtx);
  state_.store(kOpen, std::memory_order_release);
  startHeartbeat();
  flushHeld();  // the owner's events come after this connection's so far
  if (auto owner = this->owner()) owner->onConnOpen(this);
}

void Connection::failHandshake(int httpStatus, const std::string& error) {
  if (failed_) return;
  failed_ = true;
  state_.store(kClosing, std::memory_order_release);
  flushHeld();
  if (auto owner = this->owner()) owner->onConnFailed(this, httpStatus, error);
  closeSocket();
}

}  // namespace wsengine
