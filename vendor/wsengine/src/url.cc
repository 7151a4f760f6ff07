#include "url.h"

#include "wsengine/wsengine.h"

#include <cstdint>

namespace wsengine {

// What this parser accepts is a subset of what the WHATWG URL Standard
// (https://url.spec.whatwg.org/, which browsers and Node's URL follow)
// accepts, read the same way: same host, port, path and query. Everything
// that WHATWG would read otherwise, or that needs its tables (IDNA mapping),
// is refused with a reason instead of being read another way: backslashes
// (WHATWG reads them as '/'), tabs, newlines and other control characters
// (it drops them), leading or trailing spaces (it trims them), percent
// escapes and non-ASCII characters in the host (it decodes and maps them),
// IPv4 addresses in any form but a.b.c.d in decimal (it reads "127.1",
// "0x7f.1", "2130706433" and "010.0.0.1" as addresses), "." and ".." path
// segments (it removes them), and IPv6 zone ids (it has none). What it
// accepts it normalises as WHATWG does: the host in lower case, IPv6 in its
// shortest form, the path and query percent-encoded with WHATWG's sets.

namespace {

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(const std::string& s) {
  std::string out = s;
  for (auto& c : out) c = lowerAscii(c);
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return isDigit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
int hexValue(char c) {
  if (isDigit(c)) return c - '0';
  return lowerAscii(c) - 'a' + 10;
}
bool allOf(const std::string& s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

// Letters, digits and "-._~": every one of them means itself to WHATWG's
// host parser (which lower-cases letters).
bool hostChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || isDigit(c) || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// WHATWG's "ends in a number" check: the last label (a trailing empty one
// dropped) is all digits, or "0x" followed by hex digits. Such a host is
// parsed as an IPv4 address, in any of several notations.
bool endsInNumber(const std::string& host) {
  std::string h = host;
  if (!h.empty() && h.back() == '.' && h.size() > 1) h.pop_back();
  size_t dot = h.rfind('.');
  std::string last = dot == std::string::npos ? h : h.substr(dot + 1);
  if (last.empty()) return false;
  if (allOf(last, isDigit)) return true;
  return last.size() >= 2 && last[0] == '0' && (last[1] == 'x' || last[1] == 'X') &&
         allOf(last.substr(2), isHex);
}

// a.b.c.d, each part decimal 0..255 without leading zeros: the one form in
// which WHATWG and getaddrinfo read the same address as a reader would.
bool canonicalIpv4(const std::string& h) {
  int parts = 0;
  size_t i = 0;
  for (;;) {
    size_t j = i;
    while (j < h.size() && isDigit(h[j])) ++j;
    size_t len = j - i;
    if (len == 0 || len > 3 || (len > 1 && h[i] == '0')) return false;
    if (std::stoi(h.substr(i, len)) > 255) return false;
    ++parts;
    if (j == h.size()) break;
    if (h[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

// WHATWG's IPv6 parser (brackets removed): eight 16-bit pieces, "::" once,
// an IPv4 tail in dotted decimal without leading zeros.
bool parseIpv6(const std::string& s, uint16_t (&out)[8]) {
  uint16_t a[8] = {};
  size_t n = s.size(), p = 0;
  int piece = 0, compress = -1;
  auto at = [&](size_t k) -> char { return k < n ? s[k] : '\0'; };
  if (at(p) == ':') {
    if (at(p + 1) != ':') return false;
    p += 2;
    compress = ++piece;
  }
  while (p < n) {
    if (piece == 8) return false;
    if (at(p) == ':') {
      if (compress != -1) return false;
      ++p;
      compress = ++piece;
      continue;
    }
    unsigned value = 0;
    size_t length = 0;
    while (length < 4 && p < n && isHex(s[p])) {
      value = value * 16 + static_cast<unsigned>(hexValue(s[p]));
      ++p;
      ++length;
    }
    if (at(p) == '.') {
      if (length == 0 || piece > 6) return false;
      p -= length;
      int seen = 0;
      while (p < n) {
        int part = -1;
        if (seen > 0) {
          if (at(p) != '.' || seen >= 4) return false;
          ++p;
        }
        if (!isDigit(at(p))) return false;
        while (isDigit(at(p))) {
          int d = at(p) - '0';
          if (part == -1) {
            part = d;
          } else if (part == 0) {
            return false;  // a leading zero
          } else {
            part = part * 10 + d;
          }
          if (part > 255) return false;
          ++p;
        }
        a[piece] = static_cast<uint16_t>(a[piece] * 0x100 + part);
        ++seen;
        if (seen == 2 || seen == 4) ++piece;
      }
      if (seen != 4) return false;
      break;
    }
    if (at(p) == ':') {
      ++p;
      if (p >= n) return false;
    } else if (p < n) {
      return false;
    }
    a[piece++] = static_cast<uint16_t>(value);
  }
  if (compress != -1) {
    int swaps = piece - compress;
    piece = 7;
    while (piece != 0 && swaps > 0) {
      uint16_t t = a[piece];
      a[piece] = a[compress + swaps - 1];
      a[compress + swaps - 1] = t;
      --piece;
      --swaps;
    }
  } else if (piece != 8) {
    return false;
  }
  for (int i = 0; i < 8; ++i) out[i] = a[i];
  return true;
}

// WHATWG's IPv6 serialisation: lower-case hex without leading zeros, the
// first longest run of two or more zero pieces written "::".
std::string serializeIpv6(const uint16_t (&a)[8]) {
  int best = -1, bestLen = 1;
  for (int i = 0; i < 8;) {
    int j = i;
    while (j < 8 && a[j] == 0) ++j;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j == i ? i + 1 : j;
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < 8; ++i) {
    if (i == best) {
      out += i == 0 ? "::" : ":";
      i += bestLen - 1;
      continue;
    }
    std::string piece;
    uint16_t v = a[i];
    do {
      piece.insert(piece.begin(), kHex[v & 0xF]);
      v = static_cast<uint16_t>(v >> 4);
    } while (v != 0);
    out += piece;
    if (i != 7) out += ':';
  }
  return out;
}

// RFC 3492 decoding of the part of an "xn--" label after the prefix: true
// if it is well-formed Punycode of code points IDNA could allow. (WHATWG
// refuses a label that is not; it also refuses some well-formed ones by its
// IDNA tables, which this does not carry: such a host is still the very
// ASCII name it reads, to DNS and to the Host header, never another host.)
bool validPunycode(const std::string& s) {
  if (s.empty()) return false;
  const uint32_t kBase = 36, kTMin = 1, kTMax = 26, kSkew = 38, kDamp = 700;
  const uint32_t kMax = 0x7FFFFFFF;
  size_t delim = s.rfind('-');
  uint32_t out = delim == std::string::npos ? 0 : static_cast<uint32_t>(delim);
  size_t in = delim == std::string::npos ? 0 : delim + 1;
  uint32_t n = 128, i = 0, bias = 72;
  auto adapt = [&](uint32_t delta, uint32_t points, bool first) {
    delta = first ? delta / kDamp : delta / 2;
    delta += delta / points;
    uint32_t k = 0;
    while (delta > ((kBase - kTMin) * kTMax) / 2) {
      delta /= kBase - kTMin;
      k += kBase;
    }
    return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
  };
  while (in < s.size()) {
    uint32_t oldi = i, w = 1;
    for (uint32_t k = kBase;; k += kBase) {
      if (in >= s.size()) return false;
      char c = lowerAscii(s[in++]);
      uint32_t digit;
      if (c >= 'a' && c <= 'z') {
        digit = static_cast<uint32_t>(c - 'a');
      } else if (isDigit(c)) {
        digit = static_cast<uint32_t>(c - '0') + 26;
      } else {
        return false;
      }
      if (digit > (kMax - i) / w) return false;
      i += digit * w;
      uint32_t t = k <= bias ? kTMin : k >= bias + kTMax ? kTMax : k - bias;
      if (digit < t) break;
      if (w > kMax / (kBase - t)) return false;
      w *= kBase - t;
    }
    ++out;
    bias = adapt(i - oldi, out, oldi == 0);
    if (i / out > kMax - n) return false;
    n += i / out;
    i %= out;
    // Past Unicode, surrogates, and C1 controls (which IDNA disallows).
    if (n > 0x10FFFF || (n >= 0xD800 && n <= 0xDFFF) || n < 0xA0) return false;
    ++i;
  }
  return true;
}

// WHATWG's path percent-encode set (for the query: its special-query set),
// for the printable ASCII characters that pass through otherwise.
bool encodeInPath(unsigned char c) {
  return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' || c == '?' || c == '`' ||
         c == '{' || c == '}';
}
bool encodeInQuery(unsigned char c) {
  return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' || c == '\'';
}

// A path segment WHATWG removes or resolves: ".", "..", with '.' possibly
// written "%2e" (either case).
bool dotSegment(const std::string& seg) {
  std::string s = lower(seg);
  size_t i = 0;
  int dots = 0;
  while (i < s.size()) {
    if (s[i] == '.') {
      ++i;
    } else if (s.compare(i, 3, "%2e") == 0) {
      i += 3;
    } else {
      return false;
    }
    ++dots;
  }
  return dots == 1 || dots == 2;
}

}  // namespace

std::string WsUrl::hostHeader() const {
  std::string h = ipv6 ? "[" + host + "]" : host;
  if (port != (secure ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

bool parseWsUrl(const std::string& url, WsUrl& out, std::string& error) {
  out = WsUrl();
  auto bad = [&](const std::string& why) {
    error = "Invalid URL '" + url + "': " + why;
    return false;
  };

  // Characters WHATWG drops or trims, or reads as another one.
  for (unsigned char c : url) {
    if (c == '\t' || c == '\n' || c == '\r') return bad("tab or newline (a WHATWG URL drops them)");
    if (c < 0x20 || c == 0x7F) return bad("control character");
    if (c == '\\') return bad("backslash (a WHATWG URL reads it as '/')");
  }
  if (!url.empty() && (url.front() == ' ' || url.back() == ' ')) {
    return bad("leading or trailing space (a WHATWG URL trims it)");
  }

  size_t sep = url.find("://");
  if (sep == std::string::npos) return bad("missing scheme (expected ws:// or wss://)");
  const std::string scheme = lower(url.substr(0, sep));
  if (scheme == "ws" || scheme == "http") {
    out.secure = false;
  } else if (scheme == "wss" || scheme == "https") {
    out.secure = true;
  } else {
    return bad("unsupported scheme '" + scheme + "' (expected ws or wss)");
  }

  size_t authStart = sep + 3;
  size_t authEnd = url.find_first_of("/?#", authStart);
  if (authEnd == std::string::npos) authEnd = url.size();
  std::string auth = url.substr(authStart, authEnd - authStart);
  // Userinfo: up to the last '@', as WHATWG reads it.
  size_t at = auth.rfind('@');
  if (at != std::string::npos) {
    out.userinfo = auth.substr(0, at);
    auth = auth.substr(at + 1);
  }
  if (auth.empty()) return bad("missing host");

  std::string portText;
  bool hasPort = false;
  if (auth[0] == '[') {
    size_t close = auth.find(']');
    if (close == std::string::npos) return bad("unterminated IPv6 literal");
    std::string lit = auth.substr(1, close - 1);
    if (lit.find('%') != std::string::npos) {
      return bad("IPv6 zone id (a WHATWG URL has none)");
    }
    uint16_t pieces[8];
    if (!parseIpv6(lit, pieces)) return bad("invalid IPv6 address '" + lit + "'");
    out.host = serializeIpv6(pieces);
    out.ipv6 = true;
    std::string rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("unexpected characters after IPv6 literal");
      hasPort = true;
      portText = rest.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    std::string host = auth.substr(0, colon);
    if (colon != std::string::npos) {
      hasPort = true;
      portText = auth.substr(colon + 1);
    }
    if (host.empty()) return bad("missing host");
    for (char c : host) {
      if (c == '%') return bad("percent-encoded host (a WHATWG URL decodes it)");
      if (static_cast<unsigned char>(c) >= 0x80) {
        return bad("non-ASCII host (a WHATWG URL maps it by IDNA: pass it through Node's URL)");
      }
      if (!hostChar(c)) return bad("invalid character in host");
    }
    host = lower(host);
    if (endsInNumber(host)) {
      if (!canonicalIpv4(host)) {
        return bad("IPv4 address '" + host +
                   "' not in the form a.b.c.d of decimal numbers 0-255 without leading zeros "
                   "(a WHATWG URL reads other forms as another address)");
      }
    } else {
      // Each "xn--" label must be well-formed Punycode.
      size_t start = 0;
      while (start <= host.size()) {
        size_t dot = host.find('.', start);
        std::string label = host.substr(start, dot == std::string::npos ? std::string::npos
                                                                         : dot - start);
        if (label.compare(0, 4, "xn--") == 0 && !validPunycode(label.substr(4))) {
          return bad("invalid Punycode label '" + label + "'");
        }
        if (dot == std::string::npos) break;
        start = dot + 1;
      }
    }
    out.host = host;
  }

  out.port = out.secure ? 443 : 80;
  // An empty port after ':' means the default, as in WHATWG.
  if (hasPort && !portText.empty()) {
    if (!allOf(portText, isDigit)) return bad("port is not a number");
    size_t i = 0;
    while (i + 1 < portText.size() && portText[i] == '0') ++i;  // leading zeros
    if (portText.size() - i > 5) return bad("port out of range (1-65535)");
    int p = std::stoi(portText.substr(i));
    if (p < 1 || p > 65535) return bad("port out of range (1-65535)");
    out.port = p;
  }

  // Request target: path and query, fragment dropped, percent-encoded as
  // WHATWG does (non-ASCII bytes and its sets); "." and ".." segments, which
  // WHATWG resolves, are refused.
  size_t end = url.find('#', authEnd);
  if (end == std::string::npos) end = url.size();
  size_t queryAt = url.find('?', authEnd);
  if (queryAt == std::string::npos || queryAt > end) queryAt = end;
  std::string path = url.substr(authEnd, queryAt - authEnd);
  for (size_t i = 0; i < path.size();) {
    size_t slash = path.find('/', i + 1);
    std::string seg = path.substr(i + 1, slash == std::string::npos ? std::string::npos
                                                                     : slash - i - 1);
    if (dotSegment(seg)) return bad("'.' or '..' path segment (a WHATWG URL resolves it)");
    if (slash == std::string::npos) break;
    i = slash;
  }
  static const char kHex[] = "0123456789ABCDEF";
  std::string target = path.empty() ? "/" : "";
  for (size_t i = authEnd; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    bool query = i >= queryAt;
    if (c >= 0x80 || (query ? encodeInQuery(c) && c != '#' : encodeInPath(c) && c != '?')) {
      target += '%';
      target += kHex[c >> 4];
      target += kHex[c & 0xF];
    } else {
      target += static_cast<char>(c);
    }
  }
  out.target = target;
  error.clear();
  return true;
}

bool parseClientUrl(const std::string& url, ClientUrl& out, std::string& error) {
  WsUrl u;
  out = ClientUrl();
  if (!parseWsUrl(url, u, error)) return false;
  out.secure = u.secure;
  out.host = u.host;
  out.port = u.port;
  out.target = u.target;
  return true;
}

}  // namespace wsengine
