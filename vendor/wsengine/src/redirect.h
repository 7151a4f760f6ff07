// Following a server's redirect (RFC 9110 §15.4) from the client's opening
// handshake, as `ws` does with followRedirects: which statuses, where the
// Location leads (resolved against the url that got it), which hops are
// refused, and which credentials each hop may carry. Pure functions: no I/O,
// any thread (fuzzed by test/fuzz/fuzz_redirect.cc).
#pragma once

#include <string>

#include "url.h"
#include "wsengine/wsengine.h"

namespace wsengine {

// 301, 302, 303, 307 and 308: the redirects a client follows.
bool isRedirectStatus(int status);

// The absolute url a Location value names, read against `base` (an absolute
// ws/wss/http/https url) as RFC 3986 §5 and WHATWG resolve references:
// "scheme://…", "//host/…" (base's scheme), "/path", "?query" (base's path)
// and relative paths (merged with base's directory), "." and ".." segments
// removed, the fragment dropped. Blanks around the value are ignored. False
// with a readable error for an empty value or a base that is not a url.
bool resolveLocation(const std::string& base, const std::string& location, std::string& out,
                     std::string& error);

// The next hop after a redirect from `current` (whose parsed form is
// `currentParsed`): the resolved url in `next` and its parsed form in
// `nextParsed`. Refused, with a readable error: a Location missing or not a
// ws/wss/http/https url, a wss:// (or https://) hop to ws:// (or http://),
// and a redirect beyond maxRedirects (`followed` counts those already made).
bool nextRedirect(const std::string& current, const WsUrl& currentParsed, bool hasLocation,
                  const std::string& location, int followed, int maxRedirects,
                  std::string& next, WsUrl& nextParsed, std::string& error);

// Host and port, as a redirect's change of host is judged (what `ws` and
// browsers compare: URL.host).
bool sameHost(const WsUrl& a, const WsUrl& b);

// The extra headers one hop sends. `original` are the headers the client was
// given for `originalUrl`. Once the chain of redirects has left the original
// host and port (`left`: a hop before this one did; or this `hop` is
// elsewhere), the headers that carry credentials (Authorization, Cookie,
// Proxy-Authorization) are dropped for the rest of the attempt, as Fetch
// does: a chain A -> B -> A gets none back, or B could have A's credentials
// sent to a path of its choosing. A Host header given is dropped there too
// (it names the original host). Names compare case-insensitively. The url's
// userinfo becomes a Basic Authorization (unless a kept header sets
// Authorization): the hop's own userinfo, else the original url's while the
// chain has not left it.
Headers hopHeaders(const Headers& original, const WsUrl& originalUrl, const WsUrl& hop, bool left);

}  // namespace wsengine
