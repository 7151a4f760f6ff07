#include "http.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstring>
#include <initializer_list>

#include "random.h"

namespace wsengine {

namespace {

const char kGuid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

char lowerChar(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

bool equalsNoCase(const std::string& a, const char* b) {
  size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (lowerChar(a[i]) != lowerChar(b[i])) return false;
  return true;
}

bool getHeader(const Headers& headers, const char* name, std::string& value) {
  bool found = false;
  value.clear();
  for (const auto& h : headers) {
    if (!equalsNoCase(h.first, name)) continue;
    if (found) value += ", ";
    value += h.second;
    found = true;
  }
  return found;
}

// RFC 7230 tchar.
bool isTokenChar(char ch) {
  unsigned char c = static_cast<unsigned char>(ch);
  if (std::isalnum(c)) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
  return s.substr(b, e - b);
}

// True when the comma-separated list holds `token` (case-insensitive).
bool listHasToken(const std::string& list, const char* token) {
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string::npos) comma = list.size();
    if (equalsNoCase(trim(list.substr(start, comma - start)), token)) return true;
    start = comma + 1;
  }
  return false;
}

bool parseVersion(const std::string& v, int& major, int& minor) {
  if (v.size() != 8 || v.compare(0, 5, "HTTP/") != 0 || !std::isdigit(static_cast<unsigned char>(v[5])) ||
      v[6] != '.' || !std::isdigit(static_cast<unsigned char>(v[7])))
    return false;
  major = v[5] - '0';
  minor = v[7] - '0';
  return true;
}

// Finds the end of the head. Returns Done with headEnd (just past the blank
// line), Incomplete, TooLarge, or Bad for a line ending that is not CRLF
// (bare LF or CR) so a peer using them is refused at once.
HttpParse findHeadEnd(const char* buf, size_t len, size_t maxHeaderSize, size_t& headEnd,
                      std::string& error) {
  const size_t limit = (maxHeaderSize && len > maxHeaderSize) ? maxHeaderSize : len;
  for (size_t i = 0; i < limit; ++i) {
    if (buf[i] == '\r') {
      if (i + 1 < len && buf[i + 1] != '\n') {
        error = "CR not followed by LF";
        return HttpParse::Bad;
      }
    } else if (buf[i] == '\n') {
      if (i == 0 || buf[i - 1] != '\r') {
        error = "Line ending without CR";
        return HttpParse::Bad;
      }
      if (i >= 3 && buf[i - 2] == '\n' && buf[i - 3] == '\r') {
        headEnd = i + 1;
        return HttpParse::Done;
      }
    }
  }
  if (maxHeaderSize && len >= maxHeaderSize) {
    error = "HTTP head too large";
    return HttpParse::TooLarge;
  }
  return HttpParse::Incomplete;
}

// Parses "Name: value" lines between [p, end), each ending in CRLF, up to the
// blank line. maxHeaders <= 0: no limit.
HttpParse parseHeaderLines(const char* p, const char* end, int maxHeaders, Headers& out,
                           std::string& error) {
  int count = 0;
  while (p < end) {
    const char* eol = static_cast<const char*>(std::memchr(p, '\r', end - p));
    if (!eol) {
      error = "Malformed header block";
      return HttpParse::Bad;
    }
    if (eol == p) return HttpParse::Done;  // the blank line
    if (*p == ' ' || *p == '\t') {
      error = "Obsolete header line folding";
      return HttpParse::Bad;
    }
    if (maxHeaders > 0 && ++count > maxHeaders) {
      error = "Too many headers";
      return HttpParse::TooLarge;
    }
    const char* colon = p;
    while (colon < eol && isTokenChar(*colon)) ++colon;
    if (colon == p || colon == eol || *colon != ':') {
      error = "Malformed header line";
      return HttpParse::Bad;
    }
    for (const char* c = colon + 1; c < eol; ++c) {
      unsigned char u = static_cast<unsigned char>(*c);
      if ((u < 0x20 && u != '\t') || u == 0x7F) {
        error = "Control character in header value";
        return HttpParse::Bad;
      }
    }
    out.emplace_back(std::string(p, colon), trim(std::string(colon + 1, eol)));
    p = eol + 2;
  }
  error = "Malformed header block";
  return HttpParse::Bad;
}

// Splits the first line off [buf, headEnd).
std::string firstLine(const char* buf, size_t headEnd, const char*& rest) {
  const char* eol = static_cast<const char*>(std::memchr(buf, '\r', headEnd));
  rest = eol + 2;
  return std::string(buf, eol);
}

bool validTarget(const std::string& t) {
  if (t.empty()) return false;
  for (char ch : t) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c == 0x7F) return false;
  }
  return true;
}

