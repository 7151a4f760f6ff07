// EventSink::pushAll: the events one socket read produces reach the sink
// together, in order, exact; a protocol violation pushes what preceded it
// before the close frame goes out; a connection's open comes before and its
// close after all of its data events. Raw loopback peers write many frames
// in one system call, so that one read of the engine holds several events.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

constexpr int kWaitMs = 3000;  // bound for what must arrive
constexpr int kQuietMs = 100;  // "nothing more arrives" window

int msLeft(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return d > 0 ? static_cast<int>(d) : 0;
}

// One event as the sink saw it, with the sink call that carried it.
struct Rec {
  EventType type = EventType::Open;
  uint64_t owner = 0;
  uint64_t conn = 0;
  std::string data;
  bool binary = false;
  std::string uri;
  int code = 0;
  std::string reason;
  bool remote = false;
  size_t call = 0;       // sink calls are numbered from 1, push and pushAll alike
  bool batched = false;  // came through pushAll
};

// Records every event in arrival order; pushAll is overridden (one lock per
// batch, as the addon's queue does) and each batch is checked to hold the
// events of one connection.
class RecordingSink : public EventSink {
 public:
  bool push(Event&& ev) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    add(std::move(ev), false);
    cv_.notify_all();
    return true;
  }

  bool pushAll(std::vector<Event>& evs) override {
    std::lock_guard<std::mutex> lock(mu_);
    ++calls_;
    ++pushAllCalls_;
    if (evs.empty()) ++emptyBatches_;
    for (auto& ev : evs) {
      if (ev.owner != evs.front().owner || ev.conn != evs.front().conn) ++mixedBatches_;
    }
    for (auto& ev : evs) add(std::move(ev), true);
    evs.clear();
    cv_.notify_all();
    return true;
  }

  // The events of one connection of one owner so far, in order.
  std::vector<Rec> of(uint64_t owner, uint64_t conn) {
    std::lock_guard<std::mutex> lock(mu_);
    return select(owner, conn);
  }

  // Waits until pred holds on the events of (owner, conn); returns them.
  bool waitFor(uint64_t owner, uint64_t conn, const std::function<bool(const std::vector<Rec>&)>& pred,
               std::vector<Rec>* out = nullptr) {
    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
    for (;;) {
      std::vector<Rec> v = select(owner, conn);
      if (pred(v)) {
        if (out) *out = std::move(v);
        return true;
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) {
        v = select(owner, conn);
        bool ok = pred(v);
        if (out) *out = std::move(v);
        return ok;
      }
    }
  }

  // The connection id of the open event for this request target.
  bool waitOpen(uint64_t owner, const std::string& uri, uint64_t* conn) {
    std::unique_lock<std::mutex> lock(mu_);
    auto found = [&] {
      for (auto& r : log_)
        if (r.owner == owner && r.type == EventType::Open && r.uri == uri) {
          *conn = r.conn;
          return true;
        }
      return false;
    };
    return cv_.wait_for(lock, std::chrono::milliseconds(kWaitMs), found);
  }

  size_t pushAllCalls() {
    std::lock_guard<std::mutex> lock(mu_);
    return pushAllCalls_;
  }
  size_t mixedBatches() {
    std::lock_guard<std::mutex> lock(mu_);
    return mixedBatches_;
  }
  size_t emptyBatches() {
    std::lock_guard<std::mutex> lock(mu_);
    return emptyBatches_;
  }

 private:
  void add(Event&& ev, bool batched) {
    Rec r;
    r.type = ev.type;
    r.owner = ev.owner;
    r.conn = ev.conn;
    r.data = std::move(ev.data);
    r.binary = ev.binary;
    r.uri = ev.uri;
    r.code = ev.code;
    r.reason = ev.reason;
    r.remote = ev.remote;
    r.call = calls_;
    r.batched = batched;
    log_.push_back(std::move(r));
  }

  std::vector<Rec> select(uint64_t owner, uint64_t conn) const {
    std::vector<Rec> v;
    for (auto& r : log_)
      if (r.owner == owner && r.conn == conn) v.push_back(r);
    return v;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Rec> log_;
  size_t calls_ = 0;
  size_t pushAllCalls_ = 0;
  size_t mixedBatches_ = 0;
  size_t emptyBatches_ = 0;
};

