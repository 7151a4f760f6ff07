// The client's routes to a server other than straight to it: through an HTTP
// proxy (a fake one here, on a thread: it records the CONNECT head, answers
// as told and then relays bytes to the real server) and by following
// redirects (a fake server answering 302). The suites in test/ do the same
// against tinyproxy and squid; these run with the engine alone.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <strings.h>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "check.h"
#include "queue_sink.h"
#include "proxy.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

using testsink::QueueSink;

ConnectResult startClient(Client& c, const ClientOptions& o) {
  std::promise<ConnectResult> p;
  auto f = p.get_future();
  c.start(o, [&p](ConnectResult r) { p.set_value(std::move(r)); });
  if (f.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ConnectResult timedOut;
    timedOut.errorStr = "test: no start result within 10 s";
    return timedOut;
  }
  return f.get();
}

int connectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    fd = -1;
  }
  return fd;
}

// One connection's worth of a fake peer on a thread: accepts, records the
// request head, answers `reply` (nothing when empty: it just closes), then,
// with relayPort, relays bytes both ways to 127.0.0.1:relayPort until either
// side closes. Bounded: every wait polls with a timeout and checks stop_.
class FakePeer {
 public:
  // forwardHead: the head read is relayed too (a server's reply before the
  // real one), not consumed (a proxy's CONNECT).
  explicit FakePeer(std::string reply, int relayPort = 0, bool forwardHead = false)
      : reply_(std::move(reply)), relayPort_(relayPort), forwardHead_(forwardHead) {
    listen_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a;
    std::memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(listen_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(listen_, 4);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakePeer() {
    stop_ = true;
    thread_.join();
    ::close(listen_);
  }
  int port() const { return port_; }
  bool accepted() const { return accepted_; }
  std::string head() {
    std::lock_guard<std::mutex> lock(mu_);
    return head_;
  }

 private:
  bool readable(int fd, int ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, ms) > 0;
  }
  void run() {
    int fd = -1;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!stop_ && Clock::now() < deadline) {
      if (readable(listen_, 50)) {
        fd = ::accept(listen_, nullptr, nullptr);
        break;
      }
    }
    if (fd < 0) return;
    accepted_ = true;
    std::string h;
    char c;
    while (!stop_ && Clock::now() < deadline && h.find("\r\n\r\n") == std::string::npos) {
      if (!readable(fd, 50)) continue;
      if (::recv(fd, &c, 1, 0) != 1) break;
      h.push_back(c);
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      head_ = h;
    }
    if (!reply_.empty()) ::send(fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);
    int up = relayPort_ > 0 && !reply_.empty() ? connectLoopback(relayPort_) : -1;
    if (up >= 0 && forwardHead_) ::send(up, h.data(), h.size(), MSG_NOSIGNAL);
    char buf[16384];
    while (up >= 0 && !stop_) {
      pollfd p[2] = {{fd, POLLIN, 0}, {up, POLLIN, 0}};
      if (::poll(p, 2, 50) <= 0) continue;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
        if (n <= 0 || ::send(p[1 - i].fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL) != n) done = true;
      }
      if (done) break;
    }
    if (up >= 0) ::close(up);
    ::close(fd);
  }

  std::string reply_;
  int relayPort_;
  bool forwardHead_;
  int listen_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<bool> accepted_{false};
  std::mutex mu_;
  std::string head_;
  std::thread thread_;
};

bool headerIn(const Headers& hs, const char* name, std::string* value = nullptr) {
  for (const auto& h : hs) {
    if (strcasecmp(h.first.c_str(), name) == 0) {
      if (value) *value = h.second;
      return true;
    }
  }
  return false;
}

struct Target {
  std::shared_ptr<QueueSink> sink = std::make_shared<QueueSink>();
  Server server{sink, 1};
  int port = 0;
  Target() {
    ServerOptions so;
    so.port = 0;
    port = server.start(so).port;
  }
};

ClientOptions clientFor(const std::string& url) {
  ClientOptions co;
  co.url = url;
  co.enableAutomaticReconnection = false;
  co.timeout = 5;
  return co;
}

