// The HTTP/1.1 opening handshake of RFC 6455 §4: parsing request and response
// heads (bounded), validating them, and building the messages we send.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "wsengine/wsengine.h"

namespace wsengine {

struct HttpRequest {
  std::string method, target, version;
  Headers headers;  // names as received, in order
  // Case-insensitive lookup; repeated headers are joined with ", ".
  // Returns false when absent.
  bool get(const char* name, std::string& value) const;
};

struct HttpResponse {
  std::string version;
  int status = 0;
  std::string reason;
  Headers headers;
  bool get(const char* name, std::string& value) const;
};

enum class HttpParse { Incomplete, Done, Bad, TooLarge };

// Parses a request head from buf[0, len). Done: `consumed` is the head's
// length including the blank line. TooLarge: the head (so far) exceeds
// maxHeaderSize or has more than maxHeaders headers. Bad: malformed, with
// `error` saying why.
HttpParse parseHttpRequest(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                           HttpRequest& out, size_t& consumed, std::string& error);
HttpParse parseHttpResponse(const char* buf, size_t len, size_t maxHeaderSize, int maxHeaders,
                            HttpResponse& out, size_t& consumed, std::string& error);

// base64(SHA-1(key + GUID)) per §4.2.2.
std::string computeAcceptKey(const std::string& clientKey);
// A fresh Sec-WebSocket-Key: base64 of 16 random bytes.
std::string makeClientKey();

struct UpgradeVerdict {
  int status = 0;  // 0: acceptable; else the HTTP status to answer (400, 405, 426)
  std::string reason;
};
// Checks a client's opening handshake per §4.2.1 (GET, HTTP/1.1, Host,
// Upgrade: websocket, Connection: upgrade token, a key decoding to 16 bytes,
// Sec-WebSocket-Version: 13 else 426).
UpgradeVerdict validateUpgradeRequest(const HttpRequest& req);

// "HTTP/1.1 101 Switching Protocols" with Upgrade, Connection,
// Sec-WebSocket-Accept, Sec-WebSocket-Extensions and Sec-WebSocket-Protocol
// when not empty, and the extra headers (entries unfit for a head dropped).
std::string buildUpgradeResponse(const std::string& acceptKey, const std::string& extensions,
                                 const std::string& protocol = std::string(),
                                 const Headers& extra = Headers());
// A complete error response with a short text body and Connection: close;
// 426 adds Sec-WebSocket-Version: 13; then the extra headers.
std::string buildErrorResponse(int status, const std::string& reason,
                               const Headers& extra = Headers());

// `s` for a message a person reads: printable ASCII, '?' for any other
// byte, at most `max` bytes (a peer's reason phrase, which it chose).
std::string printableText(const std::string& s, size_t max);

// An interim response (RFC 9110 §15.2: 1xx but 101, e.g. 100 Continue, 103
// Early Hints): a client skips it and reads the final response after it.
bool interimStatus(int status);

// RFC 7230 token (the syntax of a subprotocol name, RFC 6455 §4.1).
bool isToken(const std::string& s);
// A comma-separated list of tokens (Sec-WebSocket-Protocol); false when an
// element is empty or not a token.
bool parseTokenList(const std::string& value, std::vector<std::string>& out);
// Origins compare ASCII case-insensitively (RFC 6454 §6.2 serializes them
// lower case; a client may not).
bool sameOrigin(const std::string& a, const std::string& b);

// GET request for the client. hostHeader includes ":port" when not default.
std::string buildUpgradeRequest(const std::string& hostHeader, const std::string& target,
                                const std::string& key, const std::string& extensions,
                                const std::vector<std::string>& protocols, const Headers& extra);
// Checks a server's answer per §4.1 (101, Upgrade, Connection, Accept).
// On failure returns false with a readable error.
bool validateUpgradeResponse(const HttpResponse& res, const std::string& expectedAccept,
                             std::string& error);

}  // namespace wsengine
