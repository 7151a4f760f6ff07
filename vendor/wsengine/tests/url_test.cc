// ws:// / wss:// URL parsing and the Host header.
#include <string>

#include "check.h"
#include "random.h"
#include "url.h"

using namespace wsengine;

namespace {

struct Good {
  const char* url;
  bool secure;
  const char* host;
  int port;
  const char* target;
  bool ipv6;
  const char* hostHeader;
};

void testGood() {
  const Good cases[] = {
      {"ws://example.com", false, "example.com", 80, "/", false, "example.com"},
      {"wss://example.com", true, "example.com", 443, "/", false, "example.com"},
      {"WS://Example.com/", false, "Example.com", 80, "/", false, "Example.com"},
      {"http://a.b:8080/chat", false, "a.b", 8080, "/chat", false, "a.b:8080"},
      {"https://a.b/x?y=1", true, "a.b", 443, "/x?y=1", false, "a.b"},
      {"wss://a.b:80/", true, "a.b", 80, "/", false, "a.b:80"},
      {"ws://a.b:443/", false, "a.b", 443, "/", false, "a.b:443"},
      {"ws://127.0.0.1:9001/runCase?case=1&agent=x", false, "127.0.0.1", 9001,
       "/runCase?case=1&agent=x", false, "127.0.0.1:9001"},
      {"ws://localhost?q", false, "localhost", 80, "/?q", false, "localhost"},
      {"ws://h/p#frag", false, "h", 80, "/p", false, "h"},
      {"ws://h#frag", false, "h", 80, "/", false, "h"},
      {"ws://h/p?q#f?g", false, "h", 80, "/p?q", false, "h"},
      {"ws://[::1]:8080/", false, "::1", 8080, "/", true, "[::1]:8080"},
      {"wss://[2001:db8::7]/", true, "2001:db8::7", 443, "/", true, "[2001:db8::7]"},
      {"ws://[::ffff:192.0.2.1]", false, "::ffff:192.0.2.1", 80, "/", true, "[::ffff:192.0.2.1]"},
      {"ws://[fe80::1%25eth0]:9000/", false, "fe80::1%eth0", 9000, "/", true, "[fe80::1]:9000"},
      {"ws://[fe80::1%eth0]/", false, "fe80::1%eth0", 80, "/", true, "[fe80::1]"},
      {"ws://user:pw@host:81/", false, "host", 81, "/", false, "host:81"},
      {"ws://host:/", false, "host", 80, "/", false, "host"},
      {"ws://host:1", false, "host", 1, "/", false, "host:1"},
      {"ws://host:65535", false, "host", 65535, "/", false, "host:65535"},
      {"ws://my_host-1.example/a b/\xC3\xA9", false, "my_host-1.example", 80, "/a%20b/%C3%A9",
       false, "my_host-1.example"},
  };
  for (const auto& c : cases) {
    WsUrl u;
    std::string err = "stale";
    bool ok = parseWsUrl(c.url, u, err);
    if (!ok) std::fprintf(stderr, "%s: %s\n", c.url, err.c_str());
    CHECK(ok);
    CHECK(err.empty());
    CHECK_EQ(u.secure, c.secure);
    CHECK_EQ(u.host, std::string(c.host));
    CHECK_EQ(u.port, c.port);
    CHECK_EQ(u.target, std::string(c.target));
    CHECK_EQ(u.ipv6, c.ipv6);
    CHECK_EQ(u.hostHeader(), std::string(c.hostHeader));
  }
}

void testBad() {
  struct Bad {
    const char* url;
    const char* mentions;  // a word the error must contain
  } cases[] = {
      {"", "scheme"},
      {"example.com/x", "scheme"},
      {"ftp://example.com", "scheme"},
      {"wsx://example.com", "scheme"},
      {"ws://", "host"},
      {"ws:///path", "host"},
      {"ws://:8080/", "host"},
      {"ws://user@/x", "host"},
      {"ws://host:0/", "port"},
      {"ws://host:65536/", "port"},
      {"ws://host:99999999/", "port"},
      {"ws://host:-1/", "port"},
      {"ws://host:8o/", "port"},
      {"ws://host:80:81/", "port"},
      {"ws://[::1/", "IPv6"},
      {"ws://[::1]x/", "IPv6"},
      {"ws://[]/", "IPv6"},
      {"ws://[zz::1]/", "IPv6"},
      {"ws://[fe80::1%]/", "zone"},
      {"ws://[::1]:0/", "port"},
      {"ws://256.1.1.1/", "IPv4"},
      {"ws://1.2.3/", "IPv4"},
      {"ws://1.2.3.4.5/", "IPv4"},
      {"ws://ho st/", "host"},
      {"ws://h\x01st/", "host"},
      {"ws://host/a\r\nX: y", "control"},
  };
  for (const auto& c : cases) {
    WsUrl u;
    std::string err;
    bool ok = parseWsUrl(c.url, u, err);
    CHECK(!ok);
    bool mentions = err.find(c.mentions) != std::string::npos;
    if (!mentions) std::fprintf(stderr, "'%s' -> '%s'\n", c.url, err.c_str());
    CHECK(mentions);
  }
}

void testRandom() {
  // Different draws differ, across the pool refill boundary too.
  uint8_t a[32], b[32];
  randomBytes(a, sizeof a);
  randomBytes(b, sizeof b);
  CHECK(std::string(a, a + 32) != std::string(b, b + 32));
  std::string prev;
  int repeats = 0, zeros = 0;
  for (int i = 0; i < 600; ++i) {  // 600 * 16 bytes crosses several 4 KiB refills
    uint8_t k[16];
    randomBytes(k, sizeof k);
    std::string s(k, k + 16);
    if (s == prev) ++repeats;
    if (s == std::string(16, '\0')) ++zeros;
    prev = s;
  }
  CHECK_EQ(repeats, 0);
  CHECK_EQ(zeros, 0);
  std::string big(10000, '\0');
  randomBytes(reinterpret_cast<uint8_t*>(&big[0]), big.size());
  int nonZero = 0;
  for (char c : big) nonZero += c != 0;
  CHECK(nonZero > 9800);  // about 39 of 10000 bytes are zero by chance
}

}  // namespace

int main() {
  testGood();
  testBad();
  testRandom();
  return check::finish();
}
