// Topics and reusePort, without Node. The registry on its own (counts, what
// a closing connection leaves behind); then a server publishing to raw peers
// (exactly which sockets get which frame, in order; subscriptions ending
// with the connection; refusals), to a deflate client (compressed, intact);
// then two servers sharing one port with reusePort, and the exclusive
// default refusing to share.
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "check.h"
#include "queue_sink.h"
#include "raw_peer.h"
#include "topics.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

using testsink::QueueSink;

bool isOpen(const Event& e) { return e.type == EventType::Open; }
bool isClose(const Event& e) { return e.type == EventType::Close; }

const uint8_t* bytes(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Reads one unfragmented, uncompressed frame: its opcode and payload.
bool readFrame(rawpeer::Peer& p, uint8_t* opcode, std::string* payload, int ms = 3000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  bool fin = false;
  uint64_t len = 0;
  if (!p.readHeader(opcode, &fin, &len, deadline) || !fin) return false;
  payload->assign(len, '\0');
  return len == 0 || p.readExact(&(*payload)[0], len, deadline);
}

// Nothing arrives within ms.
bool silent(rawpeer::Peer& p, int ms = 150) {
  char c;
  return !p.readExact(&c, 1, Clock::now() + std::chrono::milliseconds(ms));
}

void testRegistry() {
  TopicRegistry r;
  bool changed = false;
  CHECK_EQ(r.subscribe(7, "a", &changed), size_t(1));
  CHECK(changed);
  CHECK_EQ(r.subscribe(7, "a", &changed), size_t(1));  // twice: still one
  CHECK(!changed);
  CHECK_EQ(r.subscribe(3, "a"), size_t(2));
  CHECK_EQ(r.subscribe(7, "b"), size_t(1));
  CHECK_EQ(r.subscribe(9, "c"), size_t(1));
  CHECK(r.subscribers("a") == std::vector<uint64_t>({3, 7}));
  CHECK(r.topicsOf(7) == std::vector<std::string>({"a", "b"}));
  CHECK_EQ(r.count("zzz"), size_t(0));
  CHECK_EQ(r.unsubscribe(9, "a", &changed), size_t(2));  // not subscribed
  CHECK(!changed);
  CHECK_EQ(r.unsubscribe(1, "nope", &changed), size_t(0));
  CHECK(!changed);
  // Connection 7 closes: "b" loses its last subscriber, "a" keeps 3.
  CHECK(r.removeConnection(7) == std::vector<std::string>({"b"}));
  CHECK(r.topicsOf(7).empty());
  CHECK(r.subscribers("a") == std::vector<uint64_t>({3}));
  CHECK_EQ(r.count("b"), size_t(0));
  auto t = r.topics();
  CHECK_EQ(t.size(), size_t(2));
  CHECK(t[0] == std::make_pair(std::string("a"), size_t(1)));
  CHECK(t[1] == std::make_pair(std::string("c"), size_t(1)));
  CHECK_EQ(r.unsubscribe(9, "c", &changed), size_t(0));
  CHECK(changed);
  CHECK_EQ(r.unsubscribe(3, "a"), size_t(0));
  CHECK(r.empty());
  CHECK(r.removeConnection(3).empty());
}

struct Peers {
  std::vector<std::unique_ptr<rawpeer::Peer>> peers;
  std::vector<uint64_t> conns;
};

// Connects n raw peers one after the other, each with its connection id.
bool connectPeers(int port, QueueSink& sink, int n, Peers& out) {
  for (int i = 0; i < n; ++i) {
    auto p = std::make_unique<rawpeer::Peer>();
    if (!p->connectTo(port) || !p->handshake()) return false;
    Event open;
    if (!sink.waitFor(isOpen, &open)) return false;
    out.peers.push_back(std::move(p));
    out.conns.push_back(open.conn);
  }
  return true;
}

void testPublish() {
  auto sink = std::make_shared<QueueSink>();
  Server server(sink, 1);
  ServerOptions so;
  so.port = 0;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  Peers ps;
  CHECK(connectPeers(sr.port, *sink, 3, ps));
  if (ps.conns.size() != 3) return;
  uint64_t c0 = ps.conns[0], c1 = ps.conns[1], c2 = ps.conns[2];

  TopicResult s = server.subscribe(c0, "news");
  CHECK(s.success);
  CHECK(s.changed);
  CHECK_EQ(s.count, size_t(1));
  CHECK_EQ(server.subscribe(c1, "news").count, size_t(2));
  CHECK(!server.subscribe(c1, "news").changed);  // already
  CHECK(server.subscribe(c2, "sport").success);

  PublishResult pr = server.publish("news", bytes("hello"), 5, false);
  CHECK(pr.success);
  CHECK_EQ(pr.subscribers, uint64_t(2));
  CHECK_EQ(pr.sent, uint64_t(2));
  CHECK_EQ(pr.failed, uint64_t(0));
  CHECK_EQ(pr.payloadSize, uint64_t(5));
  uint8_t op = 0;
  std::string got;
  CHECK(readFrame(*ps.peers[0], &op, &got));
  CHECK_EQ(int(op), 1);  // text
  CHECK_EQ(got, std::string("hello"));
  CHECK(readFrame(*ps.peers[1], &op, &got));
  CHECK_EQ(got, std::string("hello"));
  CHECK(silent(*ps.peers[2]));  // not a subscriber of "news"

  std::string bin("\x00\xff\x01", 3);
  pr = server.publish("sport", bytes(bin), bin.size(), true);
  CHECK_EQ(pr.subscribers, uint64_t(1));
  CHECK(readFrame(*ps.peers[2], &op, &got));
  CHECK_EQ(int(op), 2);  // binary
  CHECK(got == bin);
  CHECK(silent(*ps.peers[0]));

  // Order: a burst of publishes arrives in publish order at each subscriber.
  for (int i = 0; i < 200; ++i) {
    std::string m = "m" + std::to_string(i);
    CHECK(server.publish("news", bytes(m), m.size(), false).sent == 2);
  }
  for (int k = 0; k < 2; ++k) {
    bool inOrder = true;
    for (int i = 0; i < 200; ++i) {
      inOrder = inOrder && readFrame(*ps.peers[k], &op, &got) && got == "m" + std::to_string(i);
    }
    CHECK(inOrder);
  }

  // Unsubscribe: c0 gets no more "news".
  TopicResult u = server.unsubscribe(c0, "news");
  CHECK(u.success);
  CHECK(u.changed);
  CHECK_EQ(u.count, size_t(1));
  CHECK_EQ(server.publish("news", bytes("x"), 1, false).subscribers, uint64_t(1));
  CHECK(readFrame(*ps.peers[1], &op, &got));
  CHECK(silent(*ps.peers[0]));
  CHECK(server.topicsOf(c1) == std::vector<std::string>({"news"}));

  // A topic nobody listens to: published to no one, not an error.
  pr = server.publish("empty", bytes("x"), 1, false);
  CHECK(pr.success);
  CHECK_EQ(pr.subscribers, uint64_t(0));
  // Text that is not UTF-8 is refused before anything is queued.
  const uint8_t bad[] = {0xC3, 0x28};
  pr = server.publish("news", bad, 2, false);
  CHECK(!pr.success);
  CHECK(pr.message.find("UTF-8") != std::string::npos);
  CHECK(silent(*ps.peers[1]));

  // c1 closes: its subscriptions end with it; "news" is gone.
  ps.peers[1]->closeNow();
  Event closed;
  CHECK(sink->waitFor(isClose, &closed));
  CHECK_EQ(closed.conn, c1);
  auto topics = server.topics();
  CHECK_EQ(topics.size(), size_t(1));
  if (!topics.empty()) CHECK_EQ(topics[0].first, std::string("sport"));
  CHECK_EQ(server.publish("news", bytes("x"), 1, false).subscribers, uint64_t(0));
  TopicResult late = server.subscribe(c1, "news");  // closed: refused
  CHECK(!late.success);
  CHECK(late.message.find("closed") != std::string::npos);
  CHECK(!server.subscribe(999999, "news").success);  // never existed

  server.stop();
  pr = server.publish("sport", bytes("x"), 1, false);
  CHECK(!pr.success);
  CHECK_EQ(pr.message, std::string("Server is not running"));
  CHECK(!server.subscribe(c0, "news").success);
}

// Deflate clients: one compressed frame per compression setting for the
// subscribers without context takeover (two at 15 bits share one, one at 10
// bits gets another), its own deflate run for a subscriber with context
// takeover, the plain frame for a peer without deflate; every one of them
// gets every message intact, the takeover one twice in a row (its stream's
// context holds across publishes).
void testPublishDeflate() {
  auto ssink = std::make_shared<QueueSink>();
  Server server(ssink, 1);
  ServerOptions so;
  so.port = 0;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  struct Kind {
    bool noCtx;
    int bits;
  };
  const Kind kinds[] = {{true, 15}, {true, 15}, {true, 10}, {false, 15}};
  std::vector<std::shared_ptr<QueueSink>> sinks;
  std::vector<std::unique_ptr<Client>> clients;
  for (const Kind& k : kinds) {
    auto csink = std::make_shared<QueueSink>();
    auto client = std::make_unique<Client>(csink, 2);
    ClientOptions co;
    co.url = "ws://127.0.0.1:" + std::to_string(sr.port) + "/";
    co.deflate.serverNoContextTakeover = k.noCtx;
    co.deflate.serverMaxWindowBits = k.bits;
    std::promise<ConnectResult> done;
    auto f = done.get_future();
    client->start(co, [&done](ConnectResult r) { done.set_value(std::move(r)); });
    CHECK(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready && f.get().success);
    Event open;
    CHECK(ssink->waitFor(isOpen, &open));
    CHECK(server.subscribe(open.conn, "t").success);
    sinks.push_back(csink);
    clients.push_back(std::move(client));
  }
  Peers ps;
  CHECK(connectPeers(sr.port, *ssink, 1, ps));
  if (ps.conns.empty()) return;
  CHECK(server.subscribe(ps.conns[0], "t").success);
  for (int round = 0; round < 2; ++round) {
    std::string text;
    for (int i = 0; i < 8192; ++i) text.push_back(static_cast<char>('a' + (i / 7 + round) % 5));
    PublishResult pr = server.publish("t", bytes(text), text.size(), false);
    CHECK(pr.success);
    CHECK_EQ(pr.sent, uint64_t(5));
    CHECK_EQ(pr.compressions, uint64_t(3));  // 15 bits shared, 10 bits, the takeover one
    CHECK(pr.wireSize < 5 * text.size());
    for (auto& csink : sinks) {
      Event m;
      CHECK(csink->waitFor([](const Event& e) { return e.type == EventType::Message; }, &m));
      CHECK(m.data == text);
      CHECK(!m.binary);
      CHECK(m.wireSize < text.size());  // it came compressed
    }
    uint8_t op = 0;
    std::string got;
    CHECK(readFrame(*ps.peers[0], &op, &got));
    CHECK(got == text);
  }
  // Below the threshold nothing is compressed: every target shares one frame.
  PublishResult small = server.publish("t", bytes("tiny"), 4, false);
  CHECK_EQ(small.sent, uint64_t(5));
  CHECK_EQ(small.compressions, uint64_t(0));
  for (auto& csink : sinks) {
    Event m;
    CHECK(csink->waitFor([](const Event& e) { return e.type == EventType::Message; }, &m));
    CHECK_EQ(m.data, std::string("tiny"));
  }
  for (auto& c : clients) c->clear();
  server.clear();
}

// Two servers on one port with reusePort: both start, and the kernel gives
// each some of the connections. Exclusive servers do not share.
void testReusePort() {
  auto sinkA = std::make_shared<QueueSink>();
  auto sinkB = std::make_shared<QueueSink>();
  Server a(sinkA, 1), b(sinkB, 2);
  ServerOptions so;
  so.port = 0;
  so.reusePort = true;
  StartResult ra = a.start(so);
  CHECK(ra.success);
  so.port = ra.port;
  StartResult rb = b.start(so);
  CHECK(rb.success);
  CHECK_EQ(rb.port, ra.port);

  // Without reusePort a third server cannot take the port...
  auto sinkC = std::make_shared<QueueSink>();
  Server c(sinkC, 3);
  ServerOptions ex;
  ex.port = ra.port;
  StartResult rc = c.start(ex);
  CHECK(!rc.success);
  CHECK(rc.message.find("address already in use") != std::string::npos);

  std::vector<std::unique_ptr<rawpeer::Peer>> peers;
  for (int i = 0; i < 40; ++i) {
    auto p = std::make_unique<rawpeer::Peer>();
    CHECK(p->connectTo(ra.port) && p->handshake());
    peers.push_back(std::move(p));
  }
  // Every connection opened on one of the two; both got some.
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (a.connections().size() + b.connections().size() < 40 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  size_t na = a.connections().size(), nb = b.connections().size();
  CHECK_EQ(na + nb, size_t(40));
  CHECK(na > 0);
  CHECK(nb > 0);
  peers.clear();
  a.clear();
  b.clear();

  // ...and a reusePort server cannot join an exclusive one.
  auto sinkD = std::make_shared<QueueSink>();
  Server d(sinkD, 4);
  ServerOptions exclusive;
  exclusive.port = 0;
  StartResult rd = d.start(exclusive);
  CHECK(rd.success);
  auto sinkE = std::make_shared<QueueSink>();
  Server e(sinkE, 5);
  ServerOptions shared;
  shared.port = rd.port;
  shared.reusePort = true;
  StartResult re = e.start(shared);
  CHECK(!re.success);
  CHECK(re.message.find("address already in use") != std::string::npos);
  d.clear();
}

}  // namespace

int main() {
  testRegistry();
  testPublish();
  testPublishDeflate();
  testReusePort();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return check::finish();
}
