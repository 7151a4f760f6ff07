// The client's tunnel through an HTTP proxy (RFC 9110 §9.3.6): once TCP to
// the proxy is up, CONNECT host:port; a 2xx reply makes the socket a byte
// pipe to the target, in which TLS (wss://) and the opening handshake run as
// on a direct connection. Any other reply fails the attempt with its status.
// Loop thread only.
#include <cstring>

#include "connection.h"
#include "proxy.h"

namespace wsengine {

void Connection::beginTunnel() {
  tunneling_ = true;
  outbox_.writeRaw(cfg().proxyConnect);
}

void Connection::handleTunnelBytes(uint8_t* data, size_t len) {
  std::string& buf = hs_->buf;
  buf.append(reinterpret_cast<const char*>(data), len);
  // As for the handshake: only a chunk with '\n' can end the head.
  if (!std::memchr(data, '\n', len) && buf.size() <= cfg().limits.maxHeaderSize) return;
  size_t consumed = 0;
  int status = 0;
  std::string error;
  ConnectReply reply;
  // Interim replies (100 Continue...) are skipped by offset, each within the
  // head limits, and dropped once; the attempt's timeout bounds a proxy that
  // sends nothing else.
  size_t skipped = 0;
  while ((reply = readConnectReply(buf.data() + skipped, buf.size() - skipped,
                                   cfg().limits.maxHeaderSize, cfg().limits.maxHeaders, consumed,
                                   status, error, &hs_->headers)) == ConnectReply::Interim) {
    skipped += consumed;
  }
  buf.erase(0, skipped);
  switch (reply) {
    case ConnectReply::Incomplete:
    case ConnectReply::Interim:
      return;
    case ConnectReply::Refused:
      // The refusal's headers (hs_->headers) go to the start's status.
      return failHandshake(status, error);
    case ConnectReply::Bad:
      return failHandshake(0, error);
    case ConnectReply::Established:
      break;
  }
  // The target speaks only after we do (TLS ClientHello or the upgrade
  // request): bytes behind the reply are the proxy's, not the target's.
  if (consumed != buf.size()) return failHandshake(0, "proxy sent data after its reply to CONNECT");
  buf.clear();
  tunneling_ = false;
  beginTransport();
}

}  // namespace wsengine