size_t count(const std::vector<Rec>& v, EventType t) {
  size_t n = 0;
  for (auto& r : v) n += r.type == t;
  return n;
}

const char* typeName(EventType t) {
  switch (t) {
    case EventType::Open: return "open";
    case EventType::Close: return "close";
    case EventType::Error: return "error";
    case EventType::Fragment: return "fragment";
    case EventType::Ping: return "ping";
    case EventType::Pong: return "pong";
    case EventType::Message: return "message";
  }
  return "?";
}

// "open,message,...": the order of types, for readable failures.
std::string types(const std::vector<Rec>& v) {
  std::string s;
  for (auto& r : v) s += (s.empty() ? "" : ",") + std::string(typeName(r.type));
  return s;
}

// A client frame: masked (RFC 6455 §5.3) with a key derived from `seed`.
std::string maskedFrame(uint8_t opcode, const std::string& payload, uint32_t seed, bool fin = true) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | opcode));
  size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((uint64_t(n) >> (8 * i)) & 0xFF));
  }
  uint8_t key[4];
  uint32_t x = seed * 2654435761u + 0x9E3779B9u;
  for (auto& k : key) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    k = static_cast<uint8_t>(x);
  }
  f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return f;
}

// A server frame: unmasked.
std::string plainFrame(uint8_t opcode, const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(n));
  } else {
    f.push_back(static_cast<char>(126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  }
  return f + payload;
}

std::string closePayload(int code, const std::string& reason) {
  std::string p;
  p.push_back(static_cast<char>(code >> 8));
  p.push_back(static_cast<char>(code & 0xFF));
  return p + reason;
}

// Distinct binary contents: the index in the first two bytes, then a pattern.
std::string binaryPayload(int i) {
  std::string s(2 + i % 41, '\0');
  s[0] = static_cast<char>(i >> 8);
  s[1] = static_cast<char>(i & 0xFF);
  for (size_t k = 2; k < s.size(); ++k) s[k] = static_cast<char>(i * 31 + k * 7);
  return s;
}

struct Frame {
  uint8_t opcode = 0;
  bool fin = false;
  bool masked = false;
  std::string payload;
};

// A plain TCP socket speaking WebSocket by hand, either side.
class Peer {
 public:
  Peer() = default;
  explicit Peer(int fd) : fd_(fd) {}
  ~Peer() {
    if (fd_ >= 0) ::close(fd_);
  }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  bool connect(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ < 0) return false;
    sockaddr_in sa;
    std::memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) return false;
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return true;
  }

  // The opening handshake, with `after` (frames) in the same write as the
  // request; true on a 101 with the right accept value.
  bool upgrade(int port, const std::string& target, const std::string& after = "") {
    if (!connect(port)) return false;
    // The key and its accept value are the example of RFC 6455, 1.3.
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    if (!writeAll(req + after)) return false;
    std::string head;
    if (!readHead(&head)) return false;
    return head.compare(0, 12, "HTTP/1.1 101") == 0 &&
           head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos;
  }

  // Reads up to and including the blank line ending an HTTP head.
  bool readHead(std::string* head) {
    auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!readSome(msLeft(deadline))) return false;
    }
    *head = in_.substr(0, end + 4);
    in_.erase(0, end + 4);
    return true;
  }

  // One system call when the socket takes it all (loopback, small writes).
  bool writeAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t w = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }

  bool readFrame(Frame* f, int ms = kWaitMs) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (!parse(f)) {
      if (!readSome(msLeft(deadline))) return false;
    }
    return true;
  }

  // True when the peer closed the connection within ms (pending bytes are dropped).
  bool waitEof(int ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, msLeft(deadline)) <= 0) return false;
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EINTR) return errno == ECONNRESET;
    }
  }

  // Closes our side: the server sees EOF and need not wait out its close timeout.
  void hangUp() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  int fd() const { return fd_; }

 private:
  bool readSome(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    return true;
  }

  bool parse(Frame* f) {
    if (in_.size() < 2) return false;
    uint8_t b0 = static_cast<uint8_t>(in_[0]), b1 = static_cast<uint8_t>(in_[1]);
    size_t hl = 2;
    uint64_t len = b1 & 0x7F;
    if (len == 126) {
      hl = 4;
      if (in_.size() < hl) return false;
      len = (uint64_t(uint8_t(in_[2])) << 8) | uint8_t(in_[3]);
    } else if (len == 127) {
      hl = 10;
      if (in_.size() < hl) return false;
      len = 0;
      for (int i = 2; i < 10; ++i) len = (len << 8) | uint8_t(in_[i]);
    }
    bool masked = (b1 & 0x80) != 0;
    size_t kl = masked ? 4 : 0;
    if (in_.size() < hl + kl + len) return false;
    f->opcode = b0 & 0x0F;
    f->fin = (b0 & 0x80) != 0;
    f->masked = masked;
    f->payload = in_.substr(hl + kl, static_cast<size_t>(len));
    if (masked)
      for (size_t i = 0; i < f->payload.size(); ++i) f->payload[i] ^= in_[hl + i % 4];
    in_.erase(0, hl + kl + static_cast<size_t>(len));
    return true;
  }

  int fd_ = -1;
  std::string in_;
};

