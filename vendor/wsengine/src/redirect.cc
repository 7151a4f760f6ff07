#include "redirect.h"

#include <vector>

#include "proxy.h"

namespace wsengine {

namespace {

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsIgnoreCase(const std::string& a, const char* b) {
  size_t i = 0;
  for (; i < a.size() && b[i]; ++i)
    if (lowerAscii(a[i]) != lowerAscii(b[i])) return false;
  return i == a.size() && !b[i];
}

bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// "scheme:" at the start (RFC 3986 §3.1): the reference is absolute.
bool hasScheme(const std::string& s) {
  if (s.empty() || !isAlpha(s[0])) return false;
  for (size_t i = 1; i < s.size(); ++i) {
    char c = s[i];
    if (c == ':') return true;
    if (!isAlpha(c) && !(c >= '0' && c <= '9') && c != '+' && c != '-' && c != '.') return false;
  }
  return false;
}

// "." or ".." with '.' possibly written %2e (WHATWG counts both).
int dots(const std::string& seg) {
  int n = 0;
  for (size_t i = 0; i < seg.size();) {
    if (seg[i] == '.') {
      ++i;
    } else if (i + 2 < seg.size() && seg[i] == '%' && seg[i + 1] == '2' &&
               lowerAscii(seg[i + 2]) == 'e') {
      i += 3;
    } else {
      return 0;
    }
    if (++n > 2) return 0;
  }
  return n;
}

// RFC 3986 §5.2.4 on an absolute path ("/…").
std::string removeDotSegments(const std::string& path) {
  std::vector<std::string> out;
  size_t i = 1;  // after the leading '/'
  bool trailingSlash = false;
  for (;;) {
    size_t slash = path.find('/', i);
    std::string seg = path.substr(i, slash == std::string::npos ? std::string::npos : slash - i);
    bool last = slash == std::string::npos;
    int d = dots(seg);
    if (d == 1) {
      trailingSlash = last;
    } else if (d == 2) {
      if (!out.empty()) out.pop_back();
      trailingSlash = last;
    } else {
      out.push_back(seg);
      trailingSlash = false;
    }
    if (last) break;
    i = slash + 1;
  }
  std::string r;
  for (const auto& s : out) r += "/" + s;
  if (trailingSlash || r.empty()) r += "/";
  return r;
}

// Splits an absolute url into "scheme://authority", path ("/" at least) and
// "?query" (empty when none); the fragment is dropped.
bool splitUrl(const std::string& url, std::string& origin, std::string& path, std::string& query) {
  size_t sep = url.find(':');
  if (!hasScheme(url) || url.compare(sep, 3, "://") != 0) return false;
  size_t authEnd = url.find_first_of("/?#", sep + 3);
  if (authEnd == std::string::npos) authEnd = url.size();
  origin = url.substr(0, authEnd);
  size_t hash = url.find('#', authEnd);
  std::string rest = url.substr(authEnd, hash == std::string::npos ? std::string::npos : hash - authEnd);
  size_t q = rest.find('?');
  path = rest.substr(0, q);
  query = q == std::string::npos ? std::string() : rest.substr(q);
  if (path.empty()) path = "/";
  return true;
}

}  // namespace

bool isRedirectStatus(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

bool resolveLocation(const std::string& base, const std::string& location, std::string& out,
                     std::string& error) {
  size_t b = location.find_first_not_of(" \t");
  size_t e = location.find_last_not_of(" \t");
  std::string ref = b == std::string::npos ? std::string() : location.substr(b, e - b + 1);
  if (ref.empty()) {
    error = "empty Location";
    return false;
  }
  std::string origin, path, query;
  if (!splitUrl(base, origin, path, query)) {
    error = "base '" + base + "' is not an absolute url";
    return false;
  }
  std::string scheme = base.substr(0, base.find(':'));
  std::string target;
  // WHATWG URL, for the special schemes a Location may name here: '\\' reads
  // as '/' before the query; the base's own scheme without "//" after it
  // introduces a relative reference ("ws:d" against ws://h/a/b is ws://h/a/d;
  // what follows is a path even if it holds a ':'); with "//", and another
  // special scheme with any number of slashes (none too), an authority, every
  // further slash skipped ("wss:/h2", "wss:h2" and "ws:///h2" are wss://h2/
  // and ws://h2/).
  for (size_t i = 0; i < ref.size() && ref[i] != '?' && ref[i] != '#'; ++i) {
    if (ref[i] == '\\') ref[i] = '/';
  }
  auto authority = [](const std::string& s) {
    size_t host = s.find_first_not_of('/');
    return "//" + (host == std::string::npos ? std::string() : s.substr(host));
  };
  bool relative = false;
  if (hasScheme(ref)) {
    size_t colon = ref.find(':');
    std::string refScheme = ref.substr(0, colon);
    for (char& ch : refScheme) ch = lowerAscii(ch);
    bool special = refScheme == "ws" || refScheme == "wss" || refScheme == "http" || refScheme == "https";
    std::string rest = ref.substr(colon + 1);
    if (special) {
      if (equalsIgnoreCase(scheme, refScheme.c_str()) && rest.compare(0, 2, "//") != 0) {
        ref = rest;
        relative = true;
      } else {
        ref = refScheme + ":" + authority(rest);
      }
    }
  } else if (ref.compare(0, 2, "//") == 0) {
    ref = authority(ref);
  }
  if (!relative && hasScheme(ref)) {
    // Absolute ("wss://h/p"); only its path needs its dot segments removed.
    std::string o, p, q;
    if (!splitUrl(ref, o, p, q)) {
      out = ref;  // e.g. "mailto:x": the caller refuses its scheme
      error.clear();
      return true;
    }
    out = o + removeDotSegments(p) + q;
    error.clear();
    return true;
  }
  if (!relative && ref.compare(0, 2, "//") == 0) {
    std::string o, p, q;
    splitUrl(scheme + ":" + ref, o, p, q);
    out = o + removeDotSegments(p) + q;
    error.clear();
    return true;
  }
  size_t hash = ref.find('#');
  if (hash != std::string::npos) ref = ref.substr(0, hash);
  if (ref.empty()) {
    target = path + query;  // "#frag" alone: the base itself
  } else if (ref[0] == '/') {
    size_t q = ref.find('?');
    target = removeDotSegments(ref.substr(0, q)) + (q == std::string::npos ? "" : ref.substr(q));
  } else if (ref[0] == '?') {
    target = path + ref;
  } else {
    size_t q = ref.find('?');
    std::string dir = path.substr(0, path.rfind('/') + 1);
    target = removeDotSegments(dir + ref.substr(0, q)) + (q == std::string::npos ? "" : ref.substr(q));
  }
  out = origin + target;
  error.clear();
  return true;
}

bool nextRedirect(const std::string& current, const WsUrl& currentParsed, bool hasLocation,
                  const std::string& location, int followed, int maxRedirects,
                  std::string& next, WsUrl& nextParsed, std::string& error) {
  if (followed >= maxRedirects) {
    error = "Too many redirects (maxRedirects " + std::to_string(maxRedirects) + ")";
    return false;
  }
  if (!hasLocation) {
    error = "Redirect without a Location header";
    return false;
  }
  std::string why;
  if (!resolveLocation(current, location, next, why)) {
    error = "Bad redirect Location '" + location + "': " + why;
    return false;
  }
  if (!parseWsUrl(next, nextParsed, why)) {
    error = "Bad redirect Location '" + location + "': " + why;
    return false;
  }
  if (currentParsed.secure && !nextParsed.secure) {
    error = "Redirect from a secure url (wss://) to an insecure one refused: " + next;
    return false;
  }
  error.clear();
  return true;
}

bool sameHost(const WsUrl& a, const WsUrl& b) { return a.host == b.host && a.port == b.port; }

Headers hopHeaders(const Headers& original, const WsUrl& originalUrl, const WsUrl& hop, bool left) {
  bool same = !left && sameHost(originalUrl, hop);
  Headers out;
  bool hasAuthorization = false;
  for (const auto& h : original) {
    bool hostBound = equalsIgnoreCase(h.first, "authorization") ||
                     equalsIgnoreCase(h.first, "cookie") ||
                     equalsIgnoreCase(h.first, "proxy-authorization") ||
                     equalsIgnoreCase(h.first, "host");
    if (hostBound && !same) continue;
    if (equalsIgnoreCase(h.first, "authorization")) hasAuthorization = true;
    out.push_back(h);
  }
  if (!hasAuthorization) {
    const std::string& userinfo =
        !hop.userinfo.empty() || !same ? hop.userinfo : originalUrl.userinfo;
    if (!userinfo.empty()) out.emplace_back("Authorization", basicAuthorization(userinfo));
  }
  return out;
}

}  // namespace wsengine
