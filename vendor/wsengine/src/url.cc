#include "url.h"

#include <cctype>

namespace wsengine {

namespace {

std::string lower(const std::string& s) {
  std::string out = s;
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Dotted-quad with four decimal parts 0..255, no leading '+' or empties.
bool validIpv4(const std::string& h) {
  int parts = 0;
  size_t i = 0;
  while (i <= h.size()) {
    size_t j = i;
    while (j < h.size() && isDigit(h[j])) ++j;
    if (j == i || j - i > 3 || std::stoi(h.substr(i, j - i)) > 255) return false;
    ++parts;
    if (j == h.size()) break;
    if (h[j] != '.') return false;
    i = j + 1;
  }
  return parts == 4;
}

// The address part of an IPv6 literal: hex groups, colons, optionally an
// embedded IPv4 tail. Only the character set and shape are checked here;
// getaddrinfo is the final judge.
bool plausibleIpv6(const std::string& a) {
  if (a.size() < 2 || a.find(':') == std::string::npos) return false;
  for (char c : a)
    if (!isHex(c) && c != ':' && c != '.') return false;
  return a.find(":::") == std::string::npos;
}

bool regNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
         c == '~';
}

}  // namespace

std::string WsUrl::hostHeader() const {
  std::string h;
  if (ipv6) {
    // RFC 6874: the zone id is local to this host, never sent.
    h = "[" + host.substr(0, host.find('%')) + "]";
  } else {
    h = host;
  }
  if (port != (secure ? 443 : 80)) h += ":" + std::to_string(port);
  return h;
}

bool parseWsUrl(const std::string& url, WsUrl& out, std::string& error) {
  out = WsUrl();
  auto bad = [&](const std::string& why) {
    error = "Invalid URL '" + url + "': " + why;
    return false;
  };

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
  // Userinfo has no meaning for WebSocket; accept and drop it.
  size_t at = auth.rfind('@');
  if (at != std::string::npos) auth = auth.substr(at + 1);
  if (auth.empty()) return bad("missing host");

  std::string portText;
  bool hasPort = false;
  if (auth[0] == '[') {
    size_t close = auth.find(']');
    if (close == std::string::npos) return bad("unterminated IPv6 literal");
    std::string lit = auth.substr(1, close - 1);
    std::string addr = lit, zone;
    size_t pct = lit.find('%');
    if (pct != std::string::npos) {
      addr = lit.substr(0, pct);
      zone = lit.substr(pct + 1);
      // RFC 6874 writes the '%' delimiter as "%25".
      if (zone.compare(0, 2, "25") == 0 && zone.size() > 2) zone = zone.substr(2);
      if (zone.empty()) return bad("empty IPv6 zone id");
      for (char c : zone)
        if (!regNameChar(c)) return bad("invalid IPv6 zone id");
    }
    if (!plausibleIpv6(addr)) return bad("invalid IPv6 address '" + addr + "'");
    out.host = zone.empty() ? addr : addr + "%" + zone;
    out.ipv6 = true;
    std::string rest = auth.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("unexpected characters after IPv6 literal");
      hasPort = true;
      portText = rest.substr(1);
    }
  } else {
    size_t colon = auth.find(':');
    out.host = auth.substr(0, colon);
    if (colon != std::string::npos) {
      hasPort = true;
      portText = auth.substr(colon + 1);
    }
    if (out.host.empty()) return bad("missing host");
    for (char c : out.host)
      if (!regNameChar(c)) return bad("invalid character in host");
    bool numeric = true;
    for (char c : out.host)
      if (!isDigit(c) && c != '.') numeric = false;
    if (numeric && !validIpv4(out.host)) return bad("invalid IPv4 address '" + out.host + "'");
  }

  out.port = out.secure ? 443 : 80;
  // An empty port after ':' means the default (RFC 3986 §3.2.3).
  if (hasPort && !portText.empty()) {
    if (portText.size() > 5) return bad("port out of range");
    for (char c : portText)
      if (!isDigit(c)) return bad("port is not a number");
    int p = std::stoi(portText);
    if (p < 1 || p > 65535) return bad("port out of range (1-65535)");
    out.port = p;
  }

  // Request target: path and query, fragment dropped. Spaces and non-ASCII
  // bytes are percent-encoded; control characters cannot be sent at all.
  size_t end = url.find('#', authEnd);
  if (end == std::string::npos) end = url.size();
  std::string target;
  if (authEnd < end && url[authEnd] == '?') target = "/";
  static const char kHex[] = "0123456789ABCDEF";
  for (size_t i = authEnd; i < end; ++i) {
    unsigned char c = static_cast<unsigned char>(url[i]);
    if (c < 0x20 || c == 0x7F) return bad("control character in path");
    if (c == ' ' || c >= 0x80) {
      target += '%';
      target += kHex[c >> 4];
      target += kHex[c & 0xF];
    } else {
      target += static_cast<char>(c);
    }
  }
  out.target = target.empty() ? "/" : target;
  error.clear();
  return true;
}

}  // namespace wsengine
