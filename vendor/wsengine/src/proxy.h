// HTTP proxies for the client (RFC 9110 §9.3.6 CONNECT): the proxy option's
// url, the environment variables curl reads (HTTPS_PROXY, HTTP_PROXY,
// NO_PROXY), the CONNECT request and the check of the proxy's reply. Pure
// functions: no I/O, any thread (fuzzed by test/fuzz/fuzz_proxy.cc).
#pragma once

#include <cstddef>
#include <string>

#include "http.h"
#include "wsengine/wsengine.h"

namespace wsengine {

// "Basic " + base64(user ":" password) for the userinfo of a url
// ("user:password", each percent-decoded; no ':' means an empty password).
std::string basicAuthorization(const std::string& userinfo);

struct ProxyUrl {
  std::string host;  // lower case; IPv6 without brackets
  int port = 80;     // explicit, or http's default
  bool ipv6 = false;
  // "Basic base64(user:password)" (user and password percent-decoded) when
  // the url carries userinfo; else empty.
  std::string authorization;
  // host:port as a reader wants it in messages (IPv6 in brackets).
  std::string authority() const;
};

// "http://[user[:password]@]host[:port][/]": nothing else (no other scheme,
// no path, query or fragment beyond a lone "/"). False with a readable error.
bool parseProxyUrl(const std::string& url, ProxyUrl& out, std::string& error);

// What the environment says for a connection to host:port (host as the
// client url gives it: lower case, IPv6 without brackets). wss uses
// https_proxy then HTTPS_PROXY, ws http_proxy then HTTP_PROXY (the lower-case
// name wins, as in curl); no_proxy then NO_PROXY can exempt the host. Returns
// the proxy url to use ("" for a direct connection) and in `variable` the
// name it came from (for messages).
std::string proxyFromEnv(const ProxyEnv& env, bool secure, const std::string& host, int port,
                         std::string& variable);

// curl's reading of NO_PROXY: a list separated by commas (and blanks); "*"
// alone matches every host; an entry matches the host itself and, for a
// name, every host under it ("example.com" and ".example.com" both match
// "example.com" and "a.example.com", not "badexample.com"); an entry may end
// in ":port" to match that port only; IP addresses match exactly (IPv6 with
// or without brackets), or by prefix in CIDR form ("10.0.0.0/8", "fe80::/10").
// Case-insensitive; a trailing dot on either side is ignored.
bool noProxyMatches(const std::string& noProxy, const std::string& host, int port);

// "CONNECT host:port HTTP/1.1" with Host and, when `authorization` is not
// empty, Proxy-Authorization (RFC 9110 §9.3.6, §11.7.2).
std::string buildConnectRequest(const std::string& host, int port, bool ipv6,
                                const std::string& authorization);

enum class ConnectReply { Incomplete, Interim, Established, Refused, Bad };

// Reads the proxy's reply to CONNECT from buf[0, len). Established: a 2xx
// head of `consumed` bytes (anything after it would be the tunnel's; a proxy
// sends nothing there before we do, so the caller treats extra bytes as an
// error). Refused: another status, in `status`, with `error` such as "proxy
// refused CONNECT: 407 Proxy Authentication Required". Bad: not an HTTP
// reply or over the limits, with `error`. Incomplete: more bytes needed.
// Interim: a 1xx head of `consumed` bytes (100 Continue...), which the
// caller drops before reading on (RFC 9110 §15.2). With `headers`, a refusal
// also gives its headers there (Proxy-Authenticate with a 407).
ConnectReply readConnectReply(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                              size_t& consumed, int& status, std::string& error,
                              Headers* headers = nullptr);

}  // namespace wsengine
