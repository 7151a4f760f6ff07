// The Outbox on its own: one end of a loopback TCP connection is its socket
// (a Socket on an engine IO loop's poller, plus the fd for direct writes), the
// other end is read by a Receiver of the opposite role, so every byte the
// outbox writes is parsed back into frames. Checked: a small frame to an
// idle socket is written by the sending thread (the loop is held); frames
// keep their order and arrive whole when the socket fills up and writes go
// out in part (direct, zero-copy, corked, shared and queued ones mixed),
// also from two threads at once; at most one pong waits while the socket is
// full, and it is the latest; nothing follows the close frame; cork() holds
// frames until uncork(); client frames are masked; compressed frames
// inflate back in order.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "loopback.h"
#include "frame.h"
#include "io_loop.h"
#include "outbox.h"
#include "receiver.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

// The outbox under test with what it needs of a connection.
class Harness : public OutboxHost, public std::enable_shared_from_this<Harness> {
 public:
  Harness(IoLoop& loop, bool server, uint64_t hwm = uint64_t(1) << 30)
      : loop_(loop), settings_(make(server, hwm)), box(*this) {}

  std::shared_ptr<Outbox> outboxRef() override { return std::shared_ptr<Outbox>(shared_from_this(), &box); }
  void onWritten() override { ++written; }
  void onWriteFailed(int) override { ++failed; }
  const ConnSettings& outboxSettings() const override { return *settings_; }
  IoLoop& outboxLoop() const override { return loop_; }
  Socket* outboxSocket() override { return started_ ? &sock_ : nullptr; }
  TlsSession* outboxTls() override { return nullptr; }

  // Opens the socket on the loop, as Connection does once the handshake is done.
  void start(int fd, int deflateBits = 0) {
    loop_.runSync([&] {
      sock_.init(&loop_.poller(), &kOps, nullptr);
      sock_.open(fd);
      sock_.setNoDelay();
      started_ = true;
      box.open(fd, deflateBits, false);
    });
  }
  void stop() {
    std::promise<void> closed;
    loop_.runSync([&] {
      box.close();
      sock_.init(&loop_.poller(), &kOps, &closed);
      sock_.close();
    });
    closed.get_future().wait();
    loop_.runSync([&] { box.clear(); });
  }
  // Runs fn on the loop thread and waits for it.
  void onLoop(const std::function<void()>& fn) { loop_.runSync(fn); }

  std::atomic<int> written{0};
  std::atomic<int> failed{0};

 private:
  static std::shared_ptr<ConnSettings> make(bool server, uint64_t hwm) {
    auto s = std::make_shared<ConnSettings>();
    s->server = server;
    s->limits.sendHighWaterMark = hwm;
    return s;
  }
  IoLoop& loop_;
  std::shared_ptr<ConnSettings> settings_;
  // Only writes (the outbox's) and the close callback are used.
  static constexpr SocketOps kOps = {
      [](Socket*, uv_buf_t*) {}, [](Socket*, ssize_t, const uv_buf_t*) {}, [](Socket*, int) {},
      [](Socket*, int) {},
      [](Socket* s) { static_cast<std::promise<void>*>(s->data())->set_value(); }};
  Socket sock_;
  bool started_ = false;  // loop thread

 public:
  Outbox box;
};

// Holds the loop thread until released (bounded, so a failure cannot hang).
class LoopHold {
 public:
  explicit LoopHold(IoLoop& loop) {
    loop.post([this] {
      std::unique_lock<std::mutex> lock(mu_);
      held_ = true;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(5), [this] { return released_; });
      held_ = false;
      cv_.notify_all();
    });
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return held_; });
  }
  ~LoopHold() { release(); }
  void release() {
    std::unique_lock<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return !held_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool held_ = false;
  bool released_ = false;
};

