// HTTP/1.1 opening handshake: head parsing (bounded), validation, builders.
#include <string>

#include "check.h"
#include "http.h"
#include "wsengine/wsengine.h"

using namespace wsengine;

namespace {

const char kKey[] = "dGhlIHNhbXBsZSBub25jZQ==";

std::string goodRequest(const std::string& extra = "") {
  return "GET /chat?x=1 HTTP/1.1\r\n"
         "Host: server.example.com\r\n"
         "Upgrade: websocket\r\n"
         "Connection: Upgrade\r\n"
         "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n" +
         extra + "\r\n";
}

HttpParse parseReq(const std::string& s, HttpRequest& req, size_t& consumed, std::string& err,
                   size_t maxSize = 16384, int maxHeaders = 100) {
  return parseHttpRequest(s.data(), s.size(), maxSize, maxHeaders, req, consumed, err);
}

HttpParse parseRes(const std::string& s, HttpResponse& res, size_t& consumed, std::string& err,
                   size_t maxSize = 16384, int maxHeaders = 100) {
  return parseHttpResponse(s.data(), s.size(), maxSize, maxHeaders, res, consumed, err);
}

void testParseRequest() {
  const std::string head = goodRequest("X-Multi: a\r\nx-multi:b \r\nEmpty:\r\n");
  const std::string withBody = head + "\x81\x85trailing frame bytes";
  HttpRequest req;
  size_t consumed = 0;
  std::string err;
  CHECK(parseReq(withBody, req, consumed, err) == HttpParse::Done);
  CHECK_EQ(consumed, head.size());
  CHECK_EQ(req.method, "GET");
  CHECK_EQ(req.target, "/chat?x=1");
  CHECK_EQ(req.version, "HTTP/1.1");
  CHECK_EQ(req.headers.size(), 8u);
  CHECK_EQ(req.headers[0].first, "Host");
  std::string v;
  CHECK(req.get("host", v));
  CHECK_EQ(v, "server.example.com");
  CHECK(req.get("SEC-WEBSOCKET-KEY", v));
  CHECK_EQ(v, kKey);
  CHECK(req.get("x-MULTI", v));
  CHECK_EQ(v, "a, b");
  CHECK(req.get("empty", v));
  CHECK_EQ(v, "");
  CHECK(!req.get("Origin", v));

  // Every strict prefix is Incomplete; the whole head is Done.
  int wrong = 0;
  for (size_t n = 0; n < head.size(); ++n) {
    HttpRequest r;
    size_t c = 0;
    std::string e;
    if (parseReq(head.substr(0, n), r, c, e) != HttpParse::Incomplete) ++wrong;
  }
  CHECK_EQ(wrong, 0);

  // Malformed heads.
  const char* bad[] = {
      "GET /chat HTTP/1.1\nHost: a\n\n",                // bare LF
      "GET /chat HTTP/1.1\r\nHost: a\n\r\n",            // bare LF in a header
      "GET /chat HTTP/1.1\r\nHost: a\rb\r\n\r\n",       // bare CR
      "GET /chat HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",  // obs-fold
      "GET /chat HTTP/1.1\r\nHost a\r\n\r\n",           // no colon
      "GET /chat HTTP/1.1\r\nHost : a\r\n\r\n",         // space before colon
      "GET /chat HTTP/1.1\r\n: a\r\n\r\n",              // empty name
      "GET /chat HTTP/1.1\r\nHo\"st: a\r\n\r\n",        // non-token name
      "GET /chat HTTP/1.1\r\nHost: a\x01\r\n\r\n",      // control char in value
      "GET /chat\r\nHost: a\r\n\r\n",                   // no version
      "GET  /chat HTTP/1.1\r\nHost: a\r\n\r\n",         // double space
      "GET /chat HTTP/1.1 extra\r\nHost: a\r\n\r\n",
      "GET /chat HTTX/1.1\r\nHost: a\r\n\r\n",
      "GET /chat HTTP/11\r\nHost: a\r\n\r\n",
      "G(T /chat HTTP/1.1\r\nHost: a\r\n\r\n",
      "\r\nGET / HTTP/1.1\r\n\r\n",
  };
  for (const char* b : bad) {
    HttpRequest r;
    size_t c = 0;
    std::string e;
    HttpParse p = parseReq(b, r, c, e);
    if (p != HttpParse::Bad) std::fprintf(stderr, "not Bad: %s\n", b);
    CHECK(p == HttpParse::Bad);
    CHECK(!e.empty());
  }
  // A bare LF is refused before the head is complete.
  {
    HttpRequest r;
    size_t c = 0;
    std::string e;
    CHECK(parseReq("GET / HTTP/1.1\n", r, c, e) == HttpParse::Bad);
  }
}

void testLimits() {
  const std::string head = goodRequest();
  HttpRequest r;
  size_t c = 0;
  std::string e;
  // Exactly at the size limit is fine; one byte less is too large.
  CHECK(parseReq(head, r, c, e, head.size()) == HttpParse::Done);
  CHECK(parseReq(head, r, c, e, head.size() - 1) == HttpParse::TooLarge);
  // No end in sight within the limit.
  std::string endless = "GET / HTTP/1.1\r\nX: " + std::string(5000, 'a');
  CHECK(parseReq(endless, r, c, e, 4096) == HttpParse::TooLarge);
  CHECK(parseReq(endless.substr(0, 4000), r, c, e, 4096) == HttpParse::Incomplete);
  // Header count: 5 headers pass with a limit of 5, fail with 4.
  CHECK(parseReq(head, r, c, e, 16384, 5) == HttpParse::Done);
  CHECK(parseReq(head, r, c, e, 16384, 4) == HttpParse::TooLarge);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 200; ++i) many += "X" + std::to_string(i) + ": v\r\n";
  many += "\r\n";
  CHECK(parseReq(many, r, c, e, 16384, 100) == HttpParse::TooLarge);
  CHECK(parseReq(many, r, c, e, 16384, 200) == HttpParse::Done);
  HttpResponse res;
  std::string bigRes = "HTTP/1.1 101 OK\r\nX: " + std::string(20000, 'b') + "\r\n\r\n";
  CHECK(parseRes(bigRes, res, c, e, 16384) == HttpParse::TooLarge);
}

