// A minimal, allocation-light WebSocket client connection for load
// generation: one libuv TCP handle, the opening handshake, the engine's frame
// parser for what the server sends, and writes of caller-owned frames.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "frame.h"
#include "pmd.h"

namespace loadgen {

class Conn;

// What a mode does with its connections. Called on the loop thread.
class ConnEvents {
 public:
  virtual ~ConnEvents() = default;
  virtual void onOpen(Conn& c) = 0;
  // A whole message. data is null when the pool does not collect payloads
  // (then the bytes were checked against ClientConfig::expect on the fly).
  virtual void onMessage(Conn& c, const uint8_t* data, size_t len, bool binary) = 0;
  // After each read callback's bytes are parsed: the place to batch writes.
  virtual void onReadDone(Conn&) {}
  // Connection lost or never opened (after retries); why is a short reason.
  virtual void onLost(Conn& c, const std::string& why) = 0;
};

struct ClientConfig {
  Url url;
  bool offerDeflate = false;
  bool collect = false;              // keep each payload whole for onMessage
  const uint8_t* expect = nullptr;   // else compare payload bytes to this pattern
  size_t expectLen = 0;
};

class Conn : public wsengine::FrameHandler {
 public:
  Conn(uv_loop_t* loop, const ClientConfig* cfg, ConnEvents* ev, int index);
  ~Conn() override;

  void connect(const struct sockaddr* addr);
  // The bytes must stay valid until the write completes (static frames).
  void writeStatic(const uv_buf_t* bufs, unsigned n);
  // Masks and frames a payload the connection owns until written.
  void sendMessage(const uint8_t* data, size_t len, bool binary);
  // Drops the socket at once (the run is over; no close handshake).
  void close();

  const int index;
  bool isOpen() const { return state_ == kOpen; }
  bool everOpened() const { return everOpened_; }
  const PmdParams& pmd() const { return pmd_; }
  uint64_t contentErrors = 0;   // payload bytes or lengths that differ from the pattern
  uint64_t messages = 0;        // whole messages received
  uint64_t wireBytes = 0;       // data frame payload bytes as received (compressed or not)
  uint64_t userCounter = 0;     // free for the mode
  uint64_t userCounter2 = 0;
  int attempts = 0;

  // FrameHandler
  bool onFrameHeader(const wsengine::FrameHeader& h) override;
  bool onFramePayload(uint8_t* data, size_t len) override;
  bool onFrameEnd() override;
  void onFrameError(int closeCode, const char* reason) override;

 private:
  enum State { kIdle, kConnecting, kHandshake, kOpen, kClosed };
  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onClose(uv_handle_t* h);
  void handshakeBytes(uint8_t* data, size_t len);
  void frameBytes(uint8_t* data, size_t len);
  void lost(const std::string& why);
  void writeOwned(std::vector<uint8_t>&& bytes);

  uv_loop_t* loop_;
  const ClientConfig* cfg_;
  ConnEvents* ev_;
  uv_tcp_t tcp_;
  uv_connect_t connectReq_;
  State state_ = kIdle;
  bool handleOpen_ = false;
  bool everOpened_ = false;
  std::string key_;
  std::string head_;  // response head being read
  PmdParams pmd_;
  std::unique_ptr<Inflater> inflater_;
  wsengine::FrameParser parser_{false};
  // current frame / message
  uint8_t frameOpcode_ = 0;
  bool frameFin_ = false;
  bool msgBinary_ = false;
  bool msgCompressed_ = false;
  uint64_t msgLen_ = 0;
  std::vector<uint8_t> msgBuf_;
  std::vector<uint8_t> ctrlBuf_;
  std::vector<uint8_t> inflated_;
};

// Builds a masked client frame around payload (random mask key).
std::vector<uint8_t> buildClientFrame(const uint8_t* data, size_t len, uint8_t opcode, bool rsv1);

// Sec-WebSocket-Accept for a key (RFC 6455 4.2.2).
std::string wsAccept(const std::string& key);
// Value of header `name` (case-insensitive) in an HTTP head, or "".
std::string httpHeader(const std::string& head, const char* name);

// Resolves host:port (numeric or by name) synchronously; false on failure.
bool resolveAddr(const Url& url, struct sockaddr_storage* out);

// Opens `count` connections with at most `concurrency` handshakes in flight,
// retrying a failed connect up to 3 times, and forwards the connections'
// events to the mode (onLost only for connections that had opened).
class ConnPool : public ConnEvents {
 public:
  ConnPool(uv_loop_t* loop, const ClientConfig& cfg, ConnEvents* mode);
  bool start(int count, int concurrency);
  void closeAll();
  const std::vector<std::unique_ptr<Conn>>& conns() const { return conns_; }
  int opened() const { return opened_; }
  int failed() const { return failed_; }
  int lost() const { return lost_; }
  bool allSettled() const { return opened_ + failed_ == static_cast<int>(conns_.size()); }
  std::string lastError;

  void onOpen(Conn& c) override;
  void onMessage(Conn& c, const uint8_t* data, size_t len, bool binary) override {
    mode_->onMessage(c, data, len, binary);
  }
  void onReadDone(Conn& c) override { mode_->onReadDone(c); }
  void onLost(Conn& c, const std::string& why) override;

 private:
  void pump();
  static void onRetryTimer(uv_timer_t* t);
  uv_loop_t* loop_;
  ClientConfig cfg_;
  ConnEvents* mode_;
  struct sockaddr_storage addr_;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<std::unique_ptr<Conn>> dead_;  // failed attempts, kept until their handles close
  std::vector<int> retry_;                   // indices waiting for another attempt
  uv_timer_t retryTimer_;
  int next_ = 0;
  int inFlight_ = 0;
  int concurrency_ = 1;
  int opened_ = 0;
  int failed_ = 0;
  int lost_ = 0;
};

}  // namespace loadgen