int closeCode(const Frame& f) {
  if (f.payload.size() < 2) return 1005;
  return (uint8_t(f.payload[0]) << 8) | uint8_t(f.payload[1]);
}

// Reads frames until a close frame; the frames before it go to `before`.
bool readUntilClose(Peer& p, Frame* close, std::vector<Frame>* before = nullptr) {
  auto deadline = Clock::now() + std::chrono::milliseconds(kWaitMs);
  Frame f;
  while (p.readFrame(&f, msLeft(deadline))) {
    if (f.opcode == 0x8) {
      *close = f;
      return true;
    }
    if (before) before->push_back(f);
  }
  return false;
}

constexpr uint64_t kServerTag = 1;
constexpr uint64_t kClientTag = 2;

// 1. 300 small binary messages in one write: all arrive once, in order,
// exact; the read(s) that carried them reached the sink as batches.
void testManySmallInOneWrite(RecordingSink& sink, int port) {
  Peer p;
  uint64_t conn = 0;
  CHECK(p.upgrade(port, "/many"));
  CHECK(sink.waitOpen(kServerTag, "/many", &conn));
  const int kN = 300;
  std::vector<std::string> sent;
  std::string wire;
  for (int i = 0; i < kN; ++i) {
    sent.push_back(binaryPayload(i));
    wire += maskedFrame(0x2, sent.back(), static_cast<uint32_t>(i));
  }
  size_t callsBefore = sink.pushAllCalls();
  CHECK(p.writeAll(wire));
  std::vector<Rec> got;
  CHECK(sink.waitFor(kServerTag, conn,
                     [&](const std::vector<Rec>& v) { return count(v, EventType::Message) >= kN; },
                     &got));
  // Any duplicate or late event would show here.
  std::this_thread::sleep_for(std::chrono::milliseconds(kQuietMs));
  got = sink.of(kServerTag, conn);
  CHECK_EQ(got.size(), size_t(kN + 1));
  if (got.size() != size_t(kN + 1)) return;
  CHECK(got[0].type == EventType::Open);
  int wrong = 0;
  std::map<size_t, size_t> perCall;  // sink call -> events it carried
  size_t largest = 0;
  for (int i = 0; i < kN; ++i) {
    const Rec& r = got[i + 1];
    if (r.type != EventType::Message || !r.binary || r.data != sent[i]) {
      if (++wrong <= 3)
        std::fprintf(stderr, "message %d: type %s binary %d size %zu, want size %zu\n", i,
                     typeName(r.type), int(r.binary), r.data.size(), sent[i].size());
    }
    if (r.batched) largest = std::max(largest, ++perCall[r.call]);
  }
  CHECK_EQ(wrong, 0);
  // Batching works: some call carried several events of this one write.
  CHECK(largest > 1);
  CHECK(sink.pushAllCalls() > callsBefore);
  std::printf("300 messages in one write: %zu pushAll call(s), largest batch %zu\n",
              sink.pushAllCalls() - callsBefore, largest);
}

