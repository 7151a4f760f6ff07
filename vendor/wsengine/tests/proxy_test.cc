// The proxy option's url, the environment's proxy variables and NO_PROXY as
// curl reads them, the CONNECT request and the reading of the proxy's reply.
#include <string>

#include "check.h"
#include "proxy.h"

using namespace wsengine;

namespace {

void testProxyUrl() {
  ProxyUrl p;
  std::string err;
  CHECK(parseProxyUrl("http://127.0.0.1:3128", p, err));
  CHECK_EQ(p.host, std::string("127.0.0.1"));
  CHECK_EQ(p.port, 3128);
  CHECK_EQ(p.authorization, std::string());
  CHECK_EQ(p.authority(), std::string("127.0.0.1:3128"));
  CHECK(parseProxyUrl("HTTP://Proxy.Example:8080/", p, err));
  CHECK_EQ(p.host, std::string("proxy.example"));
  CHECK_EQ(p.port, 8080);
  CHECK(parseProxyUrl("http://proxy.example", p, err));
  CHECK_EQ(p.port, 80);
  CHECK(parseProxyUrl("http://[::1]:3128", p, err));
  CHECK_EQ(p.host, std::string("::1"));
  CHECK(p.ipv6);
  CHECK_EQ(p.authority(), std::string("[::1]:3128"));
  // Basic credentials, percent-decoded: "Aladdin:open sesame" (RFC 7617's example).
  CHECK(parseProxyUrl("http://Aladdin:open%20sesame@h:1", p, err));
  CHECK_EQ(p.authorization, std::string("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="));
  CHECK(parseProxyUrl("http://user@h:1", p, err));
  CHECK_EQ(p.authorization, std::string("Basic dXNlcjo="));  // "user:"
  // An '@' in the password, encoded; the last '@' ends the userinfo.
  CHECK(parseProxyUrl("http://u:p%40ss@h:1", p, err));
  CHECK_EQ(p.authorization, basicAuthorization("u:p@ss"));
  CHECK_EQ(p.authorization, std::string("Basic dTpwQHNz"));

  const char* bad[][2] = {
      {"", "expected http://"},
      {"proxy:3128", "expected http://"},
      {"https://h:1", "unsupported scheme 'https'"},
      {"socks5://h:1080", "unsupported scheme 'socks5'"},
      {"http://", "missing host"},
      {"http://u:p@", "missing host"},
      {"http://h:99999", "port out of range"},
      {"http://h:x", "port is not a number"},
      {"http://h:1/path", "no path"},
      {"http://h:1?q", "no path"},
      {"http://h :1", "space"},
      {"http://h\r\n:1", "control"},
      {"http://[::1:1", "IPv6"},
  };
  for (auto& b : bad) {
    err.clear();
    bool ok = parseProxyUrl(b[0], p, err);
    CHECK(!ok);
    bool named = err.find(b[1]) != std::string::npos;
    CHECK(named);
    if (!named) std::fprintf(stderr, "  '%s' -> %s\n", b[0], err.c_str());
  }
  // A proxy url is quoted in its error, without the password: the message
  // reaches logs, error events and TypeErrors.
  for (const char* url : {"http://bob:S3cretPass@proxy.invalid:99999", "http://bob:S3cret Pass@h:1",
                          "bob:S3cretPass@h:x", "http://bob:p@ss:S3cret@h:99999/",
                          "http://bob:S3cret/x@h:1", "http://bob:S3cret?q#f@h:1"}) {
    CHECK(!parseProxyUrl(url, p, err));
    CHECK(err.find("S3cret") == std::string::npos);
    CHECK(err.find("bob:***@") != std::string::npos);
  }
  CHECK(!parseProxyUrl("http://bob@h:99999", p, err));
  CHECK(err.find("'http://bob@h:99999'") != std::string::npos);  // a user name alone is kept
}

void testNoProxy() {
  struct Case {
    const char* list;
    const char* host;
    int port;
    bool match;
  } cases[] = {
      {"", "example.com", 80, false},
      {"*", "example.com", 80, true},
      {"*", "127.0.0.1", 9, true},
      {"example.com", "example.com", 80, true},
      {"example.com", "a.example.com", 80, true},
      {"example.com", "a.b.example.com", 443, true},
      {"example.com", "badexample.com", 80, false},
      {"example.com", "example.com.evil", 80, false},
      {".example.com", "example.com", 80, true},
      {".example.com", "a.example.com", 80, true},
      {"EXAMPLE.com", "example.com", 80, true},
      {"example.com.", "a.example.com", 80, true},
      {"example.com", "example.com.", 80, true},
      {"other.org, example.com", "x.example.com", 80, true},
      {"other.org,,  example.com ", "example.com", 80, true},
      {"other.org example.com", "example.com", 80, true},  // blanks separate too
      {"other.org", "example.com", 80, false},
      {"example.com:8080", "example.com", 8080, true},
      {"example.com:8080", "example.com", 80, false},
      {"localhost", "localhost", 9, true},
      // IP literals: exact, never by suffix.
      {"127.0.0.1", "127.0.0.1", 9, true},
      {"127.0.0.1", "127.0.0.2", 9, false},
      {"0.0.1", "127.0.0.1", 9, false},
      {"127.0.0.1:9", "127.0.0.1", 9, true},
      {"127.0.0.1:9", "127.0.0.1", 10, false},
      {"::1", "::1", 9, true},
      {"[::1]", "::1", 9, true},
      {"[::1]:9", "::1", 9, true},
      {"[::1]:9", "::1", 8, false},
      {"0:0:0:0:0:0:0:1", "::1", 9, true},  // the same address written out
      {"::1", "::2", 9, false},
      {"127.0.0.1", "localhost", 9, false},  // no resolution
      // CIDR.
      {"10.0.0.0/8", "10.1.2.3", 80, true},
      {"10.0.0.0/8", "11.1.2.3", 80, false},
      {"192.168.1.0/24", "192.168.1.77", 80, true},
      {"192.168.1.0/24", "192.168.2.1", 80, false},
      {"127.0.0.1/32", "127.0.0.1", 80, true},
      {"0.0.0.0/0", "8.8.8.8", 80, true},
      {"fe80::/10", "fe80::1", 80, true},
      {"fe80::/10", "fec0::1", 80, false},
      {"10.0.0.0/8", "::1", 80, false},  // other family
      {"10.0.0.0/33", "10.0.0.1", 80, false},  // bad prefix length: no match
      {"10.0.0.0/8", "ten.example", 80, false},
      // Garbage entries match nothing and do not stop the list.
      {"[::1, example.com", "example.com", 80, true},
      {"a:b:c, example.com", "example.com", 80, true},
      {":80", "example.com", 80, false},
      {".", "example.com", 80, false},
  };
  for (auto& c : cases) {
    bool got = noProxyMatches(c.list, c.host, c.port);
    CHECK_EQ(got, c.match);
    if (got != c.match) std::fprintf(stderr, "  NO_PROXY '%s' host %s:%d\n", c.list, c.host, c.port);
  }
}

void testEnv() {
  ProxyEnv env;
  std::string var;
  CHECK_EQ(proxyFromEnv(env, true, "example.com", 443, var), std::string());
  CHECK_EQ(var, std::string());
  env.httpsProxyUpper = "http://upper:1";
  env.httpProxyUpper = "http://plain-upper:2";
  CHECK_EQ(proxyFromEnv(env, true, "example.com", 443, var), std::string("http://upper:1"));
  CHECK_EQ(var, std::string("HTTPS_PROXY"));
  CHECK_EQ(proxyFromEnv(env, false, "example.com", 80, var), std::string("http://plain-upper:2"));
  CHECK_EQ(var, std::string("HTTP_PROXY"));
  // The lower-case name wins.
  env.httpsProxy = "http://lower:3";
  env.httpProxy = "plain-lower:4";  // no scheme: http://
  CHECK_EQ(proxyFromEnv(env, true, "example.com", 443, var), std::string("http://lower:3"));
  CHECK_EQ(var, std::string("https_proxy"));
  CHECK_EQ(proxyFromEnv(env, false, "example.com", 80, var), std::string("http://plain-lower:4"));
  CHECK_EQ(var, std::string("http_proxy"));
  // NO_PROXY exempts; no_proxy wins over it.
  env.noProxyUpper = "example.com";
  CHECK_EQ(proxyFromEnv(env, true, "a.example.com", 443, var), std::string());
  CHECK_EQ(var, std::string());
  CHECK_EQ(proxyFromEnv(env, true, "other.com", 443, var), std::string("http://lower:3"));
  env.noProxy = "other.com";
  CHECK_EQ(proxyFromEnv(env, true, "a.example.com", 443, var), std::string("http://lower:3"));
  CHECK_EQ(proxyFromEnv(env, false, "other.com", 80, var), std::string());
  // Only the scheme's own variable counts.
  ProxyEnv onlyHttps;
  onlyHttps.httpsProxy = "http://p:1";
  CHECK_EQ(proxyFromEnv(onlyHttps, false, "h", 80, var), std::string());
}

void testConnect() {
  CHECK_EQ(buildConnectRequest("example.com", 443, false, ""),
           std::string("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"));
  CHECK_EQ(buildConnectRequest("::1", 8080, true, "Basic dTpw"),
           std::string("CONNECT [::1]:8080 HTTP/1.1\r\nHost: [::1]:8080\r\n"
                       "Proxy-Authorization: Basic dTpw\r\n\r\n"));

  size_t consumed = 0;
  int status = 0;
  std::string err;
  std::string ok = "HTTP/1.1 200 Connection established\r\n\r\n";
  CHECK(readConnectReply(ok.data(), ok.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Established);
  CHECK_EQ(consumed, ok.size());
  CHECK_EQ(status, 200);
  std::string okMore = "HTTP/1.0 200 OK\r\nProxy-agent: x\r\n\r\nXYZ";
  CHECK(readConnectReply(okMore.data(), okMore.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Established);
  CHECK_EQ(consumed, okMore.size() - 3);
  // Byte by byte: incomplete until the blank line.
  for (size_t n = 0; n < ok.size(); ++n) {
    CHECK(readConnectReply(ok.data(), n, 16384, 100, consumed, status, err) ==
          ConnectReply::Incomplete);
  }
  std::string refused =
      "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"x\"\r\n"
      "Content-Length: 0\r\n\r\n";
  CHECK(readConnectReply(refused.data(), refused.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Refused);
  CHECK_EQ(status, 407);
  CHECK_EQ(err, std::string("proxy refused CONNECT: 407 Proxy Authentication Required"));
  std::string forbidden = "HTTP/1.1 403 Forbidden\r\n\r\n";
  CHECK(readConnectReply(forbidden.data(), forbidden.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Refused);
  CHECK_EQ(err, std::string("proxy refused CONNECT: 403 Forbidden"));
  std::string noReason = "HTTP/1.1 502\r\n\r\n";
  CHECK(readConnectReply(noReason.data(), noReason.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Refused);
  CHECK_EQ(status, 502);
  CHECK_EQ(err, std::string("proxy refused CONNECT: 502"));
  std::string redirect = "HTTP/1.1 302 Found\r\nLocation: http://x/\r\n\r\n";
  CHECK(readConnectReply(redirect.data(), redirect.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Refused);
  CHECK_EQ(status, 302);
  std::string odd = "HTTP/1.1 400 Bad \x01\x7f\xff!\r\n\r\n";
  CHECK(readConnectReply(odd.data(), odd.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Refused);
  CHECK_EQ(err, std::string("proxy refused CONNECT: 400 Bad ??" "?!"));
  // Interim replies are reported as such, with their length, for the caller to drop.
  std::string interim = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n";
  CHECK(readConnectReply(interim.data(), interim.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Interim);
  CHECK_EQ(consumed, size_t(25));
  CHECK(readConnectReply(interim.data() + consumed, interim.size() - consumed, 16384, 100, consumed,
                         status, err) == ConnectReply::Established);
  std::string garbage = "SSH-2.0-OpenSSH_9.2\r\n\r\n";
  CHECK(readConnectReply(garbage.data(), garbage.size(), 16384, 100, consumed, status, err) ==
        ConnectReply::Bad);
  CHECK(err.find("bad reply from proxy") != std::string::npos);
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(200, 'a') + "\r\n\r\n";
  CHECK(readConnectReply(big.data(), big.size(), 64, 100, consumed, status, err) ==
        ConnectReply::Bad);
  CHECK(err.find("too large") != std::string::npos);
}

}  // namespace

int main() {
  testProxyUrl();
  testNoProxy();
  testEnv();
  testConnect();
  return check::finish();
}