// The reason phrases of RFC 9110 §15 (and 6585 for 428/429/431/511, 7725
// for 451, 8297 for 103); an unregistered status gets its class's name.
const char* reasonPhrase(int status) {
  switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 103: return "Early Hints";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 203: return "Non-Authoritative Information";
    case 204: return "No Content";
    case 205: return "Reset Content";
    case 206: return "Partial Content";
    case 300: return "Multiple Choices";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 402: return "Payment Required";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 416: return "Range Not Satisfiable";
    case 417: return "Expectation Failed";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 425: return "Too Early";
    case 426: return "Upgrade Required";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 451: return "Unavailable For Legal Reasons";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 511: return "Network Authentication Required";
    default: break;
  }
  switch (status / 100) {
    case 1: return "Informational";
    case 2: return "Success";
    case 3: return "Redirection";
    case 4: return "Client Error";
    default: return "Server Error";
  }
}

int base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

// A Sec-WebSocket-Key decodes to exactly 16 bytes: 22 base64 characters
// then "==" (RFC 6455 §4.1 item 7).
bool validClientKey(const std::string& key) {
  if (key.size() != 24 || key[22] != '=' || key[23] != '=') return false;
  for (size_t i = 0; i < 22; ++i)
    if (base64Value(key[i]) < 0) return false;
  return true;
}

std::string base64(const unsigned char* data, size_t len) {
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(&out[0]), data, static_cast<int>(len));
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

bool safeHeaderText(const std::string& s) {
  return s.find_first_of("\r\n", 0) == std::string::npos && s.find('\0') == std::string::npos;
}

// Extra headers the caller gives (client request, server answers): a name
// that is not a token or a value able to end the line would let it inject
// headers or a body, and a name the message writes itself (engineOwnsHeader)
// would be a second copy, so such entries are left out. Those named in
// `replaced` were written already, with the extra's value.
void appendHeaders(std::string& r, const Headers& extra, bool request,
                   std::initializer_list<const char*> replaced = {}) {
  for (const auto& h : extra) {
    bool nameOk = !h.first.empty();
    for (char c : h.first) nameOk = nameOk && isTokenChar(c);
    if (!nameOk || !safeHeaderText(h.second) || engineOwnsHeader(request, h.first)) continue;
    bool done = false;
    for (const char* name : replaced) done = done || equalsNoCase(h.first, name);
    if (!done) r += h.first + ": " + h.second + "\r\n";
  }
}

// The value of the last extra header named `name` that a message may carry,
// else `fallback`: the defaults an extra header replaces (Host, User-Agent,
// Content-Type) are written once, with the caller's value when it gave one.
std::string extraOr(const Headers& extra, const char* name, const std::string& fallback) {
  std::string v = fallback;
  for (const auto& h : extra)
    if (equalsNoCase(h.first, name) && safeHeaderText(h.second)) v = h.second;
  return v;
}

}  // namespace

std::string printableText(const std::string& s, size_t max) {
  std::string out;
  for (char c : s) {
    if (out.size() >= max) break;
    out += (c >= 0x20 && c < 0x7F) ? c : '?';
  }
  return out;
}

bool interimStatus(int status) { return status >= 100 && status <= 199 && status != 101; }

bool engineOwnsHeader(bool request, const std::string& name) {
  // Both: the upgrade itself and the negotiation, which have options of their
  // own (protocols, perMessageDeflate; a verifyClient answer's protocol).
  for (const char* n : {"Upgrade", "Connection", "Sec-WebSocket-Extensions", "Sec-WebSocket-Protocol",
                        "Sec-WebSocket-Version"})
    if (equalsNoCase(name, n)) return true;
  if (request) return equalsNoCase(name, "Sec-WebSocket-Key");
  // An answer's framing: a second length, or a chunked coding, would make
  // where its body ends ambiguous (RFC 9112 §6.3).
  return equalsNoCase(name, "Sec-WebSocket-Accept") || equalsNoCase(name, "Content-Length") ||
         equalsNoCase(name, "Transfer-Encoding");
}

bool isToken(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s)
    if (!isTokenChar(c)) return false;
  return true;
}

