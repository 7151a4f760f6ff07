// flood-server mode: a minimal native WebSocket server that accepts one
// client and sends it binary messages as fast as the socket drains, so that
// the client's receive path is what limits the rate.
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "frame.h"
#include "modes.h"
#include "ws_client.h"

namespace loadgen {

namespace {

class FloodServer : public wsengine::FrameHandler {
 public:
  explicit FloodServer(const Options& o) : o_(o), loop_(mainLoop()) {
    // Pack whole frames into a chunk of at least 64 KiB: one write, many messages.
    std::vector<uint8_t> payload = makePayload(o.size, o.text);
    uint8_t hdr[wsengine::kMaxFrameHeader];
    size_t h = wsengine::writeFrameHeader(hdr, true, false, o.text ? wsengine::kText : wsengine::kBinary,
                                          payload.size(), nullptr);
    do {
      chunk_.insert(chunk_.end(), hdr, hdr + h);
      chunk_.insert(chunk_.end(), payload.begin(), payload.end());
      ++framesPerChunk_;
    } while (chunk_.size() < 64 * 1024);
  }

  int run() {
    uv_tcp_init(loop_, &server_);
    server_.data = this;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", o_.port, &addr);
    int rc = uv_tcp_bind(&server_, reinterpret_cast<struct sockaddr*>(&addr), 0);
    if (rc == 0) rc = uv_listen(reinterpret_cast<uv_stream_t*>(&server_), 16, &FloodServer::onConnection);
    if (rc != 0) {
      std::fprintf(stderr, "loadgen: listen: %s\n", uv_strerror(rc));
      return 2;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&server_, reinterpret_cast<struct sockaddr*>(&bound), &len);
    std::string j;
    jsonStr(j, "event", "listening");
    jsonNum(j, "port", ntohs(reinterpret_cast<struct sockaddr_in*>(&bound)->sin_port));
    printJson(j);
    uv_timer_init(loop_, &timeout_);
    timeout_.data = this;
    uv_timer_start(&timeout_, [](uv_timer_t* t) { static_cast<FloodServer*>(t->data)->finish("timeout"); },
                   static_cast<uint64_t>(o_.timeout * 1000), 0);
    uv_run(loop_, UV_RUN_DEFAULT);
    return 0;
  }

  bool onFrameHeader(const wsengine::FrameHeader& h) override {
    if (h.opcode == wsengine::kClose) sawClose_ = true;
    return true;
  }
  bool onFramePayload(uint8_t*, size_t) override { return true; }
  bool onFrameEnd() override {
    if (sawClose_) finish("client closed");
    return !sawClose_;
  }
  void onFrameError(int, const char* reason) override { finish(reason); }

 private:
  static void onConnection(uv_stream_t* s, int status) {
    FloodServer* self = static_cast<FloodServer*>(s->data);
    if (status != 0) return;
    if (self->hasClient_) {  // one client per run; refuse the rest
      uv_tcp_t* extra = new uv_tcp_t;
      uv_tcp_init(self->loop_, extra);
      if (uv_accept(s, reinterpret_cast<uv_stream_t*>(extra)) == 0) {}
      uv_close(reinterpret_cast<uv_handle_t*>(extra), [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      return;
    }
    uv_tcp_init(self->loop_, &self->client_);
    self->client_.data = self;
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&self->client_)) != 0) return;
    self->hasClient_ = true;
    uv_tcp_nodelay(&self->client_, 1);
    uv_read_start(reinterpret_cast<uv_stream_t*>(&self->client_),
                  [](uv_handle_t* h, size_t, uv_buf_t* b) {
                    FloodServer* me = static_cast<FloodServer*>(h->data);
                    b->base = me->readBuf_;
                    b->len = sizeof me->readBuf_;
                  },
                  &FloodServer::onRead);
  }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    FloodServer* self = static_cast<FloodServer*>(s->data);
    if (nread < 0) return self->finish(nread == UV_EOF ? "client disconnected" : uv_strerror(static_cast<int>(nread)));
    uint8_t* data = reinterpret_cast<uint8_t*>(buf->base);
    size_t len = static_cast<size_t>(nread);
    if (!self->upgraded_) {
      self->head_.append(buf->base, len);
      size_t end = self->head_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      std::string key = httpHeader(self->head_.substr(0, end + 2), "Sec-WebSocket-Key");
      if (key.empty()) return self->finish("no Sec-WebSocket-Key");
      // No extension accepted: the flood is plain frames.
      self->response_ = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        "Sec-WebSocket-Accept: " + wsAccept(key) + "\r\n\r\n";
      self->upgraded_ = true;
      uv_buf_t b = uv_buf_init(&self->response_[0], static_cast<unsigned>(self->response_.size()));
      self->writeBuf(b);
      self->t0_ = nowNs();
      self->cpu0_ = cpuSeconds();
      self->fill();
      return;
    }
    self->parser_.feed(data, len, *self);
  }

  void writeBuf(uv_buf_t b) {
    uv_write_t* w = new uv_write_t;
    w->data = this;
    ++pending_;
    int rc = uv_write(w, reinterpret_cast<uv_stream_t*>(&client_), &b, 1, [](uv_write_t* r, int status) {
      FloodServer* self = static_cast<FloodServer*>(r->data);
      delete r;
      --self->pending_;
      if (status == 0) self->fill();
    });
    if (rc != 0) {
      delete w;
      --pending_;
      finish(uv_strerror(rc));
    }
  }

  // Keeps two chunks queued: enough to never let the socket go idle.
  void fill() {
    while (!done_ && pending_ < 2) {
      writeBuf(uv_buf_init(reinterpret_cast<char*>(chunk_.data()), static_cast<unsigned>(chunk_.size())));
      messagesQueued_ += framesPerChunk_;
    }
  }

  void finish(const std::string& why) {
    if (done_) return;
    done_ = true;
    double secs = t0_ ? (nowNs() - t0_) / 1e9 : 0;
    std::string j;
    jsonStr(j, "mode", "flood-server");
    jsonStr(j, "end", why);
    jsonNum(j, "size", static_cast<double>(o_.size));
    jsonNum(j, "messages_queued", static_cast<double>(messagesQueued_));
    jsonNum(j, "seconds", secs);
    if (secs > 0) jsonNum(j, "loadgen_cpu", (cpuSeconds() - cpu0_) / secs);
    printJson(j);
    uv_stop(loop_);
  }

  Options o_;
  uv_loop_t* loop_;
  uv_tcp_t server_, client_;
  uv_timer_t timeout_;
  bool hasClient_ = false, upgraded_ = false, done_ = false, sawClose_ = false;
  std::string head_, response_;
  std::vector<uint8_t> chunk_;
  uint64_t framesPerChunk_ = 0, messagesQueued_ = 0, t0_ = 0;
  int pending_ = 0;
  double cpu0_ = 0;
  char readBuf_[64 * 1024];
  wsengine::FrameParser parser_{true};
};

}  // namespace

int runFloodServer(const Options& o) { return FloodServer(o).run(); }

}  // namespace loadgen
