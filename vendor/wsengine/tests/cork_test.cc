// cork(passThrough)/uncork(): when a server send reaches the socket. Raw TCP
// peers on loopback read the frames, so the test sees exactly what was on the
// wire before and after uncork(). The engine runs one IO thread, and the sink
// can hold it: while it is held, only the calling thread can write, so a
// frame that arrives then was written by the caller (not handed to the loop);
// once it is free again, "nothing arrives" also rules out a hand-off to it.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
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

constexpr int kQuietMs = 100;     // "nothing arrives" window
constexpr int kArriveMs = 2000;   // bound for what must arrive
constexpr int kPeers = 7;

int msLeft(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return d > 0 ? static_cast<int>(d) : 0;
}

// Records open events by request target; holds the IO thread on a "hold"
// message until release() (bounded, so a failing test cannot hang).
class GateSink : public EventSink {
 public:
  bool push(Event&& ev) override {
    std::unique_lock<std::mutex> lock(mu_);
    if (ev.type == EventType::Open) {
      opens_[ev.uri] = ev.conn;
      cv_.notify_all();
    } else if (ev.type == EventType::Message && ev.data == "hold") {
      held_ = true;
      released_ = false;  // a late release() of an earlier hold must not count
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return released_; });
      held_ = false;
      cv_.notify_all();
    }
    return true;
  }
  bool waitOpen(const std::string& uri, uint64_t* conn) {
    std::unique_lock<std::mutex> lock(mu_);
    bool ok = cv_.wait_for(lock, std::chrono::milliseconds(kArriveMs),
                           [&] { return opens_.count(uri) != 0; });
    if (ok) *conn = opens_[uri];
    return ok;
  }
  bool waitHeld() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::milliseconds(kArriveMs), [this] { return held_; });
  }
  // Lets the IO thread go and waits until it has left the sink.
  bool release() {
    std::unique_lock<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
    return cv_.wait_for(lock, std::chrono::milliseconds(kArriveMs), [this] { return !held_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, uint64_t> opens_;
  bool held_ = false;
  bool released_ = false;
};

struct Frame {
  uint8_t opcode = 0;
  std::string payload;
};

// A WebSocket client on a plain socket: it does the opening handshake itself
// and parses what the server writes, byte for byte.
class Peer {
 public:
  ~Peer() {
    if (fd_ >= 0) ::close(fd_);
  }

  bool connect(int port, const std::string& target) {
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
    // The key and its accept value are the example of RFC 6455, 1.3.
    std::string req = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                      "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      "Sec-WebSocket-Version: 13\r\n\r\n";
    if (!writeAll(req)) return false;
    auto deadline = Clock::now() + std::chrono::milliseconds(kArriveMs);
    size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
      if (!readSome(msLeft(deadline))) return false;
    }
    std::string head = in_.substr(0, end + 4);
    in_.erase(0, end + 4);
    open_ = true;
    parse();
    return head.compare(0, 12, "HTTP/1.1 101") == 0 &&
           head.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos;
  }

  // Reads until at least n frames are parsed or ms pass.
  bool waitFrames(size_t n, int ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (frames_.size() < n && !bad_) {
      if (!readSome(msLeft(deadline))) return false;
    }
    return frames_.size() >= n;
  }

  // True when no byte is pending and none arrives within ms.
  bool nothingArrives(int ms) {
    if (!frames_.empty() || !in_.empty()) return false;
    pollfd p{fd_, POLLIN, 0};
    return ::poll(&p, 1, ms) == 0;
  }

  std::vector<Frame> take() {
    std::vector<Frame> out;
    out.swap(frames_);
    return out;
  }

  // A masked text frame (client to server), payload < 126 bytes.
  bool sendText(const std::string& s) {
    const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    std::string f;
    f.push_back(static_cast<char>(0x81));
    f.push_back(static_cast<char>(0x80 | s.size()));
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < s.size(); ++i) f.push_back(static_cast<char>(s[i] ^ mask[i % 4]));
    return writeAll(f);
  }

  // The server sent something that is not one whole unmasked frame.
  bool bad() const { return bad_; }

 private:
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

  bool readSome(int ms) {
    pollfd p{fd_, POLLIN, 0};
    int rc = ::poll(&p, 1, ms);
    if (rc <= 0) return false;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<size_t>(n));
    parse();
    return true;
  }

  void parse() {
    if (!open_) return;  // still reading the HTTP response head
    for (;;) {
      if (in_.size() < 2) return;
      uint8_t b0 = static_cast<uint8_t>(in_[0]), b1 = static_cast<uint8_t>(in_[1]);
      if (!(b0 & 0x80) || (b1 & 0x80)) bad_ = true;  // fragment or masked: not expected
      size_t hl = 2;
      uint64_t len = b1 & 0x7F;
      if (len == 126) {
        hl = 4;
        if (in_.size() < hl) return;
        len = (uint64_t(uint8_t(in_[2])) << 8) | uint8_t(in_[3]);
      } else if (len == 127) {
        hl = 10;
        if (in_.size() < hl) return;
        len = 0;
        for (int i = 2; i < 10; ++i) len = (len << 8) | uint8_t(in_[i]);
      }
      if (in_.size() < hl + len) return;
      Frame f;
      f.opcode = b0 & 0x0F;
      f.payload = in_.substr(hl, static_cast<size_t>(len));
      frames_.push_back(std::move(f));
      in_.erase(0, hl + static_cast<size_t>(len));
    }
  }

  int fd_ = -1;
  bool open_ = false;
  std::string in_;
  std::vector<Frame> frames_;
  bool bad_ = false;
};

