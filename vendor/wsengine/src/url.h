// ws:// and wss:// URLs (RFC 6455 §3): scheme, host (IPv6 literals in
// brackets), port, and the request target (path and query).
#pragma once

#include <string>

namespace wsengine {

struct WsUrl {
  bool secure = false;
  std::string host;    // without brackets
  int port = 0;        // explicit or the scheme's default (80 / 443)
  std::string target;  // "/" at least; path plus "?query"; no fragment
  bool ipv6 = false;
  // "user:password" as the url gives it (percent-encoded); empty when none.
  // The client sends it as Basic Authorization (redirect.h: hopHeaders).
  std::string userinfo;
  // Host header value: host (bracketed if IPv6) plus ":port" if not default.
  std::string hostHeader() const;
};

// Accepts ws, wss (and http, https as aliases). False with a readable error.
bool parseWsUrl(const std::string& url, WsUrl& out, std::string& error);

}  // namespace wsengine
