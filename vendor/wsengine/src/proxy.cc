#include "proxy.h"

#include <openssl/evp.h>
#include <uv.h>

#include <cstring>

#include "url.h"

namespace wsengine {

namespace {

char lowerAscii(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

std::string lower(std::string s) {
  for (auto& c : s) c = lowerAscii(c);
  return s;
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = lowerAscii(c);
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// %XX escapes decoded (a '%' not followed by two hex digits stays itself,
// as WHATWG's percent-decode leaves it).
std::string percentDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hexValue(s[i + 1]) >= 0 && hexValue(s[i + 2]) >= 0) {
      out += static_cast<char>(hexValue(s[i + 1]) * 16 + hexValue(s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

std::string base64(const std::string& in) {
  std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

// An IP literal (IPv6 without brackets) as 4 or 16 bytes; empty when not one.
std::string ipBytes(const std::string& s) {
  unsigned char buf[16];
  if (s.find(':') != std::string::npos) {
    if (uv_inet_pton(AF_INET6, s.c_str(), buf) == 0) return std::string(reinterpret_cast<char*>(buf), 16);
    return std::string();
  }
  if (uv_inet_pton(AF_INET, s.c_str(), buf) == 0) return std::string(reinterpret_cast<char*>(buf), 4);
  return std::string();
}

// The first `bits` bits of a and b are equal (a and b of the same length).
bool samePrefix(const std::string& a, const std::string& b, int bits) {
  for (size_t i = 0; bits > 0 && i < a.size(); ++i, bits -= 8) {
    unsigned mask = bits >= 8 ? 0xFFu : (0xFFu << (8 - bits)) & 0xFFu;
    if ((static_cast<unsigned char>(a[i]) & mask) != (static_cast<unsigned char>(b[i]) & mask))
      return false;
  }
  return true;
}

bool allDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// One NO_PROXY entry against host:port (host lower case, no brackets).
bool entryMatches(std::string e, const std::string& host, const std::string& hostIp, int port) {
  // An optional ":port" (after "]" for a bracketed IPv6 address; for an
  // unbracketed entry only when it has exactly one ':').
  int wantPort = 0;
  if (!e.empty() && e[0] == '[') {
    size_t close = e.find(']');
    if (close == std::string::npos) return false;
    std::string rest = e.substr(close + 1);
    e = e.substr(1, close - 1);
    if (!rest.empty()) {
      if (rest[0] != ':' || !allDigits(rest.substr(1)) || rest.size() > 6) return false;
      wantPort = std::stoi(rest.substr(1));
    }
  } else {
    size_t colon = e.find(':');
    if (colon != std::string::npos && e.find(':', colon + 1) == std::string::npos) {
      std::string p = e.substr(colon + 1);
      if (!allDigits(p) || p.size() > 5) return false;
      wantPort = std::stoi(p);
      e = e.substr(0, colon);
    }
  }
  if (wantPort != 0 && wantPort != port) return false;
  if (e.empty()) return false;

  // CIDR: address/bits.
  size_t slash = e.find('/');
  if (slash != std::string::npos) {
    std::string bitsText = e.substr(slash + 1);
    std::string net = ipBytes(e.substr(0, slash));
    if (net.empty() || hostIp.size() != net.size() || !allDigits(bitsText) || bitsText.size() > 3)
      return false;
    int bits = std::stoi(bitsText);
    if (bits > static_cast<int>(net.size()) * 8) return false;
    return samePrefix(net, hostIp, bits);
  }
  std::string entryIp = ipBytes(e);
  if (!entryIp.empty() || !hostIp.empty()) return entryIp == hostIp && !hostIp.empty();

  // A name: itself or any name under it; a leading or trailing dot is
  // ignored.
  while (!e.empty() && e.front() == '.') e.erase(0, 1);
  while (!e.empty() && e.back() == '.') e.pop_back();
  if (e.empty()) return false;
  e = lower(e);
  std::string h = host;
  while (!h.empty() && h.back() == '.') h.pop_back();
  if (h == e) return true;
  return h.size() > e.size() && h.compare(h.size() - e.size(), e.size(), e) == 0 &&
         h[h.size() - e.size() - 1] == '.';
}

}  // namespace

std::string basicAuthorization(const std::string& userinfo) {
  size_t colon = userinfo.find(':');
  std::string user = percentDecode(userinfo.substr(0, colon));
  std::string pass =
      colon == std::string::npos ? std::string() : percentDecode(userinfo.substr(colon + 1));
  return "Basic " + base64(user + ":" + pass);
}

std::string ProxyUrl::authority() const {
  return (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {
// `url` with the password of its userinfo masked, for an error message. The
// text may not parse (that is why it is quoted), and a password may hold
// '/', '?' or '#', so everything between the first ':' after "://" and the
// last '@' is masked (at worst more than a password, never less).
std::string withoutPassword(const std::string& url) {
  size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  size_t at = url.rfind('@');
  if (at == std::string::npos || at < start) return url;
  size_t colon = url.find(':', start);
  if (colon == std::string::npos || colon > at) return url;  // a user name alone
  return url.substr(0, colon + 1) + "***" + url.substr(at);
}
}  // namespace

bool parseProxyUrl(const std::string& url, ProxyUrl& out, std::string& error) {
  out = ProxyUrl();
  auto bad = [&](const std::string& why) {
    error = "Invalid proxy '" + withoutPassword(url) + "': " + why;
    return false;
  };
  for (unsigned char c : url)
    if (c < 0x20 || c == 0x7F || c == ' ' || c == '\\') return bad("space, backslash or control character");
  size_t sep = url.find("://");
  if (sep == std::string::npos) return bad("expected http://[user:password@]host:port");
  std::string scheme = lower(url.substr(0, sep));
  if (scheme != "http") {
    return bad("unsupported scheme '" + scheme + "' (only http:// proxies, which tunnel with CONNECT)");
  }
  size_t authStart = sep + 3;
  size_t authEnd = url.find_first_of("/?#", authStart);
  if (authEnd == std::string::npos) authEnd = url.size();
  std::string rest = url.substr(authEnd);
  if (!rest.empty() && rest != "/") return bad("a proxy url has no path, query or fragment");
  std::string auth = url.substr(authStart, authEnd - authStart);
  size_t at = auth.rfind('@');
  if (at != std::string::npos) {
    std::string userinfo = auth.substr(0, at);
    auth = auth.substr(at + 1);
    out.authorization = basicAuthorization(userinfo);
  }
  if (auth.empty()) return bad("missing host");
  // The host and port read as any client url's are (WHATWG's reading).
  WsUrl u;
  std::string why;
  if (!parseWsUrl("ws://" + auth + "/", u, why)) {
    size_t colon = why.find("': ");
    return bad(colon == std::string::npos ? why : why.substr(colon + 3));
  }
  out.host = u.host;
  out.port = u.port;
  out.ipv6 = u.ipv6;
  error.clear();
  return true;
}

bool checkProxyOption(const std::string& proxy, std::string& error) {
  if (proxy.empty() || proxy == "env") {
    error.clear();
    return true;
  }
  ProxyUrl p;
  return parseProxyUrl(proxy, p, error);
}

bool noProxyMatches(const std::string& noProxy, const std::string& host, int port) {
  std::string h = lower(host);
  if (!h.empty() && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  std::string hostIp = ipBytes(h);
  size_t i = 0;
  while (i < noProxy.size()) {
    size_t j = noProxy.find_first_of(", \t", i);
    if (j == std::string::npos) j = noProxy.size();
    std::string e = noProxy.substr(i, j - i);
    i = j + 1;
    if (e.empty()) continue;
    if (e == "*") return true;
    if (entryMatches(e, h, hostIp, port)) return true;
  }
  return false;
}

std::string proxyFromEnv(const ProxyEnv& env, bool secure, const std::string& host, int port,
                         std::string& variable) {
  const std::string* value = nullptr;
  if (secure) {
    if (!env.httpsProxy.empty()) {
      value = &env.httpsProxy;
      variable = "https_proxy";
    } else if (!env.httpsProxyUpper.empty()) {
      value = &env.httpsProxyUpper;
      variable = "HTTPS_PROXY";
    }
  } else {
    if (!env.httpProxy.empty()) {
      value = &env.httpProxy;
      variable = "http_proxy";
    } else if (!env.httpProxyUpper.empty()) {
      value = &env.httpProxyUpper;
      variable = "HTTP_PROXY";
    }
  }
  if (!value) {
    variable.clear();
    return std::string();
  }
  const std::string& noProxy = !env.noProxy.empty() ? env.noProxy : env.noProxyUpper;
  if (noProxyMatches(noProxy, host, port)) {
    variable.clear();
    return std::string();
  }
  // curl takes "host:port" without a scheme as http://host:port.
  if (value->find("://") == std::string::npos) return "http://" + *value;
  return *value;
}

std::string buildConnectRequest(const std::string& host, int port, bool ipv6,
                                const std::string& authorization) {
  std::string target = (ipv6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
  std::string req = "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n";
  if (!authorization.empty()) req += "Proxy-Authorization: " + authorization + "\r\n";
  req += "\r\n";
  return req;
}

ConnectReply readConnectReply(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                              size_t& consumed, int& status, std::string& error, Headers* headers) {
  HttpResponse res;
  consumed = 0;
  status = 0;
  HttpParse r = parseHttpResponse(buf, len, maxHeaderSize, maxHeaders, res, consumed, error);
  if (r == HttpParse::Incomplete) return ConnectReply::Incomplete;
  if (r == HttpParse::TooLarge) {
    error = "proxy's reply to CONNECT is too large";
    return ConnectReply::Bad;
  }
  if (r != HttpParse::Done) {
    error = "bad reply from proxy to CONNECT: " + error;
    return ConnectReply::Bad;
  }
  status = res.status;
  if (interimStatus(res.status)) {
    error.clear();
    return ConnectReply::Interim;
  }
  if (res.status >= 200 && res.status <= 299) {
    error.clear();
    return ConnectReply::Established;
  }
  error = "proxy refused CONNECT: " + std::to_string(res.status);
  // The proxy's reason phrase, printable and short: it ends up in a message
  // for a reader.
  std::string reason = printableText(res.reason, 100);
  if (!reason.empty()) error += " " + reason;
  if (headers) *headers = std::move(res.headers);
  return ConnectReply::Refused;
}

}  // namespace wsengine
