// Server::adopt: a noServer server takes over TCP sockets something else
// accepted, with the bytes that something already read from them. Here a
// plain listening socket plays Node's HTTP server: it accepts, reads what the
// peer sent (the request and the frames written with it), and hands the
// socket and those bytes to the engine.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "connection.h"
#include "io_loop.h"
#include "raw_peer.h"
#include "settings.h"
#include "wsengine/wsengine.h"

using namespace wsengine;

namespace {

class Sink : public EventSink {
 public:
  bool push(Event&& ev) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(ev));
    cv_.notify_all();
    return true;
  }
  // Waits (bounded) until n events are in; returns a copy of them.
  std::vector<Event> wait(size_t n, int ms = 5000) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return events_.size() >= n; });
    std::vector<Event> out;
    for (auto& e : events_) {
      Event c;
      c.type = e.type;
      c.conn = e.conn;
      c.data = e.data;
      c.binary = e.binary;
      c.uri = e.uri;
      c.code = e.code;
      c.reason = e.reason;
      out.push_back(std::move(c));
    }
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
};

// A loopback listener standing in for the HTTP server.
struct Listener {
  int fd = -1;
  int port = 0;
  Listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a;
    std::memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~Listener() { ::close(fd); }
  // Accepts one socket and reads what has arrived within ms (at least want bytes).
  int acceptAndRead(std::string& got, size_t want) {
    int s = ::accept(fd, nullptr, nullptr);
    auto deadline = rawpeer::Clock::now() + std::chrono::seconds(5);
    char buf[4096];
    while (got.size() < want) {
      pollfd p{s, POLLIN, 0};
      if (::poll(&p, 1, rawpeer::msLeft(deadline)) <= 0) break;
      ssize_t r = ::recv(s, buf, sizeof buf, 0);
      if (r <= 0) break;
      got.append(buf, static_cast<size_t>(r));
    }
    return s;
  }
};

const char kRequest[] =
    "GET /adopted?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

std::string readHead(rawpeer::Peer& peer) {
  std::string h;
  auto deadline = rawpeer::Clock::now() + std::chrono::seconds(5);
  while (h.find("\r\n\r\n") == std::string::npos) {
    char c;
    if (!peer.readExact(&c, 1, deadline)) break;
    h.push_back(c);
  }
  return h;
}

bool fdClosed(int fd) { return ::fcntl(fd, F_GETFD) == -1 && errno == EBADF; }

// The request and two frames in one write, all read by the "HTTP server"
// before the hand-over: the engine answers 101 and delivers both messages,
// then serves the socket like any other (a send, a later frame).
void testAdoptWithReceivedBytes() {
  auto sink = std::make_shared<Sink>();
  Server server(sink, 7);
  ServerOptions so;
  so.noServer = true;
  so.port = 1;  // ignored
  StartResult st = server.start(so);
  CHECK(st.success);
  CHECK_EQ(st.port, 0);

  Listener l;
  rawpeer::Peer peer;
  CHECK(peer.connectTo(l.port));
  std::string first = std::string(kRequest) + rawpeer::clientFrame(0x1, "with the request") +
                      rawpeer::clientFrame(0x2, std::string("\x00\x01\x02", 3));
  CHECK(peer.sendAll(first.data(), first.size()));
  std::string received;
  int fd = l.acceptAndRead(received, first.size());
  CHECK_EQ(received.size(), first.size());
  CHECK(server.adopt(fd, received));

  std::string head = readHead(peer);
  CHECK(head.compare(0, 12, "HTTP/1.1 101") == 0);
  auto evs = sink->wait(3);
  CHECK_EQ(evs.size(), size_t(3));
  if (evs.size() < 3) return;
  CHECK(evs[0].type == EventType::Open);
  CHECK_EQ(evs[0].uri, std::string("/adopted?x=1"));
  CHECK(evs[1].type == EventType::Message);
  CHECK_EQ(evs[1].data, std::string("with the request"));
  CHECK(evs[2].type == EventType::Message && evs[2].binary);
  CHECK_EQ(evs[2].data, std::string("\x00\x01\x02", 3));
  CHECK_EQ(server.connections().size(), size_t(1));

  // served like an accepted connection: a send, a frame read from the socket
  const char msg[] = "from the engine";
  auto sent = server.send(nullptr, reinterpret_cast<const uint8_t*>(msg), sizeof msg - 1, false);
  CHECK(sent.size() == 1 && sent[0].success);
  uint8_t op = 0;
  bool fin = false;
  uint64_t len = 0;
  auto deadline = rawpeer::Clock::now() + std::chrono::seconds(5);
  CHECK(peer.readHeader(&op, &fin, &len, deadline));
  std::string payload(static_cast<size_t>(len), '\0');
  CHECK(peer.readExact(&payload[0], payload.size(), deadline));
  CHECK_EQ(payload, std::string(msg));
  std::string later = rawpeer::clientFrame(0x1, "later");
  CHECK(peer.sendAll(later.data(), later.size()));
  evs = sink->wait(4);
  CHECK(evs.size() >= 4 && evs[3].data == "later");

  // The stop sends 1001; this raw peer never answers a close, so the close
  // timeout ends it: no close frame came back, 1006 (RFC 6455 7.1.5).
  server.stop();
  evs = sink->wait(5);
  CHECK(evs.size() >= 5 && evs[4].type == EventType::Close && evs[4].code == 1006);
  if (evs.size() >= 5) CHECK_EQ(evs[4].reason, std::string("Close handshake timed out"));
}

