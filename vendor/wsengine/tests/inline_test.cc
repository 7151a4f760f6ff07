// Inline mode with the engine alone: a server and a client started on a loop
// this test runs itself (embedLoop) echo over loopback; every event reaches
// the sink on this thread and no IO thread is involved; no handle the engine
// creates keeps the loop alive (uv_loop_alive is 0 while both are open);
// a post from another thread runs on the loop; and after clear() and
// closeEmbeddedLoop() the loop closes (uv_loop_close refuses any handle still
// open: a leaked timer or socket would fail it).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "io_loop.h"
#include "wsengine/wsengine.h"

using namespace wsengine;

namespace {

struct Recorder : EventSink {
  std::thread::id loopThread;
  std::vector<Event> events;
  int offThread = 0;
  bool push(Event&& ev) override {
    if (std::this_thread::get_id() != loopThread) ++offThread;
    events.push_back(std::move(ev));
    return true;
  }
  int count(EventType t) const {
    int n = 0;
    for (const auto& e : events) n += e.type == t;
    return n;
  }
};

// Runs the loop until pred() or a deadline (a ref'd timer keeps it turning).
template <class Pred>
bool runUntil(uv_loop_t* loop, Pred pred, int ms = 5000) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 1, 1);
  auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  bool ok = false;
  while (std::chrono::steady_clock::now() < until) {
    uv_run(loop, UV_RUN_ONCE);
    if (pred()) {
      ok = true;
      break;
    }
  }
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

void testEchoOnOwnLoop() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::shared_ptr<IoLoop> inl = embedLoop(&loop);
  auto srvSink = std::make_shared<Recorder>();
  auto cliSink = std::make_shared<Recorder>();
  srvSink->loopThread = cliSink->loopThread = std::this_thread::get_id();
  {
    Server server(srvSink, 1);
    Client client(cliSink, 2);
    ServerOptions so;
    so.port = 0;
    so.loop = inl;
    StartResult sr = server.start(so);
    CHECK(sr.success);
    ClientOptions co;
    co.url = "ws://127.0.0.1:" + std::to_string(sr.port) + "/x";
    co.loop = inl;
    co.enableAutomaticReconnection = false;
    bool connected = false;
    client.start(co, [&](ConnectResult r) {
      connected = r.success;
      CHECK(std::this_thread::get_id() == srvSink->loopThread);
    });
    CHECK(runUntil(&loop, [&] { return connected && srvSink->count(EventType::Open) == 1; }));
    for (int i = 0; i < 100; ++i) {
      std::string m = "m" + std::to_string(i);
      CHECK(client.send(reinterpret_cast<const uint8_t*>(m.data()), m.size(), false).success);
    }
    // The server echoes from its own events, on this thread.
    size_t echoed = 0;
    CHECK(runUntil(&loop, [&] {
      for (; echoed < srvSink->events.size(); ++echoed) {
        const Event& e = srvSink->events[echoed];
        if (e.type != EventType::Message) continue;
        std::vector<uint64_t> to{e.conn};
        server.send(&to, reinterpret_cast<const uint8_t*>(e.data.data()), e.data.size(), false);
      }
      return cliSink->count(EventType::Message) == 100;
    }));
    int k = 0;
    for (const auto& e : cliSink->events) {
      if (e.type == EventType::Message) CHECK_EQ(e.data, "m" + std::to_string(k++));
    }
    // A post from another thread still runs, on this loop's thread.
    std::atomic<bool> ran{false};
    std::thread::id where;
    std::thread([&] { inl->post([&] { where = std::this_thread::get_id(); ran = true; }); }).join();
    CHECK(runUntil(&loop, [&] { return ran.load(); }));
    CHECK(where == srvSink->loopThread);

    // Nothing of the engine keeps the loop alive: with the server listening
    // and the client connected, no ref'd handle or request is left (uv_run
    // in its default mode would return at once).
    CHECK_EQ(uv_loop_alive(&loop), 0);

    client.stop();
    CHECK(runUntil(&loop, [&] {
      return cliSink->count(EventType::Close) == 1 && srvSink->count(EventType::Close) == 1;
    }));
    CHECK_EQ(srvSink->events.back().code, 1000);
    server.clear();
    client.clear();
  }
  CHECK_EQ(srvSink->offThread, 0);
  CHECK_EQ(cliSink->offThread, 0);
  closeEmbeddedLoop(inl);
  // Let the closed handles' callbacks run, then the loop must close.
  for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(uv_loop_close(&loop), 0);
  // A post after close is dropped, never touching the loop.
  bool late = false;
  inl->post([&] { late = true; });
  CHECK(!late);
}

