// The server's limits for untrusted peers, seen from raw loopback peers, on
// two IO threads (accepted sockets move to the other loop, so admission and
// counting cross threads: the workload for the sanitizer runs too):
// maxHandshakes and firstByteTimeout, maxConnectionsPerAddress, maxConnections
// taken at the upgrade, one pending pong under a ping flood from a peer that
// does not read, and maxUnfinishedBytes with fragment copies released by the
// sink's consumer on another thread.
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"
#include "queue_sink.h"
#include "raw_peer.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using rawpeer::Clock;
using rawpeer::Peer;

namespace {

using testsink::QueueSink;

// The status of an HTTP answer, 0 when none came before the deadline.
int readStatus(Peer& p, int ms = 3000) {
  std::string head;
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (head.find("\r\n\r\n") == std::string::npos) {
    char c;
    if (!p.readExact(&c, 1, deadline)) return 0;
    head.push_back(c);
  }
  return head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
}

// True when the server closed the socket (EOF or reset) before the deadline.
bool closedByServer(Peer& p, int ms) {
  char c;
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (p.readExact(&c, 1, deadline)) {
  }
  return Clock::now() < deadline;
}

// Reads frames until a close frame; its code, or 0.
int readCloseCode(Peer& p, int ms = 5000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  for (;;) {
    uint8_t op;
    bool fin;
    uint64_t len;
    if (!p.readHeader(&op, &fin, &len, deadline)) return 0;
    std::string payload(static_cast<size_t>(len), '\0');
    if (len && !p.readExact(&payload[0], payload.size(), deadline)) return 0;
    if (op == 0x8) return len >= 2 ? (uint8_t(payload[0]) << 8) | uint8_t(payload[1]) : 1005;
  }
}

StartResult startServer(Server& s, ServerOptions so) {
  so.port = 0;
  return s.start(so);
}

void testHandshakeSlots() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.maxHandshakes = 2;
  so.limits.firstByteTimeout = 0.3;
  so.limits.handshakeTimeout = 5;
  StartResult sr = startServer(server, so);
  CHECK(sr.success);
  Peer a, b, c, d;
  CHECK(a.connectTo(sr.port));
  CHECK(b.connectTo(sr.port));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(c.connectTo(sr.port));
  CHECK_EQ(readStatus(c), 503);
  // The silent ones go after firstByteTimeout, freeing their slots.
  CHECK(closedByServer(a, 2000));
  CHECK(closedByServer(b, 2000));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(d.connectTo(sr.port));
  CHECK(d.handshake());
  server.clear();
}

void testPerAddressAndMaxConnections() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.maxConnectionsPerAddress = 2;
  so.maxConnections = 1;
  StartResult sr = startServer(server, so);
  CHECK(sr.success);
  Peer a, b, c;
  CHECK(a.connectTo(sr.port));
  CHECK(a.handshake());
  // Second socket of the address: admitted, but over maxConnections at its upgrade.
  CHECK(b.connectTo(sr.port));
  std::string head;
  CHECK(!b.handshake(&head));
  CHECK_EQ(head.compare(0, 12, "HTTP/1.1 503"), 0);
  // b stays (the server waits for its FIN after the 503): a third socket of
  // the address is over the cap.
  CHECK(c.connectTo(sr.port));
  CHECK_EQ(readStatus(c), 429);
  // a still works.
  std::string hi = rawpeer::clientFrame(0x1, "still open");
  CHECK(a.sendAll(hi.data(), hi.size()));
  CHECK(sink->waitFor([](const Event& e) { return e.type == EventType::Message && e.data == "still open"; }));
  server.clear();
}

void testPingFlood() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.limits.sendHighWaterMark = 256 * 1024;
  StartResult sr = startServer(server, so);
  CHECK(sr.success);
  Peer p;
  CHECK(p.connectTo(sr.port));
  CHECK(p.handshake());
  uint64_t conn = 0;
  CHECK(sink->waitFor([&](const Event& e) {
    conn = e.conn;
    return e.type == EventType::Open;
  }));
  int small = 64 * 1024;
  ::setsockopt(p.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  // Sends from this thread while the IO thread answers pings.
  std::vector<uint64_t> to{conn};
  std::string chunk(16 * 1024, 'x');
  std::thread sender([&] {
    for (int i = 0; i < 400; ++i)
      server.send(&to, reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size(), true);
  });
  const int kPings = 20000;
  std::string flood;
  for (int i = 0; i < kPings; ++i) flood += rawpeer::clientFrame(0x9, "p" + std::to_string(i));
  std::thread pinger([&] { p.sendAll(flood.data(), flood.size()); });
  sender.join();
  // The peer has not read: at most the mark plus a few pongs are queued.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  uint64_t queued = server.bufferedAmount(conn);
  CHECK(queued <= so.limits.sendHighWaterMark + 3 * 127);
  // Reading everything: the last pong answers the last ping.
  auto deadline = Clock::now() + std::chrono::seconds(20);
  std::string last;
  std::string want = "p" + std::to_string(kPings - 1);
  bool ok = true;
  while (ok && last != want) {
    uint8_t op;
    bool fin;
    uint64_t len;
    ok = p.readHeader(&op, &fin, &len, deadline);
    std::string payload(static_cast<size_t>(len), '\0');
    if (ok && len) ok = p.readExact(&payload[0], payload.size(), deadline);
    if (ok && op == 0xA) last = payload;
  }
  CHECK_EQ(last, want);
  pinger.join();
  server.clear();
}