struct Fixture {
  std::shared_ptr<GateSink> sink = std::make_shared<GateSink>();
  Server server{sink, 1};
  std::vector<std::unique_ptr<Peer>> peers;
  std::vector<uint64_t> conns;
  Peer holder;  // its "hold" messages stop the IO thread in the sink
  bool ready = false;

  Fixture() {
    ServerOptions so;
    so.port = 0;
    so.deflate.enabled = false;  // the plain path: direct and zero-copy writes
    StartResult sr = server.start(so);
    CHECK(sr.success);
    if (!sr.success) return;
    uint64_t id = 0;
    bool ok = holder.connect(sr.port, "/holder") && sink->waitOpen("/holder", &id);
    CHECK(ok);
    for (int i = 0; ok && i < kPeers; ++i) {
      std::string target = "/p" + std::to_string(i);
      peers.emplace_back(new Peer);
      ok = peers.back()->connect(sr.port, target) && sink->waitOpen(target, &id);
      CHECK(ok);
      conns.push_back(id);
    }
    ready = ok;
  }
  ~Fixture() { server.clear(); }

  SendResult send(int peer, const std::string& payload) {
    std::vector<uint64_t> to{conns[peer]};
    auto r = server.send(&to, reinterpret_cast<const uint8_t*>(payload.data()), payload.size(),
                         true);
    return r.size() == 1 ? r[0] : SendResult();
  }

  bool hold() { return holder.sendText("hold") && sink->waitHeld(); }
  bool release() { return sink->release(); }

