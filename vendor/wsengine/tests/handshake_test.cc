// The owner's part of the opening and closing handshakes, from raw loopback
// peers on two IO threads: subprotocol choice, allowedOrigins (403 without
// asking the owner), verifyClient (the Verify event, answerVerify accepting
// with headers and a protocol or refusing with a status, frames behind the
// request held until the 101, handshakeTimeout while the owner is silent, a
// late answer ignored) and closeReplyOnAck (the close reply waits for
// ackClose, so a reply sent before it precedes the close frame; or for the
// close timeout).
#include <sys/socket.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "check.h"
#include "queue_sink.h"
#include "raw_peer.h"
#include "wsengine/wsengine.h"

using namespace wsengine;
using rawpeer::Clock;
using rawpeer::Peer;

namespace {

using testsink::QueueSink;

std::string request(const std::string& extra) {
  return "GET /h?x=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

// The HTTP head the server wrote, "" when none came before the deadline.
std::string readHead(Peer& p, int ms = 3000) {
  std::string head;
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  while (head.find("\r\n\r\n") == std::string::npos) {
    char c;
    if (!p.readExact(&c, 1, deadline)) return std::string();
    head.push_back(c);
  }
  return head;
}

// One unmasked frame from the server: opcode and payload; false on timeout.
bool readFrame(Peer& p, uint8_t& op, std::string& payload, int ms = 3000) {
  auto deadline = Clock::now() + std::chrono::milliseconds(ms);
  bool fin;
  uint64_t len;
  if (!p.readHeader(&op, &fin, &len, deadline)) return false;
  payload.assign(static_cast<size_t>(len), '\0');
  return len == 0 || p.readExact(&payload[0], payload.size(), deadline);
}

int localPort(Peer& p) {
  sockaddr_in a;
  socklen_t n = sizeof a;
  getsockname(p.fd(), reinterpret_cast<sockaddr*>(&a), &n);
  return ntohs(a.sin_port);
}

void testVerifyAccept() {
  auto sink = std::make_shared<QueueSink>();
  Server s(sink, 1);
  ServerOptions so;
  so.port = 0;
  so.protocols = {"b", "c"};
  so.verifyClient = true;
  CHECK(s.start(so).success);
  Peer p;
  CHECK(p.connectTo(s.port()));
  std::string req = request("Sec-WebSocket-Protocol: a, c, b\r\nOrigin: https://o.example\r\n") +
                    rawpeer::clientFrame(0x1, "behind the head");
  CHECK(p.sendAll(req.data(), req.size()));
  Event ev;
  CHECK(sink->next(ev));
  CHECK(ev.type == EventType::Verify);
  CHECK_EQ(ev.uri, "/h?x=1");
  CHECK(ev.peer != nullptr);
  if (!ev.peer) return;
  CHECK_EQ(ev.peer->offered.size(), size_t(3));
  CHECK_EQ(ev.peer->protocol, "c");  // the first of the offer the server speaks
  CHECK_EQ(ev.peer->origin, "https://o.example");
  CHECK_EQ(ev.peer->remoteAddress, "127.0.0.1");
  CHECK_EQ(ev.peer->remotePort, localPort(p));
  // Nothing is answered while the owner decides.
  CHECK_EQ(readHead(p, 200), "");
  VerifyAnswer a;
  a.accept = true;
  a.headers = {{"Set-Cookie", "sid=1"}};
  a.chooseProtocol = true;
  a.protocol = "b";
  s.answerVerify(ev.conn, a);
  std::string head = readHead(p);
  CHECK(head.compare(0, 12, "HTTP/1.1 101") == 0);
  CHECK(head.find("\r\nSec-WebSocket-Protocol: b\r\n") != std::string::npos);
  CHECK(head.find("\r\nSet-Cookie: sid=1\r\n") != std::string::npos);
  CHECK(sink->next(ev));
  CHECK(ev.type == EventType::Open);
  CHECK(ev.peer && ev.peer->protocol == "b");
  CHECK(sink->next(ev));
  CHECK(ev.type == EventType::Message);
  CHECK_EQ(ev.data, "behind the head");
  s.clear();
}

void testVerifyRefuseAndTimeout() {
  auto sink = std::make_shared<QueueSink>();
  Server s(sink, 1);
  ServerOptions so;
  so.port = 0;
  so.verifyClient = true;
  so.limits.handshakeTimeout = 0.4;
  CHECK(s.start(so).success);
  {
    Peer p;
    CHECK(p.connectTo(s.port()));
    std::string req = request("") + rawpeer::clientFrame(0x1, "never delivered");
    CHECK(p.sendAll(req.data(), req.size()));
    Event ev;
    CHECK(sink->next(ev));
    CHECK(ev.type == EventType::Verify);
    VerifyAnswer a;
    a.status = 403;
    a.message = "go away";
    s.answerVerify(ev.conn, a);
    std::string head = readHead(p);
    CHECK(head.compare(0, 12, "HTTP/1.1 403") == 0);
  }
  {
    Peer p;
    CHECK(p.connectTo(s.port()));
    std::string req = request("");
    CHECK(p.sendAll(req.data(), req.size()));
    Event ev;
    CHECK(sink->next(ev));
    CHECK(ev.type == EventType::Verify);
    auto t0 = Clock::now();
    // No answer: the handshake deadline closes it, without an answer.
    char c;
    CHECK(!p.readExact(&c, 1, Clock::now() + std::chrono::seconds(3)));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    CHECK(ms >= 300 && ms < 2500);
    VerifyAnswer late;
    late.accept = true;
    s.answerVerify(ev.conn, late);  // gone: ignored
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_EQ(sink->size(), size_t(0));  // no open, message or close for either
  s.clear();
}

void testAllowedOrigins() {
  auto sink = std::make_shared<QueueSink>();
  Server s(sink, 1);
  ServerOptions so;
  so.port = 0;
  so.allowedOrigins = {"https://app.example"};
  so.verifyClient = true;  // not asked for a refused origin
  CHECK(s.start(so).success);
  Peer bad;
  CHECK(bad.connectTo(s.port()));
  std::string req = request("Origin: https://evil.example\r\n");
  CHECK(bad.sendAll(req.data(), req.size()));
  CHECK(readHead(bad).compare(0, 12, "HTTP/1.1 403") == 0);
  Peer good;
  CHECK(good.connectTo(s.port()));
  req = request("Origin: HTTPS://APP.example\r\n");
  CHECK(good.sendAll(req.data(), req.size()));
  Event ev;
  CHECK(sink->next(ev));
  CHECK(ev.type == EventType::Verify);
  CHECK(sink->size() == 0);
  s.clear();
}

void testCloseReplyOnAck() {
  auto sink = std::make_shared<QueueSink>();
  Server s(sink, 1);
  ServerOptions so;
  so.port = 0;
  so.closeReplyOnAck = true;
  CHECK(s.start(so).success);
  for (bool ack : {true, false}) {
    Peer p;
    CHECK(p.connectTo(s.port()));
    CHECK(p.handshake());
    std::string frames = rawpeer::clientFrame(0x1, "question") +
                         rawpeer::clientFrame(0x8, std::string("\x03\xe8", 2));
    CHECK(p.sendAll(frames.data(), frames.size()));
    Event ev;
    CHECK(sink->next(ev) && ev.type == EventType::Open);
    uint64_t conn = ev.conn;
    CHECK(sink->next(ev) && ev.type == EventType::Message);
    CHECK(sink->next(ev) && ev.type == EventType::Closing);
    uint8_t op;
    std::string payload;
    CHECK(!readFrame(p, op, payload, 200));  // the reply waits for the owner
    std::vector<uint64_t> to{conn};
    std::string answer = "answer";
    auto sent = s.send(&to, reinterpret_cast<const uint8_t*>(answer.data()), answer.size(), false);
    CHECK(sent.size() == 1 && sent[0].success);
    auto t0 = Clock::now();
    if (ack) s.ackClose(conn);
    CHECK(readFrame(p, op, payload));
    CHECK_EQ(int(op), 0x1);
    CHECK_EQ(payload, "answer");
    CHECK(readFrame(p, op, payload, 4000));
    CHECK_EQ(int(op), 0x8);
    CHECK_EQ(payload, std::string("\x03\xe8", 2));
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    if (ack) CHECK(ms < 1000);
    else CHECK(ms >= 1500);  // the close timeout (2 s) answered for the silent owner
    CHECK(sink->next(ev) && ev.type == EventType::Close && ev.code == 1000 && ev.remote);
  }
  s.clear();
}

}  // namespace

int main() {
  setIoThreadCount(2);
  testVerifyAccept();
  testVerifyRefuseAndTimeout();
  testAllowedOrigins();
  testCloseReplyOnAck();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return check::finish();
}