void testUnfinishedBudget() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.maxUnfinishedBytes = 1024 * 1024;
  StartResult sr = startServer(server, so);
  CHECK(sr.success);
  Peer hostile, good;
  CHECK(hostile.connectTo(sr.port));
  CHECK(hostile.handshake());
  CHECK(good.connectTo(sr.port));
  CHECK(good.handshake());
  std::string part(300 * 1024, 'f');
  std::string frames = rawpeer::clientFrame(0x2, part, false);
  for (int i = 0; i < 6; ++i) frames += rawpeer::clientFrame(0x0, part, false);
  CHECK(hostile.sendAll(frames.data(), frames.size()));
  CHECK_EQ(readCloseCode(hostile), 1009);
  // The other connection's small message still goes through.
  std::string hello = rawpeer::clientFrame(0x1, "hello");
  CHECK(good.sendAll(hello.data(), hello.size()));
  CHECK(sink->waitFor([](const Event& e) { return e.type == EventType::Message && e.data == "hello"; }));
  server.clear();
}

// An open connection frees its receive state whenever a read leaves nothing
// pending (Connection::feedReceiver): frames split over many reads, the
// header byte by byte, a fragmented message with a ping between its
// fragments in reads of their own, and a close frame with a reason sent byte
// by byte, each after idle pauses, arrive whole.
void testSplitReads() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  StartResult sr = startServer(server, ServerOptions());
  CHECK(sr.success);
  Peer p;
  CHECK(p.connectTo(sr.port));
  int one = 1;
  ::setsockopt(p.fd(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  CHECK(p.handshake());
  CHECK(sink->waitFor([](const Event& e) { return e.type == EventType::Open; }));
  // Byte by byte, with pauses so that each byte is a read of its own.
  auto trickle = [&](const std::string& bytes) {
    for (char c : bytes) {
      if (!p.sendAll(&c, 1)) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  };
  std::string text(200, 't');  // a 16-bit length: a 4-byte header, then the mask
  CHECK(trickle(rawpeer::clientFrame(0x1, text)));
  CHECK(sink->waitFor([&](const Event& e) { return e.type == EventType::Message && e.data == text; }));
  std::string f1 = rawpeer::clientFrame(0x2, "frag-one,", false);
  std::string ping = rawpeer::clientFrame(0x9, "between");
  std::string f2 = rawpeer::clientFrame(0x0, "frag-two", true);
  CHECK(p.sendAll(f1.data(), f1.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(p.sendAll(ping.data(), ping.size()));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  CHECK(trickle(f2));
  CHECK(sink->waitFor([](const Event& e) { return e.type == EventType::Ping && e.data == "between"; }));
  CHECK(sink->waitFor([](const Event& e) {
    return e.type == EventType::Message && e.binary && e.data == "frag-one,frag-two";
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  std::string reason = "bye \xC3\xBC";
  CHECK(trickle(rawpeer::clientFrame(0x8, std::string("\x0F\xA1", 2) + reason)));  // 4001
  // The close reply echoes the code; the event carries code and reason.
  CHECK_EQ(readCloseCode(p), 4001);
  CHECK(sink->waitFor([&](const Event& e) {
    return e.type == EventType::Close && e.code == 4001 && e.reason == reason && e.remote;
  }));
  server.clear();
}

}  // namespace

// Timeouts of 1e300 seconds mean "never" and work as such: a silent socket
// is not closed, a handshake completes, a client with that connect timeout
// connects. (The seconds were converted to milliseconds unchecked: undefined
// behaviour, and on arm64 a due time in the past that fired at once.)
void testHugeTimeouts() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.limits.firstByteTimeout = 1e300;
  so.limits.handshakeTimeout = 1e300;
  StartResult sr = startServer(server, so);
  CHECK(sr.success);
  Peer silent;
  CHECK(silent.connectTo(sr.port));
  // Silent for 300 ms, then the handshake on the same socket: it was kept.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(silent.handshake());
  auto csink = std::make_shared<QueueSink>();
  Client client(csink, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(sr.port);
  co.enableAutomaticReconnection = false;
  co.timeout = 1e300;
  client.start(co, [](ConnectResult) {});
  CHECK(csink->waitFor(EventType::Open));
  client.clear();
  server.clear();
}

int main() {
  setIoThreadCount(2);
  testHugeTimeouts();
  testHandshakeSlots();
  testPerAddressAndMaxConnections();
  testPingFlood();
  testUnfinishedBudget();
  testSplitReads();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
