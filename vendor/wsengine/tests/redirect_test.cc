// Following redirects: which statuses, where a Location leads (the expected
// urls are what Node's `new URL(location, base).href` gives), which hops are
// refused, and which credentials each hop carries.
#include <string>

#include "check.h"
#include "proxy.h"
#include "redirect.h"

using namespace wsengine;

namespace {

void testStatuses() {
  for (int s : {301, 302, 303, 307, 308}) CHECK(isRedirectStatus(s));
  for (int s : {0, 101, 200, 300, 304, 305, 306, 309, 400, 407}) CHECK(!isRedirectStatus(s));
}

void testResolve() {
  const char* base = "ws://h.example:8080/a/b/c?x=1#f";
  const char* cases[][2] = {
      {"wss://other.example/p", "wss://other.example/p"},
      {"http://other.example", "http://other.example/"},
      {"https://o.example/a/./b/../c?q#frag", "https://o.example/a/c?q"},
      {"//o.example:9/p", "ws://o.example:9/p"},
      {"/root", "ws://h.example:8080/root"},
      {"/root?y=2", "ws://h.example:8080/root?y=2"},
      {"/a/../../x", "ws://h.example:8080/x"},
      {"/a/%2e%2E/x", "ws://h.example:8080/x"},
      {"/a/.", "ws://h.example:8080/a/"},
      {"/a/..", "ws://h.example:8080/"},
      {"d", "ws://h.example:8080/a/b/d"},
      {"./d", "ws://h.example:8080/a/b/d"},
      {"../d?z", "ws://h.example:8080/a/d?z"},
      {"../../../../d", "ws://h.example:8080/d"},
      {"d/", "ws://h.example:8080/a/b/d/"},
      {"?only", "ws://h.example:8080/a/b/c?only"},
      {"#frag", "ws://h.example:8080/a/b/c?x=1"},
      {"  /spaced  ", "ws://h.example:8080/spaced"},
      // WHATWG: the base's scheme without "//" is relative, another special one an authority
      {"ws:d", "ws://h.example:8080/a/b/d"},
      {"WS:/root", "ws://h.example:8080/root"},
      {"ws:?q", "ws://h.example:8080/a/b/c?q"},
      {"ws:", "ws://h.example:8080/a/b/c?x=1"},
      {"ws:ws:d", "ws://h.example:8080/a/b/ws:d"},
      {"wss:other.example/p", "wss://other.example/p"},
      {"http:other.example", "http://other.example/"},
      // ... with any number of slashes after another special scheme, more than two after the
      // base's, and '\\' read as '/' before the query
      {"wss:/other.example/p", "wss://other.example/p"},
      {"wss:///other.example/p", "wss://other.example/p"},
      {"ws:///other.example/p", "ws://other.example/p"},
      {"///other.example/p", "ws://other.example/p"},
      {"wss:\\\\other.example\\p?a\\b", "wss://other.example/p?a\\b"},
      {"ws:\\x", "ws://h.example:8080/x"},
      {"\\\\other.example", "ws://other.example/"},
  };
  for (auto& c : cases) {
    std::string out, err;
    bool ok = resolveLocation(base, c[0], out, err);
    CHECK(ok);
    CHECK_EQ(out, std::string(c[1]));
  }
  std::string out, err;
  CHECK(resolveLocation("wss://h/", "x", out, err));
  CHECK_EQ(out, std::string("wss://h/x"));
  CHECK(!resolveLocation(base, "", out, err));
  CHECK(err.find("empty") != std::string::npos);
  CHECK(!resolveLocation(base, " \t", out, err));
  CHECK(!resolveLocation("not a url", "/x", out, err));
}

void testNext() {
  WsUrl cur, next;
  std::string err, to;
  CHECK(parseWsUrl("wss://h.example/a", cur, err));
  CHECK(nextRedirect("wss://h.example/a", cur, true, "/b", 0, 10, to, next, err));
  CHECK_EQ(to, std::string("wss://h.example/b"));
  CHECK(next.secure);
  CHECK_EQ(next.target, std::string("/b"));
  CHECK(nextRedirect("wss://h.example/a", cur, true, "https://o.example:444/c", 9, 10, to, next, err));
  CHECK_EQ(next.host, std::string("o.example"));
  CHECK_EQ(next.port, 444);
  // Too many.
  CHECK(!nextRedirect("wss://h.example/a", cur, true, "/b", 10, 10, to, next, err));
  CHECK_EQ(err, std::string("Too many redirects (maxRedirects 10)"));
  CHECK(!nextRedirect("wss://h.example/a", cur, true, "/b", 0, 0, to, next, err));
  // Secure to insecure.
  CHECK(!nextRedirect("wss://h.example/a", cur, true, "ws://h.example/a", 0, 10, to, next, err));
  CHECK(err.find("secure") != std::string::npos && err.find("refused") != std::string::npos);
  CHECK(!nextRedirect("wss://h.example/a", cur, true, "http://h.example/a", 0, 10, to, next, err));
  // Insecure to secure is fine.
  WsUrl plain;
  CHECK(parseWsUrl("ws://h.example/a", plain, err));
  CHECK(nextRedirect("ws://h.example/a", plain, true, "wss://h.example/a", 0, 10, to, next, err));
  CHECK(next.secure);
  // No Location, other schemes, garbage.
  CHECK(!nextRedirect("ws://h.example/a", plain, false, "", 0, 10, to, next, err));
  CHECK(err.find("without a Location") != std::string::npos);
  CHECK(!nextRedirect("ws://h.example/a", plain, true, "ftp://h.example/", 0, 10, to, next, err));
  CHECK(err.find("unsupported scheme") != std::string::npos);
  CHECK(!nextRedirect("ws://h.example/a", plain, true, "mailto:x@y", 0, 10, to, next, err));
  CHECK(!nextRedirect("ws://h.example/a", plain, true, "//", 0, 10, to, next, err));
  CHECK(err.find("missing host") != std::string::npos);
}

bool has(const Headers& hs, const char* name, const std::string& value) {
  for (auto& h : hs)
    if (h.first == name && h.second == value) return true;
  return false;
}
bool hasName(const Headers& hs, const char* name) {
  for (auto& h : hs)
    if (h.first == name) return true;
  return false;
}

void testHopHeaders() {
  std::string err;
  WsUrl orig, same, samePortOther, other, otherWithCreds, origCreds;
  CHECK(parseWsUrl("ws://h.example:8080/a", orig, err));
  CHECK(parseWsUrl("wss://h.example:8080/b", same, err));
  CHECK(parseWsUrl("ws://h.example:8081/a", samePortOther, err));
  CHECK(parseWsUrl("ws://o.example:8080/a", other, err));
  CHECK(parseWsUrl("ws://me:pw@o.example:8080/a", otherWithCreds, err));
  CHECK(parseWsUrl("ws://u:p%40ss@h.example:8080/a", origCreds, err));
  CHECK_EQ(origCreds.userinfo, std::string("u:p%40ss"));
  CHECK(sameHost(orig, same));
  CHECK(!sameHost(orig, samePortOther));
  CHECK(!sameHost(orig, other));

  Headers given = {{"authorization", "Bearer t"}, {"Cookie", "s=1"}, {"X-Trace", "7"},
                   {"PROXY-Authorization", "Basic x"}};
  Headers h = hopHeaders(given, orig, same, false);
  CHECK_EQ(h.size(), size_t(4));
  h = hopHeaders(given, orig, other, false);
  CHECK_EQ(h.size(), size_t(1));
  CHECK(has(h, "X-Trace", "7"));
  h = hopHeaders(given, orig, samePortOther, false);  // another port is another host
  CHECK_EQ(h.size(), size_t(1));

  // Userinfo becomes Basic auth on its own host, not elsewhere.
  Headers none;
  h = hopHeaders(none, origCreds, origCreds, false);
  CHECK(has(h, "Authorization", basicAuthorization("u:p%40ss")));
  CHECK(has(h, "Authorization", "Basic dTpwQHNz"));
  h = hopHeaders(none, origCreds, same, false);
  CHECK(has(h, "Authorization", "Basic dTpwQHNz"));
  h = hopHeaders(none, origCreds, other, false);
  CHECK(!hasName(h, "Authorization"));
  // A hop's own userinfo is its own to send.
  h = hopHeaders(none, origCreds, otherWithCreds, false);
  CHECK(has(h, "Authorization", basicAuthorization("me:pw")));
  // An explicit Authorization wins over userinfo.
  h = hopHeaders(given, origCreds, origCreds, false);
  CHECK(has(h, "authorization", "Bearer t"));
  CHECK(!hasName(h, "Authorization"));

  // Once the chain left the original host, nothing host-bound comes back on
  // a hop to it again (A -> B -> A): B chose that hop and its path.
  h = hopHeaders(given, origCreds, orig, true);  // the original url's userinfo neither
  CHECK_EQ(h.size(), size_t(1));
  CHECK(has(h, "X-Trace", "7"));
  h = hopHeaders(none, origCreds, same, true);
  CHECK(!hasName(h, "Authorization"));
  h = hopHeaders(none, origCreds, otherWithCreds, true);  // its own userinfo still
  CHECK(has(h, "Authorization", basicAuthorization("me:pw")));
  // A Host given names the original host: kept there, dropped elsewhere.
  Headers withHost = {{"host", "virtual.example"}, {"X-Trace", "7"}};
  h = hopHeaders(withHost, orig, same, false);
  CHECK(has(h, "host", "virtual.example"));
  h = hopHeaders(withHost, orig, other, false);
  CHECK(!hasName(h, "host"));
  CHECK(has(h, "X-Trace", "7"));
}

}  // namespace

int main() {
  testStatuses();
  testResolve();
  testNext();
  testHopHeaders();
  return check::finish();
}