// 2. Valid messages, then a reserved opcode (3), in one write. The close
// frame 1002 leaves only after the valid messages were pushed; the close
// event follows them; the frame after the violation is never delivered.
void testViolationAfterMessages(RecordingSink& sink, int port) {
  Peer p;
  uint64_t conn = 0;
  CHECK(p.upgrade(port, "/violation"));
  CHECK(sink.waitOpen(kServerTag, "/violation", &conn));
  std::vector<std::string> sent = {"first", std::string("\x00\x01\x02", 3), "third",
                                   std::string(200, 'q'), "last before"};
  std::string wire;
  for (size_t i = 0; i < sent.size(); ++i)
    wire += maskedFrame(i % 2 ? 0x2 : 0x1, sent[i], static_cast<uint32_t>(100 + i));
  wire += maskedFrame(0x3, "reserved", 7);
  wire += maskedFrame(0x1, "after the violation", 8);
  CHECK(p.writeAll(wire));

  Frame close;
  std::vector<Frame> before;
  CHECK(readUntilClose(p, &close, &before));
  // Right after the close frame was read: the messages are already there.
  std::vector<Rec> atClose = sink.of(kServerTag, conn);
  CHECK(before.empty());
  CHECK_EQ(closeCode(close), 1002);
  CHECK_EQ(count(atClose, EventType::Message), sent.size());
  size_t m = 0;
  for (auto& r : atClose) {
    if (r.type != EventType::Message) continue;
    if (m < sent.size()) {
      CHECK(r.data == sent[m]);
      CHECK_EQ(r.binary, m % 2 == 1);
    }
    ++m;
  }
  // Answer the close and hang up: the connection's close event follows.
  CHECK(p.writeAll(maskedFrame(0x8, closePayload(1002, ""), 9)));
  CHECK(p.waitEof(kWaitMs));  // the server closes TCP first (§7.1.1)
  p.hangUp();
  std::vector<Rec> got;
  CHECK(sink.waitFor(kServerTag, conn,
                     [](const std::vector<Rec>& v) { return count(v, EventType::Close) > 0; }, &got));
  std::this_thread::sleep_for(std::chrono::milliseconds(kQuietMs));
  got = sink.of(kServerTag, conn);
  std::string want = "open";
  for (size_t i = 0; i < sent.size(); ++i) want += ",message";
  CHECK_EQ(types(got), want + ",close");
  if (!got.empty() && got.back().type == EventType::Close) {
    CHECK_EQ(got.back().code, 1002);
    CHECK(!got.back().remote);
  }
}