void testThroughProxy() {
  Target t;
  CHECK(t.port > 0);
  FakePeer proxy("HTTP/1.1 200 Connection established\r\n\r\n", t.port);
  auto sink = std::make_shared<QueueSink>();
  Client client(sink, 2);
  ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(t.port) + "/via?x=1");
  co.proxy = "http://u:p@127.0.0.1:" + std::to_string(proxy.port());
  ConnectResult cr = startClient(client, co);
  CHECK(cr.success);
  CHECK_EQ(cr.httpStatus, 101);
  CHECK_EQ(cr.errorStr, std::string());
  // The exact CONNECT request, with Basic credentials for "u:p".
  CHECK_EQ(proxy.head(), buildConnectRequest("127.0.0.1", t.port, false, "Basic dTpw"));
  Event open;
  CHECK(t.sink->waitFor(EventType::Open, &open));
  CHECK_EQ(open.uri, std::string("/via?x=1"));
  // The tunnel carries frames both ways.
  CHECK(client.send(reinterpret_cast<const uint8_t*>("up"), 2, false).success);
  Event m;
  CHECK(t.sink->waitFor(EventType::Message, &m));
  CHECK_EQ(m.data, std::string("up"));
  std::vector<uint64_t> to{open.conn};
  CHECK(t.server.send(&to, reinterpret_cast<const uint8_t*>("down"), 4, false)[0].success);
  CHECK(sink->waitFor(EventType::Message, &m));
  CHECK_EQ(m.data, std::string("down"));
  client.clear();
  t.server.clear();
}