bool sameOrigin(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lowerChar(a[i]) != lowerChar(b[i])) return false;
  return true;
}

bool parseTokenList(const std::string& value, std::vector<std::string>& out) {
  out.clear();
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    if (comma == std::string::npos) comma = value.size();
    std::string item = trim(value.substr(start, comma - start));
    if (!isToken(item)) return false;
    out.push_back(std::move(item));
    start = comma + 1;
  }
  return true;
}

bool HttpRequest::get(const char* name, std::string& value) const {
  return getHeader(headers, name, value);
}

bool HttpResponse::get(const char* name, std::string& value) const {
  return getHeader(headers, name, value);
}

HttpParse parseHttpRequest(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                           HttpRequest& out, size_t& consumed, std::string& error) {
  size_t headEnd = 0;
  HttpParse r = findHeadEnd(buf, len, maxHeaderSize, headEnd, error);
  if (r != HttpParse::Done) return r;
  out = HttpRequest();
  const char* rest;
  std::string line = firstLine(buf, headEnd, rest);
  size_t sp1 = line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || line.find(' ', sp2 + 1) != std::string::npos) {
    error = "Malformed request line";
    return HttpParse::Bad;
  }
  out.method = line.substr(0, sp1);
  out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  out.version = line.substr(sp2 + 1);
  int major, minor;
  bool methodOk = !out.method.empty();
  for (char c : out.method) methodOk = methodOk && isTokenChar(c);
  if (!methodOk || !validTarget(out.target) || !parseVersion(out.version, major, minor)) {
    error = "Malformed request line";
    return HttpParse::Bad;
  }
  r = parseHeaderLines(rest, buf + headEnd, maxHeaders, out.headers, error);
  if (r != HttpParse::Done) return r;
  consumed = headEnd;
  error.clear();
  return HttpParse::Done;
}

HttpParse parseHttpResponse(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                            HttpResponse& out, size_t& consumed, std::string& error) {
  size_t headEnd = 0;
  HttpParse r = findHeadEnd(buf, len, maxHeaderSize, headEnd, error);
  if (r != HttpParse::Done) return r;
  out = HttpResponse();
  const char* rest;
  std::string line = firstLine(buf, headEnd, rest);
  // "HTTP/1.1 101 Switching Protocols"; the reason phrase may be missing.
  int major, minor;
  size_t sp = line.find(' ');
  out.version = line.substr(0, sp);
  if (sp == std::string::npos || !parseVersion(out.version, major, minor) || line.size() < sp + 4 ||
      !std::isdigit(static_cast<unsigned char>(line[sp + 1])) ||
      !std::isdigit(static_cast<unsigned char>(line[sp + 2])) ||
      !std::isdigit(static_cast<unsigned char>(line[sp + 3])) ||
      (line.size() > sp + 4 && line[sp + 4] != ' ')) {
    error = "Malformed status line";
    return HttpParse::Bad;
  }
  out.status = std::stoi(line.substr(sp + 1, 3));
  out.reason = line.size() > sp + 5 ? line.substr(sp + 5) : std::string();
  r = parseHeaderLines(rest, buf + headEnd, maxHeaders, out.headers, error);
  if (r != HttpParse::Done) return r;
  consumed = headEnd;
  error.clear();
  return HttpParse::Done;
}

std::string computeAcceptKey(const std::string& clientKey) {
  std::string input = clientKey + kGuid;
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &n, EVP_sha1(), nullptr) != 1) return "";
  return base64(digest, n);
}

std::string makeClientKey() {
  uint8_t nonce[16];
  randomBytes(nonce, sizeof nonce);
  return base64(nonce, sizeof nonce);
}

UpgradeVerdict validateUpgradeRequest(const HttpRequest& req) {
  UpgradeVerdict v;
  auto reject = [&](int status, const char* reason) {
    v.status = status;
    v.reason = reason;
    return v;
  };
  if (req.method != "GET") return reject(405, "Method Not Allowed: a WebSocket handshake uses GET");
  int major = 0, minor = 0;
  if (!parseVersion(req.version, major, minor) || major < 1 || (major == 1 && minor < 1))
    return reject(400, "Bad Request: HTTP/1.1 or later is required");
  std::string value;
  if (!req.get("Host", value) || value.empty()) return reject(400, "Bad Request: missing Host header");
  if (!req.get("Upgrade", value) || !listHasToken(value, "websocket"))
    return reject(400, "Bad Request: Upgrade header must be 'websocket'");
  if (!req.get("Connection", value) || !listHasToken(value, "upgrade"))
    return reject(400, "Bad Request: Connection header must contain 'Upgrade'");
  if (!req.get("Sec-WebSocket-Key", value) || !validClientKey(value))
    return reject(400, "Bad Request: invalid or missing Sec-WebSocket-Key");
  if (!req.get("Sec-WebSocket-Version", value) || value != "13")
    return reject(426, "Upgrade Required: Sec-WebSocket-Version 13 is required");
  return v;
}