// 3. Messages, then the peer's close frame, in one write: the messages come
// before the close event; what follows the close frame is ignored (§5.5.1).
void testPeerCloseAfterMessages(RecordingSink& sink, int port) {
  Peer p;
  uint64_t conn = 0;
  CHECK(p.upgrade(port, "/peerclose"));
  CHECK(sink.waitOpen(kServerTag, "/peerclose", &conn));
  std::vector<std::string> sent;
  std::string wire;
  for (int i = 0; i < 40; ++i) {
    sent.push_back(binaryPayload(1000 + i));
    wire += maskedFrame(0x2, sent.back(), static_cast<uint32_t>(200 + i));
  }
  wire += maskedFrame(0x8, closePayload(4001, "bye"), 300);
  wire += maskedFrame(0x2, "after close", 301);
  CHECK(p.writeAll(wire));

  Frame echo;
  CHECK(readUntilClose(p, &echo));
  CHECK_EQ(closeCode(echo), 4001);
  CHECK(p.waitEof(kWaitMs));  // the server closes TCP first (§7.1.1)
  p.hangUp();
  std::vector<Rec> got;
  CHECK(sink.waitFor(kServerTag, conn,
                     [](const std::vector<Rec>& v) { return count(v, EventType::Close) > 0; }, &got));
  std::this_thread::sleep_for(std::chrono::milliseconds(kQuietMs));
  got = sink.of(kServerTag, conn);
  std::string want = "open";
  for (size_t i = 0; i < sent.size(); ++i) want += ",message";
  CHECK_EQ(types(got), want + ",close");
  if (got.size() == sent.size() + 2) {
    for (size_t i = 0; i < sent.size(); ++i) CHECK(got[i + 1].data == sent[i]);
    CHECK_EQ(got.back().code, 4001);
    CHECK_EQ(got.back().reason, std::string("bye"));
    CHECK(got.back().remote);
  }
}

// 4. Frames in the same write as the upgrade request: the open event comes
// first, then every data and control event in wire order.
void testFramesWithUpgrade(RecordingSink& sink, int port) {
  std::vector<std::string> sent;
  std::string wire;
  for (int i = 0; i < 20; ++i) {
    sent.push_back(binaryPayload(2000 + i));
    wire += maskedFrame(0x2, sent.back(), static_cast<uint32_t>(400 + i));
    if (i == 9) wire += maskedFrame(0x9, std::string("\xFF\xFE ping", 7), 450);
  }
  // A fragmented text message to end with: fragment then message events.
  wire += maskedFrame(0x1, "frag-one ", 460, false);
  wire += maskedFrame(0x0, "frag-two", 461, true);
  Peer p;
  CHECK(p.upgrade(port, "/early", wire));
  uint64_t conn = 0;
  CHECK(sink.waitOpen(kServerTag, "/early", &conn));
  Frame pong;
  CHECK(p.readFrame(&pong));
  CHECK_EQ(int(pong.opcode), 0xA);
  CHECK(pong.payload == std::string("\xFF\xFE ping", 7));

  std::vector<Rec> got;
  CHECK(sink.waitFor(kServerTag, conn,
                     [&](const std::vector<Rec>& v) {
                       return count(v, EventType::Message) >= sent.size() + 1;
                     },
                     &got));
  std::this_thread::sleep_for(std::chrono::milliseconds(kQuietMs));
  got = sink.of(kServerTag, conn);
  std::string want = "open";
  for (int i = 0; i < 20; ++i) want += i == 9 ? ",message,ping" : ",message";
  want += ",fragment,message";
  CHECK_EQ(types(got), want);
  if (types(got) == want) {
    CHECK_EQ(got[0].uri, std::string("/early"));
    size_t k = 1;
    for (int i = 0; i < 20; ++i) {
      CHECK(got[k++].data == sent[i]);
      if (i == 9) {
        CHECK(got[k].data == std::string("\xFF\xFE ping", 7));
        CHECK(got[k].binary);  // not valid UTF-8
        ++k;
      }
    }
    CHECK_EQ(got[k].data, std::string("frag-one "));
    CHECK_EQ(got[k + 1].data, std::string("frag-one frag-two"));  // the whole message
    CHECK(!got[k + 1].binary);
  }
}