// Reads the other end and parses it with a Receiver of the other role.
class Reader : public ReceiverListener {
 public:
  Reader(int fd, bool outboxIsServer, int inflateBits = 0)
      : fd_(fd), settings_(make(!outboxIsServer)), r_(*settings_, *this) {
    if (inflateBits) r_.enableInflate(inflateBits, false);
  }
  ~Reader() override { ::close(fd_); }

  // Reads until n frames were reported, or ms pass.
  bool waitFor(size_t n, int ms = 10000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(ms);
    while (got.size() < n) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (left <= 0 || !readSome(left)) return false;
    }
    return true;
  }
  // Nothing more arrives within ms.
  bool quiet(int ms) {
    size_t before = got.size();
    readSome(ms);
    return got.size() == before;
  }

  std::vector<std::string> got;  // "op:payload" per frame, messages whole
  bool masked = true;            // every frame so far came masked (client role)

  void onMessage(std::string&& data, bool binary, uint64_t) override {
    got.push_back((binary ? "b:" : "t:") + data);
  }
  void onFragment(std::string&&, bool, uint64_t, std::shared_ptr<void>) override { got.push_back("fragment?"); }
  bool onControl(uint8_t opcode, std::string&& payload, bool) override {
    got.push_back((opcode == kPing ? "ping:" : "pong:") + payload);
    return true;
  }
  void onClose(int code, std::string&& reason) override {
    got.push_back("close:" + std::to_string(code) + " " + reason);
  }
  void onFail(int code, const std::string& reason, bool) override {
    got.push_back("FAIL:" + std::to_string(code) + " " + reason);
  }

 private:
  static std::shared_ptr<ConnSettings> make(bool server) {
    auto s = std::make_shared<ConnSettings>();
    s->server = server;  // a server receiver refuses unmasked frames
    s->limits.maxPayload = uint64_t(1) << 30;
    return s;
  }
  bool readSome(int ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, ms) <= 0) return false;
#ifdef TCP_QUICKACK
    // ACK at once: the writer's small send buffer would otherwise wait on
    // delayed ACKs (tens of ms each).
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
    ssize_t n = ::recv(fd_, buf_.data(), buf_.size(), 0);
    if (n <= 0) return false;
    r_.feed(reinterpret_cast<uint8_t*>(buf_.data()), static_cast<size_t>(n));
    return true;
  }
  int fd_;
  std::shared_ptr<ConnSettings> settings_;
  Receiver r_;
  std::vector<char> buf_ = std::vector<char>(1 << 16);
};

std::string payload(const std::string& tag, size_t n) {
  std::string s = tag + ":";
  while (s.size() < n) s += static_cast<char>('a' + (s.size() * 7 + tag.size()) % 26);
  s.resize(std::max(n, tag.size() + 1));
  return s;
}

