// Connections that outlive their server object. A connection reaches its
// owner (ServerImpl) through the per-start ConnSettings' weak pointer instead
// of holding it, so destroying a Server with connections open (or still in
// their handshake) may free the server before its connections finish closing
// on their own loops, with no owner left to report to. They must still
// close their sockets, free themselves (each holds the start's settings, and
// those hold the event sink: the sink going is the sign) and touch nothing of
// the freed server. Freed memory is filled with a pattern (glibc M_PERTURB)
// so that a use after free reads garbage instead of passing by luck; the ASan
// build of the engine tests (WSENGINE_SANITIZE) catches it outright.
#include <malloc.h>
#include <poll.h>
#include <sys/socket.h>
#include <uv.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "check.h"
#include "io_loop.h"
#include "raw_peer.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using rawpeer::Clock;
using rawpeer::Peer;

namespace {

class CountingSink : public EventSink {
 public:
  bool push(Event&& ev) override {
    if (ev.type == EventType::Open) opens.fetch_add(1);
    return true;
  }
  std::atomic<int> opens{0};
};

// True once the engine has closed the socket (end of stream or reset);
// whatever arrives before that (a close frame) is read and dropped. False
// when the socket is still open at the deadline.
bool closedByServer(Peer& p, Clock::time_point deadline) {
  char buf[4096];
  for (;;) {
    pollfd pfd{p.fd(), POLLIN, 0};
    int pr = ::poll(&pfd, 1, rawpeer::msLeft(deadline));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return false;
    ssize_t r = ::recv(p.fd(), buf, sizeof buf, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return true;
  }
}

bool waitExpired(const std::weak_ptr<CountingSink>& weak) {
  for (int k = 0; k < 400 && !weak.expired(); ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return weak.expired();
}

// `open` peers finish the opening handshake, `waiting` only connect (their
// connections are still in the handshake); then the Server is destroyed,
// after a graceful stop() when `stopFirst` (close frames queued, then the
// destructor's hard stop on top of them).
void testServerDestroyedWithConnections(int open, int waiting, bool stopFirst) {
  auto sink = std::make_shared<CountingSink>();
  std::weak_ptr<CountingSink> weak = sink;
  std::vector<std::unique_ptr<Peer>> peers;
  {
    Server server(sink, 7);
    ServerOptions so;
    so.port = 0;
    StartResult st = server.start(so);
    CHECK(st.success);
    for (int i = 0; i < open + waiting; ++i) {
      peers.emplace_back(new Peer);
      CHECK(peers.back()->connectTo(st.port));
      if (i < open) CHECK(peers.back()->handshake());
    }
    // Every open connection has told its owner (onConnOpen ran): the server
    // holds them in its table when it goes.
    for (int k = 0; k < 400 && sink->opens.load() < open; ++k)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    CHECK_EQ(sink->opens.load(), open);
    sink.reset();
    if (stopFirst) server.stop(1001, "going away");
  }
  auto deadline = Clock::now() + std::chrono::seconds(5);
  for (auto& p : peers) CHECK(closedByServer(*p, deadline));
  // Every connection freed itself (the last holders of the settings, and so
  // of the sink, are the connections).
  CHECK(waitExpired(weak));
}

// Turns the embedder's loop until pred() or a deadline (a ref'd timer keeps
// it turning: the engine's handles on an embedded loop are unref'd).
template <class Pred>
bool runUntil(uv_loop_t* loop, Pred pred) {
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 1, 1);
  auto until = Clock::now() + std::chrono::seconds(5);
  bool ok = false;
  while (Clock::now() < until && !(ok = pred())) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return ok;
}

// The same on a loop this test runs itself (inline mode), where the order is
// fixed and the owner surely goes first: a graceful stop closes the listener
// (its close callback drops the listener's hold on the server) and sends each
// connection's close frame; the peers never answer, so the connections wait
// in their close handshake. Then the Server is destroyed: its hard stop
// aborts each connection and the last hold on the server goes with it, so
// the connections' close callbacks on the next turn find no owner. Every
// socket still closes, every connection frees itself, and the loop closes
// with no handle of the server's left on it.
void testInlineOwnerGoneFirst(int open) {
  static const char kReq[] =
      "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::shared_ptr<IoLoop> inl = embedLoop(&loop);
  auto sink = std::make_shared<CountingSink>();
  std::weak_ptr<CountingSink> weak = sink;
  std::vector<std::unique_ptr<Peer>> peers;
  {
    Server server(sink, 9);
    ServerOptions so;
    so.port = 0;
    so.loop = inl;
    StartResult st = server.start(so);
    CHECK(st.success);
    // The kernel completes the TCP connection and keeps the request until
    // the loop turns: the engine answers it in runUntil.
    for (int i = 0; i < open; ++i) {
      peers.emplace_back(new Peer);
      CHECK(peers.back()->connectTo(st.port));
      CHECK(peers.back()->sendAll(kReq, sizeof kReq - 1));
    }
    CHECK(runUntil(&loop, [&] { return sink->opens.load() == open; }));
    sink.reset();
    server.stop(1001, "going away");
    int turns = 0;
    runUntil(&loop, [&] { return ++turns > 5; });
  }
  CHECK(runUntil(&loop, [&] { return weak.expired(); }));
  auto deadline = Clock::now() + std::chrono::seconds(5);
  for (auto& p : peers) CHECK(closedByServer(*p, deadline));
  closeEmbeddedLoop(inl);
  for (int i = 0; i < 10; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

}  // namespace

int main() {
  mallopt(M_PERTURB, 65);
  for (int round = 0; round < 20; ++round) {
    testServerDestroyedWithConnections(8, 0, false);
    testServerDestroyedWithConnections(4, 4, false);
    testServerDestroyedWithConnections(6, 2, true);
    testInlineOwnerGoneFirst(5);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return check::finish();
}
