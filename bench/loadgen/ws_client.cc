#include "ws_client.h"

#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <strings.h>

#include <cstring>
#include <random>

namespace loadgen {

namespace {

// One read buffer for the whole (single-threaded) loop: every read is parsed
// before the next one is allocated.
uint8_t gReadBuf[256 * 1024];

struct WriteReq {
  uv_write_t req;
  std::vector<uint8_t> owned;
};

std::mt19937_64& rng() {
  static std::mt19937_64 r(std::random_device{}());
  return r;
}

std::string base64(const uint8_t* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), data, static_cast<int>(len));
  out.resize(n);
  return out;
}

}  // namespace

std::string wsAccept(const std::string& key) {
  std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  return base64(digest, sizeof digest);
}

// Value of header `name` in an HTTP head (case-insensitive name), or "".
std::string httpHeader(const std::string& head, const char* name) {
  size_t nameLen = std::strlen(name);
  size_t pos = head.find("\r\n");
  while (pos != std::string::npos && pos + 2 < head.size()) {
    size_t lineStart = pos + 2;
    size_t lineEnd = head.find("\r\n", lineStart);
    if (lineEnd == std::string::npos) lineEnd = head.size();
    if (lineEnd - lineStart > nameLen && head[lineStart + nameLen] == ':' &&
        strncasecmp(head.data() + lineStart, name, nameLen) == 0) {
      size_t v = lineStart + nameLen + 1;
      while (v < lineEnd && (head[v] == ' ' || head[v] == '\t')) ++v;
      size_t e = lineEnd;
      while (e > v && (head[e - 1] == ' ' || head[e - 1] == '\t')) --e;
      return head.substr(v, e - v);
    }
    pos = lineEnd;
  }
  return "";
}


std::vector<uint8_t> buildClientFrame(const uint8_t* data, size_t len, uint8_t opcode, bool rsv1) {
  std::vector<uint8_t> f(wsengine::kMaxFrameHeader + len);
  uint64_t r = rng()();
  uint8_t key[4];
  std::memcpy(key, &r, 4);
  size_t h = wsengine::writeFrameHeader(f.data(), true, rsv1, opcode, len, key);
  if (len) std::memcpy(f.data() + h, data, len);
  wsengine::applyMask(f.data() + h, len, key, 0);
  f.resize(h + len);
  return f;
}

bool resolveAddr(const Url& url, struct sockaddr_storage* out) {
  struct addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  struct addrinfo* res = nullptr;
  if (getaddrinfo(url.host.c_str(), std::to_string(url.port).c_str(), &hints, &res) != 0 || !res)
    return false;
  std::memcpy(out, res->ai_addr, res->ai_addrlen);
  freeaddrinfo(res);
  return true;
}

Conn::Conn(uv_loop_t* loop, const ClientConfig* cfg, ConnEvents* ev, int idx)
    : index(idx), loop_(loop), cfg_(cfg), ev_(ev) {
  tcp_.data = this;
  connectReq_.data = this;
}

Conn::~Conn() = default;

void Conn::connect(const struct sockaddr* addr) {
  ++attempts;
  uv_tcp_init(loop_, &tcp_);
  handleOpen_ = true;
  state_ = kConnecting;
  int rc = uv_tcp_connect(&connectReq_, &tcp_, addr, &Conn::onConnect);
  if (rc != 0) lost(uv_strerror(rc));
}

void Conn::onConnect(uv_connect_t* req, int status) {
  Conn* c = static_cast<Conn*>(req->data);
  if (c->state_ != kConnecting) return;
  if (status != 0) return c->lost(std::string("connect: ") + uv_strerror(status));
  uv_tcp_nodelay(&c->tcp_, 1);
  uint8_t raw[16];
  uint64_t a = rng()(), b = rng()();
  std::memcpy(raw, &a, 8);
  std::memcpy(raw + 8, &b, 8);
  c->key_ = base64(raw, 16);
  const Url& u = c->cfg_->url;
  std::string req_s = "GET " + u.path + " HTTP/1.1\r\nHost: " + u.host + ":" + std::to_string(u.port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + c->key_ +
                      "\r\nSec-WebSocket-Version: 13\r\n";
  if (c->cfg_->offerDeflate) req_s += std::string("Sec-WebSocket-Extensions: ") + kPmdOffer + "\r\n";
  req_s += "\r\n";
  c->state_ = kHandshake;
  c->writeOwned(std::vector<uint8_t>(req_s.begin(), req_s.end()));
  uv_read_start(reinterpret_cast<uv_stream_t*>(&c->tcp_), &Conn::onAlloc, &Conn::onRead);
}

void Conn::onAlloc(uv_handle_t*, size_t, uv_buf_t* buf) {
  buf->base = reinterpret_cast<char*>(gReadBuf);
  buf->len = sizeof gReadBuf;
}

void Conn::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  Conn* c = static_cast<Conn*>(s->data);
  if (nread < 0) return c->lost(nread == UV_EOF ? "closed by server" : uv_strerror(static_cast<int>(nread)));
  if (nread == 0) return;
  uint8_t* data = reinterpret_cast<uint8_t*>(buf->base);
  if (c->state_ == kHandshake) c->handshakeBytes(data, static_cast<size_t>(nread));
  else if (c->state_ == kOpen) c->frameBytes(data, static_cast<size_t>(nread));
  if (c->state_ == kOpen) c->ev_->onReadDone(*c);
}

