// End-to-end engine test without Node: our server and our client on
// loopback, through the public API only. Also the cross-thread workload the
// ThreadSanitizer run exercises (sends from several threads while IO threads
// deliver events).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "check.h"
#include "queue_sink.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

using testsink::QueueSink;

bool isType(const Event& e, EventType t) { return e.type == t; }

// A free loopback port, found by a server that listened on it and was
// cleared: nothing listens there afterwards.
int closedPort() {
  Server probe(std::make_shared<QueueSink>(), 9);
  ServerOptions so;
  so.port = 0;
  int port = probe.start(so).port;
  probe.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return port;
}

ConnectResult startClient(Client& c, const ClientOptions& o) {
  std::promise<ConnectResult> p;
  auto f = p.get_future();
  c.start(o, [&p](ConnectResult r) { p.set_value(std::move(r)); });
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) return ConnectResult();
  return f.get();
}

void testEcho(bool deflate) {
  auto ssink = std::make_shared<QueueSink>();
  auto csink = std::make_shared<QueueSink>();
  Server server(ssink, 1);
  ServerOptions so;
  so.port = 0;
  so.deflate.enabled = deflate;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  CHECK(sr.port > 0);

  Client client(csink, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(sr.port) + "/path?x=1";
  co.deflate.enabled = deflate;
  co.enableAutomaticReconnection = false;
  ConnectResult cr = startClient(client, co);
  CHECK(cr.success);
  CHECK_EQ(cr.httpStatus, 101);

  Event open;
  CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Open); }, &open));
  CHECK_EQ(open.uri, std::string("/path?x=1"));
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Open); }, nullptr));
  uint64_t conn = open.conn;
  CHECK_EQ(server.connections().size(), size_t(1));

  // client -> server, several sizes
  for (size_t n : {size_t(0), size_t(125), size_t(126), size_t(65535), size_t(65536),
                   size_t(3 << 20)}) {
    std::string text(n, 'a');
    for (size_t i = 0; i < n; ++i) text[i] = static_cast<char>('a' + i % 26);
    SendResult r = client.send(reinterpret_cast<const uint8_t*>(text.data()), n, false);
    CHECK(r.success);
    CHECK_EQ(r.payloadSize, uint64_t(n));
    if (deflate && n >= 1024) CHECK(r.wireSize < n);
    Event m;
    CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Message); }, &m));
    CHECK_EQ(m.data.size(), n);
    CHECK(m.data == text);
    CHECK(!m.binary);
    // server -> client, binary
    std::vector<uint64_t> to{conn};
    auto rs = server.send(&to, reinterpret_cast<const uint8_t*>(text.data()), n, true);
    CHECK_EQ(rs.size(), size_t(1));
    CHECK(rs[0].success);
    Event back;
    CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Message); }, &back));
    CHECK(back.binary);
    CHECK(back.data == text);
  }

  // invalid UTF-8 as text is refused at send time
  const uint8_t bad[] = {0xC3, 0x28};
  CHECK(!client.send(bad, 2, false).success);

  client.stop(4000, "bye");
  Event sc, cc;
  CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Close); }, &sc));
  CHECK_EQ(sc.code, 4000);
  CHECK_EQ(sc.reason, std::string("bye"));
  CHECK(sc.remote);
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Close); }, &cc));
  CHECK_EQ(cc.code, 4000);
  CHECK(!cc.remote);
  CHECK(cc.terminal);
  server.stop();
}

void testServerStopAndRestart() {
  auto ssink = std::make_shared<QueueSink>();
  auto csink = std::make_shared<QueueSink>();
  Server server(ssink, 1);
  ServerOptions so;
  so.port = 0;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  Client client(csink, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(sr.port);
  co.enableAutomaticReconnection = false;
  CHECK(startClient(client, co).success);
  CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Open); }, nullptr));
  server.stop();
  Event sc, cc;
  CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Close); }, &sc));
  CHECK_EQ(sc.code, 1001);
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Close); }, &cc));
  CHECK_EQ(cc.code, 1001);
  CHECK(cc.remote);
  so.port = sr.port;
  StartResult again = server.start(so);
  CHECK(again.success);
  CHECK_EQ(again.port, sr.port);
  server.stop();
}

void testReconnect() {
  auto ssink = std::make_shared<QueueSink>();
  auto csink = std::make_shared<QueueSink>();
  // A port nobody listens on: the first attempts fail.
  int port = closedPort();
  Client client(csink, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(port);
  co.minWaitBetweenReconnectionRetries = 20;
  co.maxWaitBetweenReconnectionRetries = 200;
  ConnectResult cr = startClient(client, co);
  CHECK(!cr.success);
  CHECK(!cr.errorStr.empty());
  Event e1, e2;
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Error); }, &e1));
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Error); }, &e2));
  CHECK_EQ(e1.retries, 1);
  CHECK_EQ(e2.retries, 2);
  CHECK(e2.waitTime > e1.waitTime);
  CHECK(!e1.terminal);
  Server server(ssink, 1);
  ServerOptions so;
  so.port = port;
  CHECK(server.start(so).success);
  CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Open); }, nullptr));
  client.stop();
  server.stop();
}