// A server cleared while connections are open (the environment teardown
// path): every handle it had on the loop is closed at once, so the loop
// closes after one more turn.
void testClearWithOpenConnections() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::shared_ptr<IoLoop> inl = embedLoop(&loop);
  auto sink = std::make_shared<Recorder>();
  sink->loopThread = std::this_thread::get_id();
  auto cliSink = std::make_shared<Recorder>();
  cliSink->loopThread = sink->loopThread;
  {
    Server server(sink, 1);
    ServerOptions so;
    so.port = 0;
    so.loop = inl;
    so.heartbeat.pingInterval = 30;  // a ping timer per connection too
    StartResult sr = server.start(so);
    CHECK(sr.success);
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < 3; ++i) {
      clients.emplace_back(new Client(cliSink, 10 + i));
      ClientOptions co;
      co.url = "ws://127.0.0.1:" + std::to_string(sr.port);
      co.loop = inl;
      co.heartbeat.pingInterval = 30;
      clients.back()->start(co, [](ConnectResult) {});
    }
    CHECK(runUntil(&loop, [&] { return sink->count(EventType::Open) == 3; }));
    server.clear();
    for (auto& c : clients) c->clear();
  }
  closeEmbeddedLoop(inl);
  for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

// A client cleared while its host name is being resolved (a worker thread
// ending right after a start): the lookup runs off the embedder's loop, so
// nothing is pending there and the loop closes at once.
void testClearDuringLookup() {
  for (int i = 0; i < 20; ++i) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::shared_ptr<IoLoop> inl = embedLoop(&loop);
    auto sink = std::make_shared<Recorder>();
    sink->loopThread = std::this_thread::get_id();
    {
      Client client(sink, 1);
      ClientOptions co;
      co.url = "ws://localhost:1";
      co.loop = inl;
      client.start(co, [](ConnectResult) {});
      // One turn (a ref'd timer makes the loop run at all): the start runs
      // and the lookup begins.
      uv_timer_t keep;
      uv_timer_init(&loop, &keep);
      uv_timer_start(&keep, [](uv_timer_t*) {}, 60000, 0);
      uv_run(&loop, UV_RUN_NOWAIT);
      // No request of ours on this loop (a lookup's answer comes in a later
      // turn at the earliest, so it would still count here).
      CHECK_EQ(loop.active_reqs.count, 0u);
      uv_close(reinterpret_cast<uv_handle_t*>(&keep), nullptr);
      client.clear();
    }
    closeEmbeddedLoop(inl);
    uv_run(&loop, UV_RUN_NOWAIT);  // the closed handles' callbacks
    int rc = uv_loop_close(&loop);
    CHECK_EQ(rc, 0);
    if (rc != 0) {
      // (A request left on the loop: let it finish before the loop goes.)
      uv_run(&loop, UV_RUN_DEFAULT);
      uv_loop_close(&loop);
    }
    CHECK_EQ(sink->offThread, 0);
  }
  // Answers that come after the loop closed are dropped, not run.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

// A connected loopback TCP pair: {ours, the peer's}.
std::pair<int, int> tcpPair() {
  int lis = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  CHECK_EQ(bind(lis, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  CHECK_EQ(listen(lis, 1), 0);
  CHECK_EQ(getsockname(lis, reinterpret_cast<sockaddr*>(&a), &len), 0);
  int peer = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK_EQ(connect(peer, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  int ours = accept4(lis, nullptr, nullptr, SOCK_CLOEXEC);
  close(lis);
  return {ours, peer};
}

// What the peer's end reads now: 0 at EOF (our socket was closed), -1 with
// EAGAIN while our socket is still open and silent.
ssize_t peerReads(int peer) {
  fcntl(peer, F_SETFL, fcntl(peer, F_GETFL) | O_NONBLOCK);
  char buf[512];
  ssize_t n;
  // The close reaches the peer at once on loopback; a few tries for safety.
  for (int i = 0; i < 50; ++i) {
    n = read(peer, buf, sizeof buf);
    if (n >= 0) return n;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return n;
}

// A socket given to adopt() travels in posted functions: the one adopt()
// posts, then the one that hands it to the connection. When the embedder's
// loop closes (a worker thread's teardown) before they run, they are dropped:
// the socket must be closed with them, not leaked with the peer's
// connection left open.
void testAdoptDroppedAtTeardown() {
  for (int turns = 0; turns < 2; ++turns) {
    uv_loop_t loop;
    uv_loop_init(&loop);
    std::shared_ptr<IoLoop> inl = embedLoop(&loop);
    auto sink = std::make_shared<Recorder>();
    sink->loopThread = std::this_thread::get_id();
    auto pair = tcpPair();
    {
      Server server(sink, 1);
      ServerOptions so;
      so.noServer = true;
      so.loop = inl;
      CHECK(server.start(so).success);
      CHECK(server.adopt(pair.first, std::string()));
      // 0 turns: adopt()'s own post is dropped; 1 turn: it ran and posted
      // the hand-over, which is dropped.
      if (turns == 1) uv_run(&loop, UV_RUN_NOWAIT);
      closeEmbeddedLoop(inl);
      server.clear();
    }
    for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_EQ(uv_loop_close(&loop), 0);
    CHECK_EQ(peerReads(pair.second), 0);
    CHECK_EQ(sink->count(EventType::Open), 0);
    close(pair.second);
  }
}

}  // namespace

int main() {
  testEchoOnOwnLoop();
  testClearWithOpenConnections();
  testClearDuringLookup();
  testAdoptDroppedAtTeardown();
  return check::finish();
}