  // Between cases: every write is done (the handshake response too), so each
  // socket is idle as the engine sees it.
  void settle() {
    auto deadline = Clock::now() + std::chrono::milliseconds(kArriveMs);
    for (uint64_t c : conns)
      while (server.bufferedAmount(c) != 0 && Clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
};

// What the peer received so far, in order (all binary, all whole frames).
std::vector<std::string> payloads(Peer& p) {
  std::vector<std::string> out;
  for (auto& f : p.take()) {
    CHECK_EQ(int(f.opcode), 2);
    out.push_back(std::move(f.payload));
  }
  CHECK(!p.bad());
  return out;
}

using Strings = std::vector<std::string>;

std::string joined(const Strings& v) {
  std::string s;
  for (auto& x : v) s += (s.empty() ? "" : ",") + (x.size() > 40 ? std::to_string(x.size()) + "B" : x);
  return "[" + s + "]";
}

#define CHECK_FRAMES(got, want) CHECK_EQ(joined(got), joined(want))

// 1. Not corked: a small send to an idle connection is written by the caller.
void testUncorked(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  CHECK(fx.hold());
  Strings sent;
  for (int k = 0; k < 3; ++k) {
    sent.push_back("u" + std::to_string(k));
    SendResult r = fx.send(0, sent.back());
    CHECK(r.success);
    CHECK_EQ(r.bufferedAmount, uint64_t(0));  // nothing left for the IO thread
    // The IO thread is held: only the caller can have written it.
    CHECK(p.waitFrames(k + 1, kArriveMs));
  }
  CHECK(fx.release());
  CHECK_FRAMES(payloads(p), sent);
  CHECK(p.nothingArrives(0));
}

// 2. cork(0): nothing is written before uncork(); then all, in order.
void testCorkZero(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  const int kN = 10;
  Strings sent;
  uint64_t wire = 0;
  cork(0);
  for (int k = 0; k < kN; ++k) {
    sent.push_back("corked-" + std::to_string(k));
    SendResult r = fx.send(0, sent.back());
    CHECK(r.success);
    wire += 2 + sent.back().size();
    CHECK_EQ(r.bufferedAmount, wire);  // queued, whole frames
  }
  // The IO thread is free: had a frame been handed to it, it would show.
  CHECK(p.nothingArrives(kQuietMs));
  uncork();
  CHECK(p.waitFrames(kN, kArriveMs));
  CHECK_FRAMES(payloads(p), sent);
  CHECK(p.nothingArrives(0));
}

// 3. cork(3), one send to each of 5 connections: the first 3 are written at
// once (by the caller), the other 2 at uncork().
void testPassThroughAcross(Fixture& fx) {
  fx.settle();
  CHECK(fx.hold());
  cork(3);
  for (int i = 0; i < 5; ++i) CHECK(fx.send(i, "pt-" + std::to_string(i)).success);
  for (int i = 0; i < 3; ++i) {
    CHECK(fx.peers[i]->waitFrames(1, kArriveMs));
    CHECK_FRAMES(payloads(*fx.peers[i]), Strings{"pt-" + std::to_string(i)});
  }
  CHECK(fx.release());
  for (int i = 3; i < 5; ++i) CHECK(fx.peers[i]->nothingArrives(kQuietMs));
  uncork();
  for (int i = 0; i < 5; ++i) {
    if (i >= 3) {
      CHECK(fx.peers[i]->waitFrames(1, kArriveMs));
      CHECK_FRAMES(payloads(*fx.peers[i]), Strings{"pt-" + std::to_string(i)});
    }
    CHECK(fx.peers[i]->nothingArrives(0));
  }
}

// 4. cork(2), 5 sends to one connection. Each of the first two finds the
// socket idle (the one before went out whole), so both are written at once;
// the rest queue behind them and leave at uncork(), in order, none lost.
void testPassThroughOneConn(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  CHECK(fx.hold());
  cork(2);
  Strings sent;
  for (int k = 0; k < 5; ++k) {
    sent.push_back("one-" + std::to_string(k));
    CHECK(fx.send(0, sent.back()).success);
  }
  CHECK(p.waitFrames(2, kArriveMs));
  Strings before = payloads(p);
  CHECK(fx.release());
  CHECK(p.nothingArrives(kQuietMs));
  uncork();
  CHECK(p.waitFrames(3, kArriveMs));
  Strings after = payloads(p);
  CHECK_FRAMES(before, Strings(sent.begin(), sent.begin() + 2));
  CHECK_FRAMES(after, Strings(sent.begin() + 2, sent.end()));
  CHECK(p.nothingArrives(0));
}

// 4b. A pass-through left over must not let a small frame overtake one that
// is queued on the same connection: a large broadcast frame (shared, so it
// queues while corked), then a small frame to one of its targets.
void testNoOvertake(Fixture& fx) {
  fx.settle();
  std::string big(40000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('A' + i % 23);
  cork(2);
  std::vector<uint64_t> both{fx.conns[0], fx.conns[1]};
  auto rs = fx.server.send(&both, reinterpret_cast<const uint8_t*>(big.data()), big.size(), true);
  CHECK_EQ(rs.size(), size_t(2));
  for (auto& r : rs) CHECK(r.success);
  CHECK(fx.send(0, "after-big").success);
  // Nothing passed through yet: the next idle connection still gets one.
  CHECK(fx.send(2, "idle").success);
  CHECK(fx.peers[2]->waitFrames(1, kArriveMs));
  CHECK_FRAMES(payloads(*fx.peers[2]), Strings{"idle"});
  CHECK(fx.peers[0]->nothingArrives(kQuietMs));
  CHECK(fx.peers[1]->nothingArrives(0));
  uncork();
  CHECK(fx.peers[0]->waitFrames(2, kArriveMs));
  CHECK(fx.peers[1]->waitFrames(1, kArriveMs));
  Strings got0 = payloads(*fx.peers[0]), got1 = payloads(*fx.peers[1]);
  CHECK_FRAMES(got0, (Strings{big, "after-big"}));
  CHECK(got0.size() == 2 && got0[0] == big);
  CHECK(got1.size() == 1 && got1[0] == big);
  for (int i = 0; i < 3; ++i) CHECK(fx.peers[i]->nothingArrives(0));
}

// 5. Nested corks: the outermost passThrough applies, and only the outermost
// uncork() writes.
void testNested(Fixture& fx) {
  fx.settle();
  CHECK(fx.hold());
  cork(5);
  cork(0);
  for (int i = 0; i < kPeers; ++i) CHECK(fx.send(i, "n-" + std::to_string(i)).success);
  for (int i = 0; i < 5; ++i) {
    CHECK(fx.peers[i]->waitFrames(1, kArriveMs));
    CHECK_FRAMES(payloads(*fx.peers[i]), Strings{"n-" + std::to_string(i)});
  }
  CHECK(fx.release());
  for (int i = 5; i < kPeers; ++i) CHECK(fx.peers[i]->nothingArrives(kQuietMs));
  uncork();  // inner: writes nothing
  for (int i = 5; i < kPeers; ++i) CHECK(fx.peers[i]->nothingArrives(kQuietMs));
  uncork();
  for (int i = 0; i < kPeers; ++i) {
    if (i >= 5) {
      CHECK(fx.peers[i]->waitFrames(1, kArriveMs));
      CHECK_FRAMES(payloads(*fx.peers[i]), Strings{"n-" + std::to_string(i)});
    }
    CHECK(fx.peers[i]->nothingArrives(0));
  }

  // The other way round: an inner passThrough does not open an outer cork(0).
  fx.settle();
  cork(0);
  cork(5);
  CHECK(fx.send(0, "inner-pass").success);
  CHECK(fx.peers[0]->nothingArrives(kQuietMs));
  uncork();
  CHECK(fx.peers[0]->nothingArrives(kQuietMs));
  uncork();
  CHECK(fx.peers[0]->waitFrames(1, kArriveMs));
  CHECK_FRAMES(payloads(*fx.peers[0]), Strings{"inner-pass"});
}

// 6. A large frame (over 16 KiB) to an idle socket leaves at once even while
// corked; a small one after it on the same connection waits for uncork().
void testLargeWhileCorked(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  std::string big(40000, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
  CHECK(fx.hold());
  cork(0);
  SendResult r = fx.send(0, big);
  CHECK(r.success);
  CHECK_EQ(r.bufferedAmount, uint64_t(0));  // the socket took all of it
  CHECK(p.waitFrames(1, kArriveMs));        // IO thread held: the caller wrote it
  CHECK(fx.release());
  CHECK(fx.send(0, "small-after").success);
  Strings before = payloads(p);
  CHECK(before.size() == 1 && before[0] == big);
  CHECK(p.nothingArrives(kQuietMs));
  uncork();
  CHECK(p.waitFrames(1, kArriveMs));
  CHECK_FRAMES(payloads(p), Strings{"small-after"});
  CHECK(p.nothingArrives(0));
}

// 7. flushCorked(): what was queued while corked is written now (by the
// caller: the IO thread is held), and the thread stays corked: a send after
// it queues until uncork().
void testFlushCorked(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  CHECK(fx.hold());
  cork(0);
  Strings first{"f-0", "f-1", "f-2"};
  for (auto& m : first) CHECK(fx.send(0, m).success);
  CHECK(p.nothingArrives(kQuietMs));
  flushCorked();
  CHECK(p.waitFrames(first.size(), kArriveMs));
  CHECK_FRAMES(payloads(p), first);
  CHECK(fx.send(0, "f-after").success);
  CHECK(fx.release());
  CHECK(p.nothingArrives(kQuietMs));
  uncork();
  CHECK(p.waitFrames(1, kArriveMs));
  CHECK_FRAMES(payloads(p), Strings{"f-after"});
  CHECK(p.nothingArrives(0));
}

// 8. A corked connection holds at most 64 KiB: the send that crosses it has
// the caller write the queue (IO thread held), the rest waits for uncork();
// all in order.
void testCorkedBound(Fixture& fx) {
  fx.settle();
  Peer& p = *fx.peers[0];
  const int kN = 100;
  Strings sent;
  CHECK(fx.hold());
  cork(0);
  for (int k = 0; k < kN; ++k) {
    std::string m = "b-" + std::to_string(k);
    m.resize(1024, '.');
    sent.push_back(m);
    CHECK(fx.send(0, m).success);
  }
  // 1 KiB payloads: 1,028 bytes a frame; the 64th passes 65,536 bytes.
  CHECK(p.waitFrames(64, kArriveMs));
  Strings before = payloads(p);
  CHECK(fx.release());
  CHECK(p.nothingArrives(kQuietMs));
  uncork();
  CHECK(p.waitFrames(size_t(kN) - before.size(), kArriveMs));
  Strings after = payloads(p);
  CHECK_EQ(before.size(), size_t(64));
  before.insert(before.end(), after.begin(), after.end());
  CHECK(before == sent);
  CHECK(p.nothingArrives(0));
}

}  // namespace

int main() {
  // One IO thread: holding it in the sink stops every hand-off to the loop.
  setIoThreadCount(1);
  CHECK_EQ(ioThreadCount(), 1);
  {
    Fixture fx;
    if (fx.ready) {
      testUncorked(fx);
      testCorkZero(fx);
      testPassThroughAcross(fx);
      testPassThroughOneConn(fx);
      testNoOvertake(fx);
      testNested(fx);
      testLargeWhileCorked(fx);
      testFlushCorked(fx);
      testCorkedBound(fx);
    }
  }
  // Let the IO thread finish closing before exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