void testProxyRefusals() {
  {
    FakePeer proxy("HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("wss://example.invalid/");
    co.proxy = "http://127.0.0.1:" + std::to_string(proxy.port());
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK_EQ(cr.httpStatus, 407);
    CHECK_EQ(cr.errorStr, std::string("proxy refused CONNECT: 407 Proxy Authentication Required"));
    // The refusal's headers, for the scheme the proxy asks for.
    std::string scheme;
    CHECK(headerIn(cr.headers, "Proxy-Authenticate", &scheme) && scheme == "Basic");
    // No credentials: no Proxy-Authorization; the target as host:port.
    CHECK_EQ(proxy.head(), std::string("CONNECT example.invalid:443 HTTP/1.1\r\nHost: example.invalid:443\r\n\r\n"));
    Event err;
    CHECK(sink->waitFor(EventType::Error, &err));
    CHECK_EQ(err.httpStatus, 407);
    CHECK(err.terminal);
  }
  {
    // Bytes behind the 200 cannot be the target's.
    FakePeer proxy("HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 101 Switching Protocols\r\n\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://example.invalid/");
    co.proxy = "http://127.0.0.1:" + std::to_string(proxy.port());
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK_EQ(cr.errorStr, std::string("proxy sent data after its reply to CONNECT"));
  }
  {
    // Not HTTP at all.
    FakePeer proxy("SSH-2.0-OpenSSH_9.2\r\n\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://example.invalid/");
    co.proxy = "http://127.0.0.1:" + std::to_string(proxy.port());
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK_EQ(cr.httpStatus, 0);
    CHECK(cr.errorStr.find("bad reply from proxy to CONNECT") == 0);
  }
  {
    // Nobody listening where the proxy should be.
    int port;
    {
      FakePeer gone("");
      port = gone.port();
    }
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://example.invalid/");
    co.proxy = "http://127.0.0.1:" + std::to_string(port);
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK(cr.errorStr.find("Cannot connect to proxy 127.0.0.1:" + std::to_string(port) + ": ") == 0);
  }
}

void testProxyFromEnv() {
  Target t;
  FakePeer proxy("HTTP/1.1 200 OK\r\n\r\n", t.port);
  std::string url = "ws://127.0.0.1:" + std::to_string(t.port) + "/";
  {
    // NO_PROXY names the host: direct.
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor(url);
    co.proxy = "env";
    co.proxyEnv.httpProxyUpper = "127.0.0.1:" + std::to_string(proxy.port());
    co.proxyEnv.noProxyUpper = "localhost,127.0.0.1";
    CHECK(startClient(client, co).success);
    CHECK(!proxy.accepted());
    client.clear();
  }
  {
    // Only HTTPS_PROXY set: a ws:// url goes direct.
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor(url);
    co.proxy = "env";
    co.proxyEnv.httpsProxy = "http://127.0.0.1:" + std::to_string(proxy.port());
    CHECK(startClient(client, co).success);
    CHECK(!proxy.accepted());
    client.clear();
  }
  {
    // http_proxy (no scheme: http://) for ws://.
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor(url);
    co.proxy = "env";
    co.proxyEnv.httpProxy = "127.0.0.1:" + std::to_string(proxy.port());
    co.proxyEnv.noProxy = "example.com";
    ConnectResult cr = startClient(client, co);
    CHECK(cr.success);
    CHECK(proxy.accepted());
    CHECK(proxy.head().find("CONNECT 127.0.0.1:" + std::to_string(t.port) + " HTTP/1.1\r\n") == 0);
    client.clear();
  }
  {
    // A variable that is not an http:// proxy fails the start and is named.
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor(url);
    co.proxy = "env";
    co.proxyEnv.httpProxyUpper = "socks5://127.0.0.1:1";
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK(cr.errorStr.find("(from HTTP_PROXY)") != std::string::npos);
  }
  t.server.clear();
}

void testRedirect() {
  Target t;
  std::string finalUrl = "ws://127.0.0.1:" + std::to_string(t.port) + "/landed";
  {
    FakePeer redirector("HTTP/1.1 302 Found\r\nLocation: " + finalUrl + "\r\n\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(redirector.port()) + "/start");
    co.followRedirects = true;
    co.extraHeaders = {{"Authorization", "Bearer t"}, {"Cookie", "c=1"}, {"X-Keep", "k"}};
    ConnectResult cr = startClient(client, co);
    CHECK(cr.success);
    CHECK_EQ(cr.redirects, 1);
    CHECK_EQ(cr.uri, finalUrl);
    // The first hop carried the credentials; the other port did not get them.
    CHECK(redirector.head().find("Authorization: Bearer t\r\n") != std::string::npos);
    Event open;
    CHECK(t.sink->waitFor(EventType::Open, &open));
    CHECK_EQ(open.uri, std::string("/landed"));
    std::string v;
    CHECK(headerIn(open.headers, "X-Keep", &v) && v == "k");
    CHECK(!headerIn(open.headers, "Authorization"));
    CHECK(!headerIn(open.headers, "Cookie"));
    Event copen;
    CHECK(sink->waitFor(EventType::Open, &copen));
    CHECK_EQ(copen.uri, finalUrl);
    client.clear();
  }
  {
    FakePeer redirector("HTTP/1.1 302 Found\r\nLocation: " + finalUrl + "\r\n\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(redirector.port()) + "/start");
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK_EQ(cr.httpStatus, 302);
    CHECK_EQ(cr.redirects, 0);
    CHECK(cr.errorStr.find("a redirect to '" + finalUrl + "'; followRedirects is off") != std::string::npos);
  }
  t.server.clear();
}

// RFC 9110 §15.2: interim responses before the final one are read past, from
// a proxy (100 before its 200 to CONNECT) and from a server (103 Early Hints
// before its 101).
void testInterimResponses() {
  Target t;
  {
    FakePeer proxy("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Connection established\r\n\r\n", t.port);
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(t.port) + "/");
    co.proxy = "http://127.0.0.1:" + std::to_string(proxy.port());
    ConnectResult cr = startClient(client, co);
    CHECK(cr.success);
    CHECK_EQ(cr.httpStatus, 101);
    Event open;
    CHECK(t.sink->waitFor(EventType::Open, &open));
    client.clear();
  }
  {
    FakePeer early("HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n", t.port, true);
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ConnectResult cr = startClient(client, clientFor("ws://127.0.0.1:" + std::to_string(early.port()) + "/hints"));
    CHECK(cr.success);
    CHECK_EQ(cr.httpStatus, 101);
    Event open;
    CHECK(t.sink->waitFor(EventType::Open, &open));
    CHECK_EQ(open.uri, std::string("/hints"));
    client.clear();
  }
  {
    // Only interim responses, 22 KB of them: together they may take what one
    // head may (maxHeaderSize, 16 KiB by default). Before, the client read on
    // until the start's timeout.
    std::string many;
    for (int i = 0; i < 400; ++i) many += "HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n";
    FakePeer endless(many);
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(endless.port()) + "/");
    co.timeout = 8;
    auto t0 = Clock::now();
    ConnectResult cr = startClient(client, co);
    CHECK(!cr.success);
    CHECK_EQ(cr.errorStr, std::string("Interim (1xx) responses over maxHeaderSize (16384 bytes)"));
    CHECK(Clock::now() - t0 < std::chrono::seconds(4));
    client.clear();
  }
  {
    // A head over maxHeaders says which bound it crossed (the parser's
    // words), not only "too large".
    std::string head = "HTTP/1.1 101 Switching Protocols\r\n";
    for (int i = 0; i < 150; ++i) head += "X-H" + std::to_string(i) + ": v\r\n";
    FakePeer many(head + "\r\n");
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ConnectResult cr = startClient(client, clientFor("ws://127.0.0.1:" + std::to_string(many.port()) + "/"));
    CHECK(!cr.success);
    CHECK_EQ(cr.errorStr,
             std::string("Response header too large: Too many headers (maxHeaderSize 16384, maxHeaders 100)"));
    client.clear();
  }
  t.server.clear();
}

// What a server put in its status line reaches a message only as printable
// text (control bytes could rewrite a terminal or forge log lines).
void testReasonInMessages() {
  FakePeer refuser(std::string("HTTP/1.1 403 Forbidden\x1b[2J\x07\0!\r\nContent-Length: 0\r\n\r\n", 52));
  auto sink = std::make_shared<QueueSink>();
  Client client(sink, 2);
  ConnectResult cr = startClient(client, clientFor("ws://127.0.0.1:" + std::to_string(refuser.port()) + "/"));
  CHECK(!cr.success);
  CHECK_EQ(cr.httpStatus, 403);
  CHECK_EQ(cr.errorStr, std::string("Expected HTTP 101 response but got 403 Forbidden?[2J?" "?!"));
}

// Extra headers that name what the request writes itself are not sent a
// second time: a second Sec-WebSocket-Version reads "13, 13" (426 from our
// own server), a second Host gets a 400 from most; Host and User-Agent given
// replace the defaults.
void testOwnedHeadersOnTheWire() {
  Target t;
  FakePeer peek("HTTP/1.1 418 Teapot\r\nContent-Length: 0\r\n\r\n");
  ClientOptions co = clientFor("ws://127.0.0.1:" + std::to_string(t.port) + "/");
  co.extraHeaders = {{"Sec-WebSocket-Version", "13"}, {"Host", "virtual.example"}, {"User-Agent", "probe/1"},
                     {"Connection", "keep-alive"}};
  {
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    ConnectResult cr = startClient(client, co);
    CHECK(cr.success);
    CHECK_EQ(cr.httpStatus, 101);
    Event open;
    CHECK(t.sink->waitFor(EventType::Open, &open));
    std::string v;
    CHECK(headerIn(open.headers, "Host", &v) && v == "virtual.example");
    CHECK(headerIn(open.headers, "User-Agent", &v) && v == "probe/1");
    CHECK(headerIn(open.headers, "Sec-WebSocket-Version", &v) && v == "13");
    client.clear();
  }
  {
    auto sink = std::make_shared<QueueSink>();
    Client client(sink, 2);
    co.url = "ws://127.0.0.1:" + std::to_string(peek.port()) + "/";
    startClient(client, co);
    std::string head = peek.head();
    CHECK_EQ(head.find("Host: virtual.example\r\n"), head.rfind("Host:"));
    CHECK(head.find("Host: 127.0.0.1") == std::string::npos);
    CHECK_EQ(head.find("Sec-WebSocket-Version: 13\r\n"), head.rfind("Sec-WebSocket-Version"));
    CHECK(head.find("keep-alive") == std::string::npos);
    CHECK(head.find("ix-websocket") == std::string::npos);
  }
  t.server.clear();
}

}  // namespace

int main() {
  testThroughProxy();
  testProxyRefusals();
  testProxyFromEnv();
  testRedirect();
  testInterimResponses();
  testReasonInMessages();
  testOwnedHeadersOnTheWire();
  return check::finish();
}