void Conn::handshakeBytes(uint8_t* data, size_t len) {
  size_t before = head_.size();
  head_.append(reinterpret_cast<char*>(data), len);
  size_t end = head_.find("\r\n\r\n");
  if (end == std::string::npos) {
    if (head_.size() > 16384) lost("response head too large");
    return;
  }
  size_t consumed = end + 4 - before;  // bytes of this read that belong to the head
  head_.resize(end + 2);
  if (head_.compare(0, 12, "HTTP/1.1 101") != 0) return lost("handshake refused: " + head_.substr(0, head_.find('\r')));
  if (httpHeader(head_, "Sec-WebSocket-Accept") != wsAccept(key_)) return lost("bad Sec-WebSocket-Accept");
  std::string ext = httpHeader(head_, "Sec-WebSocket-Extensions");
  if (!ext.empty()) {
    if (!cfg_->offerDeflate) return lost("extension not offered: " + ext);
    pmd_ = parsePmdResponse(ext);
    if (!pmd_.accepted) return lost("unknown extension: " + ext);
    inflater_.reset(new Inflater());
    parser_.setAllowRsv1(true);
  }
  head_.clear();
  head_.shrink_to_fit();
  state_ = kOpen;
  everOpened_ = true;
  ev_->onOpen(*this);
  if (state_ == kOpen && consumed < len) frameBytes(data + consumed, len - consumed);
}

void Conn::frameBytes(uint8_t* data, size_t len) { parser_.feed(data, len, *this); }

bool Conn::onFrameHeader(const wsengine::FrameHeader& h) {
  frameOpcode_ = h.opcode;
  frameFin_ = h.fin;
  if (wsengine::isControl(h.opcode)) {
    ctrlBuf_.clear();
    return true;
  }
  if (h.opcode != wsengine::kContinuation) {
    msgBinary_ = h.opcode == wsengine::kBinary;
    msgCompressed_ = h.rsv1;
    msgLen_ = 0;
    msgBuf_.clear();
  }
  return true;
}

bool Conn::onFramePayload(uint8_t* data, size_t len) {
  if (!wsengine::isControl(frameOpcode_)) wireBytes += len;
  if (wsengine::isControl(frameOpcode_)) {
    ctrlBuf_.insert(ctrlBuf_.end(), data, data + len);
  } else if (msgCompressed_ || cfg_->collect) {
    msgBuf_.insert(msgBuf_.end(), data, data + len);
  } else if (cfg_->expect) {
    if (msgLen_ + len > cfg_->expectLen || std::memcmp(cfg_->expect + msgLen_, data, len) != 0)
      ++contentErrors;
  }
  msgLen_ += len;
  return true;
}

bool Conn::onFrameEnd() {
  if (frameOpcode_ == wsengine::kClose) {
    lost("close frame from server");
    return false;
  }
  if (frameOpcode_ == wsengine::kPing) {
    writeOwned(buildClientFrame(ctrlBuf_.data(), ctrlBuf_.size(), wsengine::kPong, false));
    return true;
  }
  if (wsengine::isControl(frameOpcode_) || !frameFin_) return true;
  ++messages;
  if (msgCompressed_) {
    if (!inflater_->inflateMessage(msgBuf_.data(), msgBuf_.size(), inflated_, pmd_.serverNoContextTakeover)) {
      lost("inflate failed");
      return false;
    }
    if (cfg_->expect && !cfg_->collect &&
        (inflated_.size() > cfg_->expectLen || std::memcmp(cfg_->expect, inflated_.data(), inflated_.size()) != 0))
      ++contentErrors;
    ev_->onMessage(*this, inflated_.data(), inflated_.size(), msgBinary_);
  } else if (cfg_->collect) {
    ev_->onMessage(*this, msgBuf_.data(), msgBuf_.size(), msgBinary_);
  } else {
    ev_->onMessage(*this, nullptr, msgLen_, msgBinary_);
  }
  return state_ == kOpen;
}

