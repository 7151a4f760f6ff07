// ws:// / wss:// URL parsing and the Host header. What the parser accepts it
// must read as the WHATWG URL Standard does (the expected hosts, ports and
// targets below are what Node's URL gives for the same input); what WHATWG
// would read another way it must refuse.
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
      {"WS://Example.COM/", false, "example.com", 80, "/", false, "example.com"},
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
      // IPv6 in WHATWG's shortest form (an IPv4 tail written as hex pieces).
      {"ws://[::ffff:192.0.2.1]", false, "::ffff:c000:201", 80, "/", true, "[::ffff:c000:201]"},
      {"ws://[0:0::1]/", false, "::1", 80, "/", true, "[::1]"},
      {"ws://[2001:DB8:0:0:1:0:0:1]/", false, "2001:db8::1:0:0:1", 80, "/", true,
       "[2001:db8::1:0:0:1]"},
      {"ws://[1:0:0:0:0:0:0:0]/", false, "1::", 80, "/", true, "[1::]"},
      {"ws://[::]:81/", false, "::", 81, "/", true, "[::]:81"},
      {"ws://[1:2:3:4:5:6:7:8]/", false, "1:2:3:4:5:6:7:8", 80, "/", true, "[1:2:3:4:5:6:7:8]"},
      {"ws://[1:0:2:3:4:5:6:7]/", false, "1:0:2:3:4:5:6:7", 80, "/", true, "[1:0:2:3:4:5:6:7]"},
      // Userinfo is everything up to the last '@' of the authority.
      {"ws://a@b@c/", false, "c", 80, "/", false, "c"},
      {"ws://host:80@evil/", false, "evil", 80, "/", false, "evil"},
      {"ws://@h/", false, "h", 80, "/", false, "h"},
      // Leading zeros in a port; an all-numeric label that is not the last.
      {"ws://h:0080/", false, "h", 80, "/", false, "h"},
      {"ws://1.2.3.example/", false, "1.2.3.example", 80, "/", false, "1.2.3.example"},
      {"ws://example.com./", false, "example.com.", 80, "/", false, "example.com."},
      {"ws://0.0.0.0/", false, "0.0.0.0", 80, "/", false, "0.0.0.0"},
      {"ws://-a.b_c~d/", false, "-a.b_c~d", 80, "/", false, "-a.b_c~d"},
      // Punycode labels, well-formed (case folded).
      {"ws://XN--BCHER-KVA.example/", false, "xn--bcher-kva.example", 80, "/", false,
       "xn--bcher-kva.example"},
      {"ws://xn--abc-.example/", false, "xn--abc-.example", 80, "/", false, "xn--abc-.example"},
      {"ws://xn--55qx5d.cn/", false, "xn--55qx5d.cn", 80, "/", false, "xn--55qx5d.cn"},
      // WHATWG's percent-encode sets: path and special query differ.
      {"ws://h/ x\"<>`{}|^'", false, "h", 80, "/%20x%22%3C%3E%60%7B%7D|^'", false, "h"},
      {"ws://h/?q x\"<>`{}'?", false, "h", 80, "/?q%20x%22%3C%3E`{}%27?", false, "h"},
      {"ws://h/%zz/%2e%2e.x/.a/a./", false, "h", 80, "/%zz/%2e%2e.x/.a/a./", false, "h"},
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
      {"ws://h\x01st/", "control"},
      {"ws://host/a\r\nX: y", "newline"},
      {"ws://h/a\x7f", "control"},
      // The audit's allow-list bypass: WHATWG reads the backslash as '/',
      // so the host is allowed.example.com (not 127.0.0.1).
      {"ws://allowed.example.com\\@127.0.0.1:9/x", "backslash"},
      {"ws://h\\x", "backslash"},
      {"ws://h/a\\b", "backslash"},
      {"ws://h/p\tq", "tab"},
      {"ws://h\n/", "newline"},
      {"ws://h/x ", "space"},
      {" ws://h/", "space"},
      // IPv4 in forms WHATWG (and getaddrinfo) read as another address.
      {"ws://127.1/", "IPv4"},
      {"ws://0x7f.1/", "IPv4"},
      {"ws://0x7f.0.0.1/", "IPv4"},
      {"ws://2130706433/", "IPv4"},
      {"ws://010.0.0.1/", "IPv4"},
      {"ws://127.0.0.1./", "IPv4"},
      {"ws://0x/", "IPv4"},
      {"ws://example.123/", "IPv4"},
      {"ws://example.0x1f/", "IPv4"},
      // Hosts WHATWG decodes or maps.
      {"ws://%31%32%37.0.0.1/", "percent"},
      {"ws://b\xC3\xBC" "cher.example/", "non-ASCII"},
      {"ws://xn--a.com/", "Punycode"},
      {"ws://xn--/", "Punycode"},
      {"ws://xn--b/", "Punycode"},
      {"ws://[fe80::1%25eth0]:9000/", "zone"},
      {"ws://[fe80::1%eth0]/", "zone"},
      {"ws://[::1.2.3]/", "IPv6"},
      {"ws://[::01.2.3.4]/", "IPv6"},
      {"ws://[1:2:3:4:5:6:7:8:9]/", "IPv6"},
      {"ws://[1::2::3]/", "IPv6"},
      {"ws://[12345::]/", "IPv6"},
      {"ws://[1:2:3:4:5:6:7]/", "IPv6"},
      // Dot segments, which WHATWG resolves.
      {"ws://h/a/../b", "segment"},
      {"ws://h/a/%2e%2E/b", "segment"},
      {"ws://h/a/./b", "segment"},
      {"ws://h/..", "segment"},
      {"ws://h/.%2E?x", "segment"},
      {"ws://h/%2e/", "segment"},
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