std::string buildUpgradeResponse(const std::string& acceptKey, const std::string& extensions,
                                 const std::string& protocol, const Headers& extra) {
  std::string r =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: " +
      acceptKey + "\r\n";
  if (!extensions.empty()) r += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
  if (!protocol.empty()) r += "Sec-WebSocket-Protocol: " + protocol + "\r\n";
  appendHeaders(r, extra, false);
  r += "\r\n";
  return r;
}

std::string buildErrorResponse(int status, const std::string& reason, const Headers& extra) {
  const std::string body = reason.empty() ? reasonPhrase(status) : reason;
  std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reasonPhrase(status) + "\r\n";
  r += "Content-Type: " + extraOr(extra, "Content-Type", "text/plain") + "\r\n";
  r += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  r += "Connection: close\r\n";
  if (status == 405) r += "Allow: GET\r\n";  // required with 405 (RFC 7231 §6.5.5)
  if (status == 426) r += "Sec-WebSocket-Version: 13\r\n";
  appendHeaders(r, extra, false, {"Content-Type"});
  r += "\r\n";
  r += body;
  return r;
}

std::string buildUpgradeRequest(const std::string& hostHeader, const std::string& target,
                                const std::string& key, const std::string& extensions,
                                const std::vector<std::string>& protocols, const Headers& extra) {
  std::string r = "GET " + target + " HTTP/1.1\r\n";
  r += "Host: " + extraOr(extra, "Host", hostHeader) + "\r\n";
  r += "Upgrade: websocket\r\n";
  r += "Connection: Upgrade\r\n";
  r += "Sec-WebSocket-Key: " + key + "\r\n";
  r += "Sec-WebSocket-Version: 13\r\n";
  if (!extensions.empty()) r += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
  if (!protocols.empty()) {
    r += "Sec-WebSocket-Protocol: ";
    for (size_t i = 0; i < protocols.size(); ++i) r += (i ? ", " : "") + protocols[i];
    r += "\r\n";
  }
  r += "User-Agent: " + extraOr(extra, "User-Agent", "ix-websocket") + "\r\n";
  appendHeaders(r, extra, true, {"Host", "User-Agent"});
  r += "\r\n";
  return r;
}

bool validateUpgradeResponse(const HttpResponse& res, const std::string& expectedAccept,
                             std::string& error) {
  if (res.status != 101) {
    error = "Expected HTTP 101 response but got " + std::to_string(res.status);
    std::string reason = printableText(res.reason, 100);
    if (!reason.empty()) error += " " + reason;
    return false;
  }
  // HTTP/1.0 has no Upgrade (RFC 9110 §7.8 needs 1.1): a 1.0 "101" is not
  // a switch a client can trust, and HTTP/2 and later never send one. (Any
  // other status keeps its own message, whatever its version.)
  int major = 0, minor = 0;
  if (!parseVersion(res.version, major, minor) || major != 1 || minor < 1) {
    error = "Expected an HTTP/1.1 response but got " + printableText(res.version, 20) + " 101";
    return false;
  }
  std::string value;
  if (!res.get("Upgrade", value) || !listHasToken(value, "websocket")) {
    error = "Invalid Upgrade header in the server response (expected 'websocket')";
    return false;
  }
  if (!res.get("Connection", value) || !listHasToken(value, "upgrade")) {
    error = "Invalid Connection header in the server response (expected 'Upgrade')";
    return false;
  }
  if (!res.get("Sec-WebSocket-Accept", value)) {
    error = "Missing Sec-WebSocket-Accept header in the server response";
    return false;
  }
  if (value != expectedAccept) {
    error = "Invalid Sec-WebSocket-Accept value in the server response";
    return false;
  }
  error.clear();
  return true;
}

}  // namespace wsengine