void Conn::onFrameError(int closeCode, const char* reason) {
  lost("protocol error " + std::to_string(closeCode) + ": " + reason);
}

void Conn::writeStatic(const uv_buf_t* bufs, unsigned n) {
  if (state_ != kOpen) return;
  WriteReq* w = new WriteReq();
  w->req.data = w;
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, n,
                    [](uv_write_t* r, int) { delete static_cast<WriteReq*>(r->data); });
  if (rc != 0) {
    delete w;
    lost(std::string("write: ") + uv_strerror(rc));
  }
}

void Conn::sendMessage(const uint8_t* data, size_t len, bool binary) {
  if (state_ != kOpen) return;
  writeOwned(buildClientFrame(data, len, binary ? wsengine::kBinary : wsengine::kText, false));
}

void Conn::writeOwned(std::vector<uint8_t>&& bytes) {
  WriteReq* w = new WriteReq();
  w->req.data = w;
  w->owned = std::move(bytes);
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(w->owned.data()), static_cast<unsigned>(w->owned.size()));
  int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &b, 1,
                    [](uv_write_t* r, int) { delete static_cast<WriteReq*>(r->data); });
  if (rc != 0) {
    delete w;
    lost(std::string("write: ") + uv_strerror(rc));
  }
}

void Conn::lost(const std::string& why) {
  if (state_ == kClosed) return;
  state_ = kClosed;
  if (handleOpen_) {
    handleOpen_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  }
  ev_->onLost(*this, why);
}

void Conn::close() {
  if (state_ == kClosed) return;
  state_ = kClosed;
  if (handleOpen_) {
    handleOpen_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), nullptr);
  }
}

ConnPool::ConnPool(uv_loop_t* loop, const ClientConfig& cfg, ConnEvents* mode)
    : loop_(loop), cfg_(cfg), mode_(mode) {
  uv_timer_init(loop_, &retryTimer_);
  retryTimer_.data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(&retryTimer_));
}

bool ConnPool::start(int count, int concurrency) {
  if (!resolveAddr(cfg_.url, &addr_)) {
    lastError = "cannot resolve " + cfg_.url.host;
    return false;
  }
  concurrency_ = concurrency;
  for (int i = 0; i < count; ++i) conns_.emplace_back(new Conn(loop_, &cfg_, this, i));
  pump();
  return true;
}

void ConnPool::pump() {
  while (inFlight_ < concurrency_ && next_ < static_cast<int>(conns_.size())) {
    ++inFlight_;
    conns_[next_++]->connect(reinterpret_cast<struct sockaddr*>(&addr_));
  }
}

void ConnPool::onOpen(Conn& c) {
  ++opened_;
  --inFlight_;
  pump();
  mode_->onOpen(c);
}

void ConnPool::onLost(Conn& c, const std::string& why) {
  if (c.everOpened()) {
    ++lost_;
    lastError = why;
    mode_->onLost(c, why);
    return;
  }
  --inFlight_;
  if (c.attempts < 3) {
    // A refused or reset connect under a burst: try again shortly.
    retry_.push_back(c.index);
    uv_timer_start(&retryTimer_, &ConnPool::onRetryTimer, 50, 0);
    ++inFlight_;  // the retry holds the slot
    return;
  }
  ++failed_;
  lastError = why;
  pump();
  mode_->onLost(c, why);
}

void ConnPool::onRetryTimer(uv_timer_t* t) {
  ConnPool* p = static_cast<ConnPool*>(t->data);
  std::vector<int> ids;
  ids.swap(p->retry_);
  for (int i : ids) {
    std::unique_ptr<Conn>& slot = p->conns_[i];
    int attempts = slot->attempts;
    p->dead_.push_back(std::move(slot));
    slot.reset(new Conn(p->loop_, &p->cfg_, p, i));
    slot->attempts = attempts;
    slot->connect(reinterpret_cast<struct sockaddr*>(&p->addr_));
  }
}

void ConnPool::closeAll() {
  for (auto& c : conns_) c->close();
  uv_close(reinterpret_cast<uv_handle_t*>(&retryTimer_), nullptr);
}

}  // namespace loadgen