// RFC 6455 §4.2.2: base64(SHA-1(key + GUID)).
std::string acceptFor(const std::string& key) {
  std::string s = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), digest);
  unsigned char out[64];
  int n = EVP_EncodeBlock(out, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

// 5. The client side: a raw server writes its 101 response and frames in one
// write. Our client's open event comes before the messages.
void testClientFramesWithResponse(const std::shared_ptr<RecordingSink>& sinkPtr) {
  RecordingSink& sink = *sinkPtr;
  int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
  CHECK(lfd >= 0);
  if (lfd < 0) return;
  sockaddr_in sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = 0;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t sl = sizeof sa;
  bool ok = ::bind(lfd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 && ::listen(lfd, 4) == 0 &&
            ::getsockname(lfd, reinterpret_cast<sockaddr*>(&sa), &sl) == 0;
  CHECK(ok);
  if (!ok) {
    ::close(lfd);
    return;
  }
  int port = ntohs(sa.sin_port);

  Client client(sinkPtr, kClientTag);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(port) + "/c";
  co.enableAutomaticReconnection = false;
  co.deflate.enabled = false;
  co.closeTimeout = 0.2;
  client.start(co, [](ConnectResult) {});

  pollfd pl{lfd, POLLIN, 0};
  int fd = ::poll(&pl, 1, kWaitMs) == 1 ? ::accept(lfd, nullptr, nullptr) : -1;
  ::close(lfd);
  CHECK(fd >= 0);
  if (fd < 0) {
    client.clear();
    return;
  }
  Peer srv(fd);
  std::string head;
  CHECK(srv.readHead(&head));
  std::string key;
  const std::string name = "Sec-WebSocket-Key: ";
  size_t at = head.find(name);
  CHECK(at != std::string::npos);
  if (at != std::string::npos) key = head.substr(at + name.size(), head.find("\r\n", at) - at - name.size());

  std::vector<std::string> sent;
  std::string wire = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Accept: " + acceptFor(key) + "\r\n\r\n";
  for (int i = 0; i < 50; ++i) {
    sent.push_back(binaryPayload(3000 + i));
    wire += plainFrame(0x2, sent.back());
  }
  CHECK(srv.writeAll(wire));

  std::vector<Rec> got;
  CHECK(sink.waitFor(kClientTag, 0,
                     [&](const std::vector<Rec>& v) { return count(v, EventType::Message) >= sent.size(); },
                     &got));
  std::string want = "open";
  for (size_t i = 0; i < sent.size(); ++i) want += ",message";
  CHECK_EQ(types(got), want);
  if (types(got) == want)
    for (size_t i = 0; i < sent.size(); ++i) CHECK(got[i + 1].data == sent[i]);

  // Then the server closes: the client's close event is the last one.
  CHECK(srv.writeAll(plainFrame(0x8, closePayload(1000, "done"))));
  Frame echo;
  CHECK(srv.readFrame(&echo));
  CHECK_EQ(int(echo.opcode), 0x8);
  CHECK(echo.masked);
  ::shutdown(srv.fd(), SHUT_RDWR);
  CHECK(sink.waitFor(kClientTag, 0,
                     [](const std::vector<Rec>& v) { return count(v, EventType::Close) > 0; }, &got));
  std::this_thread::sleep_for(std::chrono::milliseconds(kQuietMs));
  got = sink.of(kClientTag, 0);
  CHECK_EQ(types(got), want + ",close");
  client.clear();
}

}  // namespace

int main() {
  auto sink = std::make_shared<RecordingSink>();
  {
    Server server(sink, kServerTag);
    ServerOptions so;
    so.port = 0;
    so.deflate.enabled = false;
    StartResult sr = server.start(so);
    CHECK(sr.success);
    if (sr.success) {
      testManySmallInOneWrite(*sink, sr.port);
      testViolationAfterMessages(*sink, sr.port);
      testPeerCloseAfterMessages(*sink, sr.port);
      testFramesWithUpgrade(*sink, sr.port);
    }
    server.clear();
    testClientFramesWithResponse(sink);
  }
  CHECK_EQ(sink->mixedBatches(), size_t(0));  // one batch, one connection
  CHECK_EQ(sink->emptyBatches(), size_t(0));
  // Let the IO thread finish closing before exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