struct Pair {
  IoLoop& loop = nextLoop();
  std::shared_ptr<Harness> h;
  std::unique_ptr<Reader> reader;
  bool ok = false;
  explicit Pair(bool server, int deflateBits = 0, int sndbuf = 0, uint64_t hwm = uint64_t(1) << 30) {
    int out, in;
    ok = socketPair(&out, &in);
    CHECK(ok);
    if (!ok) return;
    // A small send buffer fills up soon (the reader's stays as the system
    // makes it: a small one too would make loopback crawl on delayed ACKs).
    if (sndbuf) ::setsockopt(out, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    h = std::make_shared<Harness>(loop, server, hwm);
    h->start(out, deflateBits);
    reader.reset(new Reader(in, server, deflateBits));
  }
  ~Pair() {
    if (h) h->stop();
  }
  SendResult send(const std::string& s, bool binary = true) {
    return h->box.send(reinterpret_cast<const uint8_t*>(s.data()), s.size(), binary);
  }
  // A frame built once for several connections, as a broadcast sends it.
  SendResult sendShared(const std::string& s) {
    const auto* d = reinterpret_cast<const uint8_t*>(s.data());
    return h->box.sendShared(Outbox::buildServerFrame(d, s.size(), kBinary), s.size());
  }
  // A server's send to one connection (Server::sendOne): small frames
  // appended to the queued bytes, large ones as sendLarge.
  SendResult sendOne(const std::string& s, bool binary = true) {
    SendResult r;
    const auto* d = reinterpret_cast<const uint8_t*>(s.data());
    if (h->box.trySendSmall(d, s.size(), binary ? kBinary : kText, &r)) return r;
    return sendLarge(s);
  }
  // Zero-copy when the socket is idle, else shared (as Server::send does).
  SendResult sendLarge(const std::string& s) {
    SendResult r;
    if (!h->box.trySendZeroCopy(reinterpret_cast<const uint8_t*>(s.data()), s.size(), kBinary, &r))
      r = sendShared(s);
    return r;
  }
  // Exactly these frames arrive (whole messages), and nothing after them.
  void expect(const std::vector<std::string>& want, int ms = 5000) {
    CHECK(reader->waitFor(want.size(), ms));
    CHECK(reader->quiet(100));
    size_t firstBad = want.size();
    for (size_t i = 0; i < want.size() && firstBad == want.size(); ++i)
      if (i >= reader->got.size() || reader->got[i] != want[i]) firstBad = i;
    if (firstBad < want.size())
      std::fprintf(stderr, "frame %zu: got %s, want %s\n", firstBad,
                   firstBad < reader->got.size() ? reader->got[firstBad].substr(0, 40).c_str() : "nothing",
                   want[firstBad].substr(0, 40).c_str());
    CHECK_EQ(firstBad, want.size());
    CHECK_EQ(reader->got.size(), want.size());
  }
};

// A small frame to an idle socket leaves from the sending thread: the loop
// is held and the frame still arrives.
void testDirectWrite() {
  Pair p(true);
  if (!p.ok) return;
  {
    LoopHold hold(p.loop);
    SendResult r = p.send("direct");
    CHECK(r.success);
    CHECK_EQ(r.bufferedAmount, uint64_t(0));
    CHECK(p.reader->waitFor(1, 2000));  // while the loop is held
  }
  p.expect({"b:direct"});
}

// The socket fills up (small buffers, the reader not reading yet): frames of
// every path, written whole, in part or not at all by the sending thread,
// arrive once each, whole and in order.
void testFullSocketOrder() {
  Pair p(true, 0, 16 * 1024);
  if (!p.ok) return;
  std::vector<std::string> want;
  for (int i = 0; i < 400; ++i) {
    std::string tag = "m" + std::to_string(i);
    size_t n = (i % 7 == 0) ? 20000 + (i * 977) % 150000 : 1 + (i * 131) % 9000;
    std::string s = payload(tag, n);
    if (i % 7 == 0) {
      CHECK(p.sendLarge(s).success);
    } else if (i % 5 == 0) {
      cork(1);
      CHECK(p.send(s).success);
      CHECK(p.send(s + "+").success);
      uncork();
      want.push_back("b:" + s);
      s += "+";
    } else if (i % 3 == 0) {
      CHECK(p.sendShared(s).success);
    } else {
      CHECK(p.send(s).success);
    }
    want.push_back("b:" + s);
  }
  CHECK(p.h->box.bufferedAmount() > 0);  // the socket is full: frames wait
  p.expect(want, 20000);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (p.h->box.bufferedAmount() != 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_EQ(p.h->box.bufferedAmount(), uint64_t(0));
  CHECK_EQ(p.h->failed.load(), 0);
}

// Two threads send at once into a socket that fills up: each thread's frames
// arrive in its order, whole, none lost (and the sanitizer runs see the
// locking).
void testTwoThreads() {
  Pair p(true, 0, 32 * 1024);
  if (!p.ok) return;
  const int kEach = 300;
  int refused[2] = {0, 0};  // per thread: CHECK itself is not thread-safe
  auto run = [&](int t) {
    for (int i = 0; i < kEach; ++i) {
      std::string s = payload("t" + std::to_string(t) + "-" + std::to_string(i), 1 + (i * 389 + t) % 30000);
      if (!(i % 9 == 0 ? p.sendLarge(s) : p.send(s)).success) ++refused[t];
    }
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  CHECK_EQ(refused[0] + refused[1], 0);
  CHECK(p.reader->waitFor(2 * kEach, 20000));
  int next[2] = {0, 0};
  bool inOrder = true;
  for (auto& g : p.reader->got) {
    int t = g.compare(0, 4, "b:t1") == 0 ? 1 : 0;
    std::string want = "b:" + payload("t" + std::to_string(t) + "-" + std::to_string(next[t]), 1 + (next[t] * 389 + t) % 30000);
    if (g != want) inOrder = false;
    ++next[t];
  }
  CHECK(inOrder);
  CHECK_EQ(next[0], kEach);
  CHECK_EQ(next[1], kEach);
}

// While libuv holds bytes the socket did not take, pongs wait in the queue
// and each newer one replaces the one waiting (RFC 6455 §5.5.3): 300 pongs,
// each followed by a loop turn (its flush runs), leave one, the latest.
void testOnePendingPong() {
  Pair p(true, 0, 16 * 1024);
  if (!p.ok) return;
  std::string big(4 << 20, 'B');
  CHECK(p.sendShared(big).success);
  p.h->onLoop([] {});  // the flush ran: libuv holds most of the frame
  uint64_t before = p.h->box.bufferedAmount();
  CHECK(before > 0);
  for (int i = 0; i < 300; ++i) {
    std::string s = "p" + std::to_string(i);
    p.h->box.sendPong(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    p.h->onLoop([] {});
  }
  CHECK(p.h->box.bufferedAmount() <= before + 2 + 4);  // one pong's frame
  p.expect({"b:" + big, "pong:p299"}, 20000);
}

// Nothing follows the close frame: data sends after it are refused.
void testCloseIsLast() {
  Pair p(true);
  if (!p.ok) return;
  CHECK(p.send("before").success);
  const uint8_t close[] = {0x03, 0xE8, 'b', 'y', 'e'};
  p.h->box.sendClose(close, sizeof close);
  SendResult r = p.send("after");
  CHECK(!r.success);
  CHECK_EQ(r.message, std::string("Not connected"));
  CHECK(!p.sendShared("shared-after").success);
  p.expect({"b:before", "close:1000 bye"});
}

// cork(0): frames wait for uncork() (the loop is free, so a hand-off to it
// would show); then they leave in order, written by this thread. A large
// frame sent while they wait may not go first (no zero-copy write then).
void testCork() {
  Pair p(true);
  if (!p.ok) return;
  cork(0);
  for (int i = 0; i < 5; ++i) CHECK(p.send("c" + std::to_string(i)).success);
  CHECK(p.h->box.bufferedAmount() > 0);
  CHECK(p.reader->quiet(100));
  std::string big = payload("big", 40000);
  SendResult r;
  CHECK(!p.h->box.trySendZeroCopy(reinterpret_cast<const uint8_t*>(big.data()), big.size(), kBinary, &r));
  uncork();
  CHECK_EQ(p.h->box.bufferedAmount(), uint64_t(0));
  CHECK(p.send(big).success);
  p.expect({"b:c0", "b:c1", "b:c2", "b:c3", "b:c4", "b:" + big});
}

// Client role: every frame masked (the server-role reader refuses unmasked
// ones), compressed with context takeover and inflated back in order.
void testClientDeflate() {
  Pair p(false, 15);
  if (!p.ok) return;
  std::string text;
  for (int i = 0; i < 200; ++i) text += "compressible text " + std::to_string(i % 10) + " ";
  std::vector<std::string> want;
  for (int i = 0; i < 20; ++i) {
    std::string s = std::to_string(i) + text;
    SendResult r = p.send(s, false);
    CHECK(r.success);
    CHECK(!r.compressionError);
    CHECK(r.wireSize < s.size() / 4);  // compressed (later ones lean on the window)
    want.push_back("t:" + s);
  }
  CHECK(p.send("tiny", false).success);  // under the threshold: plain
  want.push_back("t:tiny");
  const uint8_t ping[] = {'h', 'i'};
  p.h->box.sendControl(kPing, ping, 2);
  want.push_back("ping:hi");
  p.expect(want);
}

// The wire size of a server frame with this payload length.
uint64_t frameSize(size_t len) { return len + (len < 126 ? 2 : len <= 0xFFFF ? 4 : 10); }

// Small frames (trySendSmall) queued behind each other share one tail frame;
// controls, shared and large frames stay frames of their own. While corked
// (nothing written), every status reports exactly the frame bytes queued so
// far, across the small/large threshold (16 KiB) and the header sizes (125,
// 126 bytes); a newer pong replaces the queued one in its place; nothing
// follows the close frame; at uncork everything leaves in the order sent.
void testSmallFramesInterleaved() {
  Pair p(true);
  if (!p.ok) return;
  std::vector<std::string> want;
  uint64_t queued = 0;
  auto small = [&](const std::string& s) {
    SendResult r = p.sendOne(s);
    CHECK(r.success);
    CHECK_EQ(r.payloadSize, uint64_t(s.size()));
    CHECK_EQ(r.wireSize, uint64_t(s.size()));
    queued += frameSize(s.size());
    CHECK_EQ(r.bufferedAmount, queued);
    want.push_back("b:" + s);
  };
  cork(0);
  small(payload("a", 1));
  small(payload("b", 125));
  small(payload("c", 126));
  const uint8_t pong1[] = {'p', '1'}, pong2[] = {'p', '2'}, ping[] = {'h', 'i'};
  p.h->box.sendPong(pong1, 2);
  queued += 4;
  want.push_back("pong:p2");  // replaced in its place below
  small(payload("d", 1000));
  small(payload("e", 16 * 1024));  // the largest small frame
  p.h->box.sendPong(pong2, 2);     // replaces p1: same size
  CHECK_EQ(p.h->box.bufferedAmount(), queued);
  CHECK(p.h->box.sendPing(ping, 2));
  queued += 4;
  want.push_back("ping:hi");
  small(payload("f", 40));
  std::string big = payload("g", 16 * 1024 + 1);  // large: queued as a frame of its own
  SendResult r = p.sendOne(big);
  CHECK(r.success);
  queued += frameSize(big.size());
  CHECK_EQ(r.bufferedAmount, queued);
  want.push_back("b:" + big);
  small(payload("h", 2));
  CHECK(p.sendShared(payload("i", 300)).success);
  queued += frameSize(300);
  want.push_back("b:" + payload("i", 300));
  small(payload("j", 3));
  SendResult t = p.sendOne("text", false);
  CHECK(t.success);
  queued += frameSize(4);
  want.push_back("t:text");
  const uint8_t close[] = {0x03, 0xE8};
  p.h->box.sendClose(close, 2);
  queued += 4;
  want.push_back("close:1000 ");
  SendResult after = p.sendOne("after");
  CHECK(!after.success);
  CHECK_EQ(after.message, std::string("Not connected"));
  CHECK_EQ(after.bufferedAmount, queued);
  CHECK_EQ(p.h->box.bufferedAmount(), queued);
  CHECK(p.reader->quiet(50));  // corked: nothing left yet
  uncork();
  p.expect(want);
  CHECK_EQ(p.h->box.bufferedAmount(), uint64_t(0));
}

// sendHighWaterMark counts the whole frame of a small send, header included,
// as sendShared does: with 300 bytes allowed, a 296-byte payload (frame 300)
// goes and a 299-byte one (frame 303) is refused, reporting what is queued.
void testSmallHighWaterMark() {
  Pair p(true, 0, 0, 300);
  if (!p.ok) return;
  SendResult ok = p.sendOne(payload("fits", 296));
  CHECK(ok.success);
  CHECK_EQ(ok.bufferedAmount, uint64_t(0));  // idle socket: written at once
  SendResult no = p.sendOne(payload("over", 299));
  CHECK(!no.success);
  // Nothing is queued: the message alone is over the mark, and says so.
  CHECK_EQ(no.message, std::string("A message of 303 bytes is larger than sendHighWaterMark (300)"));
  CHECK_EQ(no.payloadSize, uint64_t(299));
  CHECK_EQ(no.wireSize, uint64_t(299));
  CHECK_EQ(no.bufferedAmount, uint64_t(0));
  // Corked (bound: half the mark): 100 + 2 queued, then 146 + 2 crosses the
  // bound and the queue is written at once, as for frames of their own.
  cork(0);
  SendResult a = p.sendOne(payload("q1", 100));
  CHECK_EQ(a.bufferedAmount, uint64_t(102));
  // With bytes queued, a send that would cross the mark is refused as such.
  SendResult over = p.sendOne(payload("q3", 250));
  CHECK(!over.success);
  CHECK_EQ(over.message, std::string("Send buffer is over its high-water mark"));
  CHECK_EQ(over.bufferedAmount, uint64_t(102));
  SendResult b = p.sendOne(payload("q2", 100));
  CHECK(b.success);
  CHECK_EQ(b.bufferedAmount, uint64_t(0));
  uncork();
  p.expect({"b:" + payload("fits", 296), "b:" + payload("q1", 100), "b:" + payload("q2", 100)});
}

// Raw bytes (an HTTP head, TLS records) count toward bufferedAmount and the
// high-water mark until written, like frames: a TLS peer that requests key
// updates and reads nothing made the server queue its replies without end
// while it kept reading (Connection::updateReading looks at the mark).
void testRawWritesCount() {
  Pair p(true, 0, 4096, 1 << 20);
  if (!p.ok) return;
  std::string big = payload("raw", 8 << 20);
  OutFramePtr f = Outbox::buildServerFrame(reinterpret_cast<const uint8_t*>(big.data()), big.size(), kBinary);
  std::string bytes(f->data.data() + f->start, f->size());
  uint64_t queued = 0;
  bool over = false;
  p.h->onLoop([&] {
    p.h->box.writeRaw(std::move(bytes));
    queued = p.h->box.bufferedAmount();
    over = p.h->box.overHighWaterMark();
  });
  CHECK(queued > (uint64_t(1) << 20));
  CHECK(over);
  p.expect({"b:" + big}, 20000);
  auto until = Clock::now() + std::chrono::seconds(5);
  while (p.h->box.bufferedAmount() != 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_EQ(p.h->box.bufferedAmount(), uint64_t(0));  // given back as written
  CHECK(!p.h->box.overHighWaterMark());
}

// Client role, corked: small frames appended to the tail masked (the server-
// role reader refuses unmasked ones), in order with a ping between them.
void testClientTail() {
  Pair p(false);
  if (!p.ok) return;
  std::vector<std::string> want;
  cork(0);
  uint64_t queued = 0;
  for (int i = 0; i < 40; ++i) {
    std::string s = payload("c" + std::to_string(i), 1 + (i * 613) % 1500);  // < 64 KiB in all
    SendResult r = p.send(s);
    CHECK(r.success);
    queued += frameSize(s.size()) + 4;  // + the mask key
    CHECK_EQ(r.bufferedAmount, queued);
    want.push_back("b:" + s);
    if (i == 20) {
      const uint8_t ping[] = {'p'};
      p.h->box.sendControl(kPing, ping, 1);
      queued += 2 + 4 + 1;  // header, mask key, payload
      want.push_back("ping:p");
    }
  }
  uncork();
  p.expect(want);
  CHECK(p.reader->masked);
}

// Small sends from one thread while the loop thread writes what the full
// socket did not take (and a second thread sends large frames): every frame
// arrives whole and in its thread's order, and bufferedAmount returns to 0.
void testSmallWhileLoopWrites() {
  Pair p(true, 0, 16 * 1024);
  if (!p.ok) return;
  const int kSmall = 3000, kLarge = 40;
  std::thread large([&] {
    for (int i = 0; i < kLarge; ++i) p.sendOne(payload("L" + std::to_string(i), 20000 + i * 1000));
  });
  for (int i = 0; i < kSmall; ++i) {
    if (i % 100 == 50) cork(0);
    p.sendOne(payload("s" + std::to_string(i), 1 + (i * 37) % 3000));
    if (i % 100 == 99) uncork();
  }
  large.join();
  CHECK(p.reader->waitFor(kSmall + kLarge, 20000));
  int next[2] = {0, 0};
  bool inOrder = true;
  for (auto& g : p.reader->got) {
    bool isLarge = g.compare(0, 3, "b:L") == 0;
    int i = next[isLarge ? 1 : 0]++;
    std::string want = isLarge ? payload("L" + std::to_string(i), 20000 + i * 1000)
                               : payload("s" + std::to_string(i), 1 + (i * 37) % 3000);
    if (g != "b:" + want) inOrder = false;
  }
  CHECK(inOrder);
  CHECK_EQ(next[0], kSmall);
  CHECK_EQ(next[1], kLarge);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (p.h->box.bufferedAmount() != 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK_EQ(p.h->box.bufferedAmount(), uint64_t(0));
  CHECK_EQ(p.h->failed.load(), 0);
}

// A frame this thread wrote out of the queue lends its storage to the next
// tail it starts (outbox.cc's per-thread tail cache): rounds of corked
// bursts mixing compressed frames (built with room before their header:
// their bytes start past the front of their storage) and plain small frames
// (tails) arrive exactly, with nothing of an earlier round's bytes in them.
void testTailReuse() {
  Pair p(true, 15);  // server role, permessage-deflate: threshold 1024
  if (!p.ok) return;
  std::vector<std::string> want;
  for (int round = 0; round < 8; ++round) {
    cork(0);
    for (int i = 0; i < 10; ++i) {
      std::string tag = "r" + std::to_string(round) + "i" + std::to_string(i);
      std::string big = payload(tag + "C", 3000 + round * 211 + i * 97);  // compressed
      CHECK(p.send(big).success);
      want.push_back("b:" + big);
      for (int k = 0; k < 1 + (round + i) % 4; ++k) {
        std::string small = payload(tag + "s" + std::to_string(k), 20 + (round * 131 + i * 37 + k * 301) % 1000);
        CHECK(p.send(small).success);
        want.push_back("b:" + small);
      }
    }
    uncork();
    CHECK(p.reader->waitFor(want.size(), 5000));  // written (and kept) before the next round
  }
  p.expect(want);
  CHECK_EQ(p.h->failed.load(), 0);
}

}  // namespace

int main() {
  setIoThreadCount(1);
  struct {
    const char* name;
    void (*fn)();
  } tests[] = {{"direct write", testDirectWrite}, {"full socket", testFullSocketOrder},
               {"two threads", testTwoThreads},   {"one pending pong", testOnePendingPong},
               {"close is last", testCloseIsLast}, {"cork", testCork},
               {"client deflate", testClientDeflate},
               {"small frames interleaved", testSmallFramesInterleaved},
               {"small high-water mark", testSmallHighWaterMark},
               {"client tail", testClientTail},
               {"small while loop writes", testSmallWhileLoopWrites},
               {"tail reuse", testTailReuse},
               {"raw writes count", testRawWritesCount}};
  for (auto& t : tests) {
    auto t0 = Clock::now();
    t.fn();
    std::printf("%s: %lld ms\n", t.name,
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count()));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