// stop() returns before the IO thread has run the stop it posts. A retry
// that falls due in between must not start another attempt: once stop() has
// returned, the client must not connect again. The sink holds the IO thread
// inside the third error event (before that attempt's retry is scheduled)
// until the test thread has called stop() and opened a listener on the port,
// and longer than the retry's wait: libuv then runs the due retry timer before
// the posted stop, and the attempt it starts would reach the listener.
class GateSink : public EventSink {
 public:
  bool push(Event&& ev) override {
    if (ev.type != EventType::Error || ev.retries != 3) return true;
    std::unique_lock<std::mutex> lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(5), [this] { return released_; });
    return true;
  }
  bool waitEntered() {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [this] { return entered_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool released_ = false;
};

void testStopBeforeDueRetry() {
  int port = closedPort();
  CHECK(port > 0);
  auto gate = std::make_shared<GateSink>();
  Client client(gate, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(port);
  co.minWaitBetweenReconnectionRetries = 5;
  co.maxWaitBetweenReconnectionRetries = 5;
  client.start(co, [](ConnectResult) {});
  CHECK(gate->waitEntered());
  client.stop();
  CHECK(!client.active());

  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  CHECK(lfd >= 0);
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK_EQ(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  CHECK_EQ(::listen(lfd, 16), 0);
  // Past the 5 ms wait, then let the IO thread go on.
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  gate->release();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  int accepted = 0;
  for (;;) {
    int fd = ::accept(lfd, nullptr, nullptr);
    if (fd < 0) break;
    ++accepted;
    ::close(fd);
  }
  CHECK_EQ(accepted, 0);
  ::close(lfd);
}

// Sends from several threads at once while the IO threads deliver: the
// workload for ThreadSanitizer.
void testConcurrentSends() {
  auto ssink = std::make_shared<QueueSink>();
  auto csink = std::make_shared<QueueSink>();
  Server server(ssink, 1);
  ServerOptions so;
  so.port = 0;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  const int kClients = 4, kMsgs = 200;
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.emplace_back(new Client(csink, 10 + i));
    ClientOptions co;
    co.url = "ws://127.0.0.1:" + std::to_string(sr.port);
    co.enableAutomaticReconnection = false;
    CHECK(startClient(*clients.back(), co).success);
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; k < kMsgs; ++k) {
        std::string s = "m" + std::to_string(k);
        clients[i]->send(reinterpret_cast<const uint8_t*>(s.data()), s.size(), false);
      }
    });
  }
  threads.emplace_back([&] {
    for (int k = 0; k < kMsgs; ++k) {
      std::string s = "b" + std::to_string(k);
      server.send(nullptr, reinterpret_cast<const uint8_t*>(s.data()), s.size(), true);
    }
  });
  for (auto& t : threads) t.join();
  int got = 0;
  while (got < kClients * kMsgs &&
         ssink->waitFor([](const Event& e) { return isType(e, EventType::Message); }, nullptr))
    ++got;
  CHECK_EQ(got, kClients * kMsgs);
  for (auto& c : clients) c->clear();
  server.clear();
}

// Corked sends queue and are written at uncork, in order, per connection.
void testCork() {
  auto ssink = std::make_shared<QueueSink>();
  auto csink = std::make_shared<QueueSink>();
  Server server(ssink, 1);
  ServerOptions so;
  so.port = 0;
  StartResult sr = server.start(so);
  CHECK(sr.success);
  Client client(csink, 2);
  ClientOptions co;
  co.url = "ws://127.0.0.1:" + std::to_string(sr.port);
  co.enableAutomaticReconnection = false;
  CHECK(startClient(client, co).success);
  CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Open); }, nullptr));
  const int kMsgs = 500;
  cork();
  cork();  // nested: only the outer uncork writes
  for (int k = 0; k < kMsgs; ++k) {
    std::string s = std::to_string(k);
    CHECK(server.send(nullptr, reinterpret_cast<const uint8_t*>(s.data()), s.size(), false)[0].success);
    CHECK(client.send(reinterpret_cast<const uint8_t*>(s.data()), s.size(), true).success);
  }
  uncork();
  CHECK(server.bufferedAmount(server.connections()[0]) > 0);  // still queued
  uncork();
  for (int k = 0; k < kMsgs; ++k) {
    Event a, b;
    CHECK(csink->waitFor([](const Event& e) { return isType(e, EventType::Message); }, &a));
    CHECK(ssink->waitFor([](const Event& e) { return isType(e, EventType::Message); }, &b));
    CHECK_EQ(a.data, std::to_string(k));
    CHECK_EQ(b.data, std::to_string(k));
  }
  client.stop();
  server.stop();
}

}  // namespace

int main() {
  testCork();
  testEcho(false);
  testEcho(true);
  testServerStopAndRestart();
  testReconnect();
  testStopBeforeDueRetry();
  testConcurrentSends();
  // Let IO threads finish closing before exit.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