void testParseResponse() {
  HttpResponse res;
  size_t c = 0;
  std::string e;
  std::string head =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
  CHECK(parseRes(head + "\x81\x00", res, c, e) == HttpParse::Done);
  CHECK_EQ(c, head.size());
  CHECK_EQ(res.status, 101);
  CHECK_EQ(res.reason, "Switching Protocols");
  CHECK_EQ(res.version, "HTTP/1.1");
  std::string v;
  CHECK(res.get("sec-websocket-accept", v));
  CHECK_EQ(v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

  CHECK(parseRes("HTTP/1.1 404\r\n\r\n", res, c, e) == HttpParse::Done);
  CHECK_EQ(res.status, 404);
  CHECK_EQ(res.reason, "");
  CHECK(parseRes("HTTP/1.1 503 \r\n\r\n", res, c, e) == HttpParse::Done);
  CHECK_EQ(res.status, 503);
  CHECK(parseRes("HTTP/1.0 200 OK\r\nA: b\r\n\r\n", res, c, e) == HttpParse::Done);
  CHECK_EQ(res.status, 200);
  CHECK(parseRes("HTTP/1.1 101 Switching", res, c, e) == HttpParse::Incomplete);

  const char* bad[] = {"HTTP/1.1 10 X\r\n\r\n",  "HTTP/1.1 1011 X\r\n\r\n", "HTTP/1.1\r\n\r\n",
                       "ICY 200 OK\r\n\r\n",      "HTTP/1.1 abc\r\n\r\n",     "HTTP/1.1 101 X\nA: b\n\n",
                       "HTTP/1.1 101 X\r\n\tA: b\r\n\r\n"};
  for (const char* b : bad) {
    CHECK(parseRes(b, res, c, e) == HttpParse::Bad);
    CHECK(!e.empty());
  }
}

void testAcceptKey() {
  CHECK_EQ(computeAcceptKey(kKey), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  std::string k1 = makeClientKey(), k2 = makeClientKey();
  CHECK_EQ(k1.size(), 24u);
  CHECK(k1 != k2);
  // A generated key passes our own server-side validation.
  HttpRequest req;
  size_t c = 0;
  std::string e;
  std::string head = "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: " + k1 + "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  CHECK(parseReq(head, req, c, e) == HttpParse::Done);
  CHECK_EQ(validateUpgradeRequest(req).status, 0);
}

int verdictFor(const std::string& head, std::string* reason = nullptr) {
  HttpRequest req;
  size_t c = 0;
  std::string e;
  if (parseReq(head, req, c, e) != HttpParse::Done) return -1;
  UpgradeVerdict v = validateUpgradeRequest(req);
  if (reason) *reason = v.reason;
  return v.status;
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  size_t p = s.find(from);
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

void testValidateRequest() {
  const std::string g = goodRequest();
  std::string reason;
  CHECK_EQ(verdictFor(g, &reason), 0);
  CHECK(reason.empty());
  CHECK_EQ(verdictFor(replace(g, "GET", "POST"), &reason), 405);
  CHECK(!reason.empty());
  CHECK_EQ(verdictFor(replace(g, "HTTP/1.1", "HTTP/1.0")), 400);
  CHECK_EQ(verdictFor(replace(g, "HTTP/1.1", "HTTP/2.0")), 0);
  CHECK_EQ(verdictFor(replace(g, "Host: server.example.com\r\n", "")), 400);
  CHECK_EQ(verdictFor(replace(g, "Upgrade: websocket\r\n", "")), 400);
  CHECK_EQ(verdictFor(replace(g, "Upgrade: websocket", "Upgrade: h2c")), 400);
  CHECK_EQ(verdictFor(replace(g, "Upgrade: websocket", "Upgrade: WebSocket")), 0);
  CHECK_EQ(verdictFor(replace(g, "Upgrade: websocket", "Upgrade: foo, websocket")), 0);
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade\r\n", "")), 400);
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade", "Connection: keep-alive")), 400);
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade", "Connection: keep-alive, upgrade")), 0);
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade", "Connection: keep-alive,UPGRADE ")), 0);
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade", "Connection: upgraded")), 400);
  // Split across two Connection headers: joined with ", ".
  CHECK_EQ(verdictFor(replace(g, "Connection: Upgrade", "Connection: keep-alive\r\nConnection: Upgrade")), 0);
  CHECK_EQ(verdictFor(replace(g, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", "")), 400);
  CHECK_EQ(verdictFor(replace(g, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ")), 400);
  CHECK_EQ(verdictFor(replace(g, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ=A")), 400);
  CHECK_EQ(verdictFor(replace(g, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZ!==")), 400);
  CHECK_EQ(verdictFor(replace(g, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZXg=")), 400);  // 17 bytes
  CHECK_EQ(verdictFor(replace(g, "dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=")), 400);
  CHECK_EQ(verdictFor(replace(g, "Sec-WebSocket-Version: 13\r\n", ""), &reason), 426);
  CHECK(!reason.empty());
  CHECK_EQ(verdictFor(replace(g, "Version: 13", "Version: 8")), 426);
  CHECK_EQ(verdictFor(replace(g, "Version: 13", "Version: 13, 8")), 426);
  // Checks come in order: a POST with no other header is 405.
  CHECK_EQ(verdictFor("POST / HTTP/1.1\r\n\r\n"), 405);
}

void testBuilders() {
  std::string r = buildUpgradeResponse("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
  CHECK_EQ(r,
           "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  r = buildUpgradeResponse("abc", "permessage-deflate");
  CHECK(r.find("\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n") != std::string::npos);

  // Responses we build parse back with the right status, body and length.
  const int statuses[] = {400, 403, 404, 405, 426, 431, 500, 503};
  const char* phrases[] = {"Bad Request",        "Forbidden",       "Not Found",
                           "Method Not Allowed", "Upgrade Required", "Request Header Fields Too Large",
                           "Internal Server Error", "Service Unavailable"};
  for (int i = 0; i < 8; ++i) {
    std::string body = "because " + std::to_string(i);
    std::string e = buildErrorResponse(statuses[i], body);
    HttpResponse res;
    size_t c = 0;
    std::string err;
    CHECK(parseRes(e, res, c, err) == HttpParse::Done);
    CHECK_EQ(res.status, statuses[i]);
    CHECK_EQ(res.reason, phrases[i]);
    CHECK_EQ(e.substr(c), body);
    std::string v;
    CHECK(res.get("Content-Length", v));
    CHECK_EQ(v, std::to_string(body.size()));
    CHECK(res.get("Content-Type", v));
    CHECK_EQ(v, "text/plain");
    CHECK(res.get("Connection", v));
    CHECK_EQ(v, "close");
    CHECK_EQ(res.get("Sec-WebSocket-Version", v), statuses[i] == 426);
    if (statuses[i] == 426) CHECK_EQ(v, "13");
  }

  Headers extra = {{"Origin", "http://x"}, {"X-Evil", "a\r\nInjected: 1"}, {"Bad Name", "v"},
                   {"Authorization", "Bearer t"}};
  std::string req = buildUpgradeRequest("h:8080", "/p?q", kKey, "permessage-deflate", {}, extra);
  CHECK_EQ(req,
           "GET /p?q HTTP/1.1\r\nHost: h:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Extensions: permessage-deflate\r\nUser-Agent: ix-websocket\r\n"
           "Origin: http://x\r\nAuthorization: Bearer t\r\n\r\n");
  // And our own request passes our own validation.
  CHECK_EQ(verdictFor(req), 0);
  req = buildUpgradeRequest("h", "/", kKey, "", {}, {});
  CHECK(req.find("Sec-WebSocket-Extensions") == std::string::npos);
  CHECK_EQ(verdictFor(req), 0);
}

void testValidateResponse() {
  const std::string accept = computeAcceptKey(kKey);
  auto verify = [&](const std::string& head, std::string& err) {
    HttpResponse res;
    size_t c = 0;
    std::string e;
    if (parseRes(head, res, c, e) != HttpParse::Done) {
      err = "parse: " + e;
      return false;
    }
    return validateUpgradeResponse(res, accept, err);
  };
  std::string err;
  const std::string good = buildUpgradeResponse(accept, "");
  CHECK(verify(good, err));
  CHECK(err.empty());
  CHECK(verify(replace(good, "Upgrade: websocket", "upgrade: WEBSOCKET"), err));
  CHECK(!verify("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", err));
  CHECK(err.find("Expected HTTP 101 response but got 404") == 0);
  CHECK(!verify(buildErrorResponse(426, "x"), err));
  CHECK(err.find("426") != std::string::npos);
  CHECK(!verify(replace(good, "Upgrade: websocket\r\n", ""), err));
  CHECK(err.find("Upgrade") != std::string::npos);
  CHECK(!verify(replace(good, "Connection: Upgrade", "Connection: close"), err));
  CHECK(err.find("Connection") != std::string::npos);
  CHECK(!verify(replace(good, "Sec-WebSocket-Accept: " + accept + "\r\n", ""), err));
  CHECK(err.find("Sec-WebSocket-Accept") != std::string::npos);
  CHECK(!verify(replace(good, accept, computeAcceptKey("AAAAAAAAAAAAAAAAAAAAAA==")), err));
  CHECK(err.find("Sec-WebSocket-Accept") != std::string::npos);
  // Only HTTP/1.1 (or a later 1.x) has Upgrade: a 1.0 or 2.0 "101" is refused.
  CHECK(!verify(replace(good, "HTTP/1.1 101", "HTTP/1.0 101"), err));
  CHECK_EQ(err, std::string("Expected an HTTP/1.1 response but got HTTP/1.0 101"));
  CHECK(!verify(replace(good, "HTTP/1.1 101", "HTTP/2.0 101"), err));
  CHECK_EQ(err, std::string("Expected an HTTP/1.1 response but got HTTP/2.0 101"));
  CHECK(verify(replace(good, "HTTP/1.1 101", "HTTP/1.2 101"), err));
  // Another status keeps its own message in any version (Python's
  // http.server answers in HTTP/1.0).
  CHECK(!verify("HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n", err));
  CHECK_EQ(err, std::string("Expected HTTP 101 response but got 404 Not Found"));
}

// Subprotocol and header additions of the handshake (RFC 6455 §4.1, §4.2.2).
void testProtocols() {
  std::vector<std::string> list;
  CHECK(parseTokenList("chat, superchat ,graphql-transport-ws", list));
  CHECK_EQ(list.size(), size_t(3));
  CHECK_EQ(list[0], "chat");
  CHECK_EQ(list[1], "superchat");
  CHECK_EQ(list[2], "graphql-transport-ws");
  CHECK(!parseTokenList("a,,b", list));       // an empty element
  CHECK(!parseTokenList("", list));
  CHECK(!parseTokenList("a b", list));        // space inside a token
  CHECK(!parseTokenList("a, \"b\"", list));   // quotes are not token characters
  CHECK(isToken("v1.mqtt"));
  CHECK(!isToken("a/b"));
  CHECK(!isToken(""));
  CHECK(sameOrigin("https://Example.COM", "https://example.com"));
  CHECK(!sameOrigin("https://example.com", "https://example.com:444"));

  std::string req = buildUpgradeRequest("h", "/", kKey, "", {"a", "b"}, {});
  CHECK(req.find("\r\nSec-WebSocket-Protocol: a, b\r\n") != std::string::npos);
  CHECK_EQ(verdictFor(req), 0);
  std::string r = buildUpgradeResponse("abc", "", "b", {{"Set-Cookie", "s=1"}, {"X-Bad", "a\r\nB: c"}});
  CHECK(r.find("\r\nSec-WebSocket-Protocol: b\r\n") != std::string::npos);
  CHECK(r.find("\r\nSet-Cookie: s=1\r\n") != std::string::npos);
  CHECK(r.find("X-Bad") == std::string::npos);
  std::string e = buildErrorResponse(401, "no", {{"WWW-Authenticate", "Basic"}});
  HttpResponse res;
  size_t c = 0;
  std::string err, v;
  CHECK(parseRes(e, res, c, err) == HttpParse::Done);
  CHECK_EQ(res.status, 401);
  CHECK(res.get("WWW-Authenticate", v));
  CHECK_EQ(v, "Basic");
  CHECK_EQ(e.substr(c), "no");
}

// Headers the engine writes itself are never written twice (RFC 9112 §3.2:
// two Host lines get a 400; two versions read "13, 13" and get a 426; a
// second Content-Length makes the body's end ambiguous, §6.3). Host,
// User-Agent and a refusal's Content-Type are defaults the caller replaces.
void testOwnedHeaders() {
  Headers extra = {{"host", "virtual.example"}, {"upgrade", "h2c"}, {"CONNECTION", "keep-alive"},
                   {"Sec-WebSocket-Version", "13"}, {"sec-websocket-key", "AAAAAAAAAAAAAAAAAAAAAA=="},
                   {"Sec-WebSocket-Protocol", "x"}, {"Sec-WebSocket-Extensions", "x"},
                   {"User-Agent", "probe/1"}, {"X-Trace", "7"}};
  std::string req = buildUpgradeRequest("h:8080", "/", kKey, "", {}, extra);
  CHECK_EQ(req,
           "GET / HTTP/1.1\r\nHost: virtual.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "User-Agent: probe/1\r\nX-Trace: 7\r\n\r\n");
  CHECK_EQ(verdictFor(req), 0);
  // A Host value that could end the line is not used.
  req = buildUpgradeRequest("h:8080", "/", kKey, "", {}, {{"Host", "a\r\nX: y"}});
  CHECK(req.find("\r\nHost: h:8080\r\n") != std::string::npos);
  CHECK(req.find("X: y") == std::string::npos);

  Headers answer = {{"Content-Length", "0"}, {"transfer-encoding", "chunked"}, {"Upgrade", "h2c"},
                    {"Sec-WebSocket-Accept", "forged"}, {"Content-Type", "application/json"},
                    {"Retry-After", "5"}};
  std::string e = buildErrorResponse(429, "{\"retry\":5}", answer);
  HttpResponse res;
  size_t c = 0;
  std::string err, v;
  CHECK(parseRes(e, res, c, err) == HttpParse::Done);
  int lengths = 0, types = 0;
  for (const auto& h : res.headers) {
    lengths += sameOrigin(h.first, "Content-Length");
    types += sameOrigin(h.first, "Content-Type");
  }
  CHECK_EQ(lengths, 1);
  CHECK_EQ(types, 1);
  CHECK(res.get("Content-Length", v));
  CHECK_EQ(v, "11");
  CHECK(res.get("Content-Type", v));
  CHECK_EQ(v, "application/json");
  CHECK(!res.get("Transfer-Encoding", v));
  CHECK(!res.get("Upgrade", v));
  CHECK(!res.get("Sec-WebSocket-Accept", v));
  CHECK(res.get("Retry-After", v));
  CHECK_EQ(e.substr(c), "{\"retry\":5}");
  std::string up = buildUpgradeResponse("abc", "", "", answer);
  CHECK(up.find("forged") == std::string::npos);
  CHECK(up.find("h2c") == std::string::npos);
  CHECK(up.find("Content-Length") == std::string::npos);
  CHECK(up.find("\r\nRetry-After: 5\r\n") != std::string::npos);

  CHECK(engineOwnsHeader(true, "sec-websocket-key"));
  CHECK(!engineOwnsHeader(false, "Sec-WebSocket-Key"));
  CHECK(engineOwnsHeader(false, "CONTENT-LENGTH"));
  CHECK(!engineOwnsHeader(true, "Content-Length"));
  CHECK(!engineOwnsHeader(true, "Host"));
  CHECK(!engineOwnsHeader(false, "Content-Type"));
}

// Every status a refusal may use has its phrase (a verifyClient answer takes
// any of 400-599); an unregistered one gets its class's name.
void testReasonPhrases() {
  const std::pair<int, const char*> known[] = {
      {402, "Payment Required"}, {409, "Conflict"}, {410, "Gone"}, {413, "Content Too Large"},
      {418, "Client Error"},     {422, "Unprocessable Content"}, {425, "Too Early"},
      {451, "Unavailable For Legal Reasons"}, {502, "Bad Gateway"}, {504, "Gateway Timeout"},
      {599, "Server Error"},     {499, "Client Error"}};
  for (const auto& k : known) {
    std::string e = buildErrorResponse(k.first, "");
    HttpResponse res;
    size_t c = 0;
    std::string err;
    CHECK(parseRes(e, res, c, err) == HttpParse::Done);
    CHECK_EQ(res.status, k.first);
    CHECK_EQ(res.reason, std::string(k.second));
    CHECK_EQ(e.substr(c), std::string(k.second));  // the default body is the phrase
  }
}

}  // namespace

int main() {
  testProtocols();
  testOwnedHeaders();
  testReasonPhrases();
  testParseRequest();
  testLimits();
  testParseResponse();
  testAcceptKey();
  testValidateRequest();
  testBuilders();
  testValidateResponse();
  return check::finish();
}