// An invalid request in the received bytes gets the engine's own answer.
void testAdoptBadRequest() {
  auto sink = std::make_shared<Sink>();
  Server server(sink, 8);
  ServerOptions so;
  so.noServer = true;
  CHECK(server.start(so).success);
  Listener l;
  rawpeer::Peer peer;
  CHECK(peer.connectTo(l.port));
  std::string bad = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
  CHECK(peer.sendAll(bad.data(), bad.size()));
  std::string received;
  int fd = l.acceptAndRead(received, bad.size());
  CHECK(server.adopt(fd, received));
  std::string head = readHead(peer);
  CHECK(head.compare(0, 12, "HTTP/1.1 400") == 0);
  CHECK(sink->wait(1, 200).empty());  // no open, no event
  server.clear();
}

// A server that is not running refuses and closes the descriptor; noServer
// with TLS does not start; a second start is refused.
void testRefusals() {
  auto sink = std::make_shared<Sink>();
  Server server(sink, 9);
  int sv[2];
  CHECK(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  CHECK(!server.adopt(sv[0], "GET / HTTP/1.1\r\n\r\n"));
  CHECK(fdClosed(sv[0]));
  ::close(sv[1]);

  ServerOptions tls;
  tls.noServer = true;
  tls.tls.enabled = true;
  StartResult st = server.start(tls);
  CHECK(!st.success);
  CHECK(st.message.find("tls does not apply") != std::string::npos);

  ServerOptions so;
  so.noServer = true;
  CHECK(server.start(so).success);
  StartResult again = server.start(so);
  CHECK(!again.success);
  CHECK_EQ(again.message, std::string("Server is already running"));
  server.stop();
  int sv2[2];
  CHECK(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv2) == 0);
  CHECK(!server.adopt(sv2[0], std::string()));
  CHECK(fdClosed(sv2[0]));
  ::close(sv2[1]);
}

// A connection aborted before its socket came closes the socket it is then
// given, and does not keep itself: a stop() that lands while
// Server::adopt's hand-over is under way aborts the registered connection
// (no socket yet: it finishes and leaves the table) before the posted
// adopt() runs. Before the fix that adopt opened the socket and held the
// connection for good: the peer was never read and never closed.
void testAdoptAfterAbort() {
  int sv[2];
  CHECK(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
  auto settings = std::make_shared<ConnSettings>();
  settings->sink = std::make_shared<Sink>();
  IoLoop& loop = firstLoop();
  auto c = std::make_shared<Connection>(loop, 1, settings);
  bool adopted = true;
  loop.runSync([&] {
    c->abort();
    adopted = c->adopt(sv[0], false);
  });
  CHECK(!adopted);
  struct pollfd pfd = {sv[1], POLLIN, 0};
  CHECK(::poll(&pfd, 1, 2000) == 1);
  char b;
  CHECK_EQ(::recv(sv[1], &b, 1, MSG_DONTWAIT), 0);  // EOF: the engine closed its end
  long holders = 0;
  loop.runSync([&] {
    holders = c.use_count();  // the test's only, no hold of its own
    c.reset();
  });
  CHECK_EQ(holders, 1L);
  ::close(sv[1]);
}

}  // namespace

int main() {
  testAdoptAfterAbort();
  testAdoptWithReceivedBytes();
  testAdoptBadRequest();
  testRefusals();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return check::finish();
}
