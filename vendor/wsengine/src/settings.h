// What the connections of one server start, or of one client start, share:
// one immutable ConnSettings behind a shared_ptr (the connections keep the
// start they were made for even after a restart), and the server's budget of
// bytes in unfinished messages. Threading: ConnSettings is never written
// after it is shared, so any thread may read it; ByteBudget is atomic.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "wsengine/wsengine.h"

namespace wsengine {

class TlsContext;
class ConnectionOwner;

// A byte budget shared by the connections of one server (any thread): the
// bytes they hold in unfinished messages (maxUnfinishedBytes).
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t limit) : limit_(limit) {}
  // Takes n bytes when the total stays within the limit; else takes nothing.
  bool take(uint64_t n) {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    do {
      if (cur > limit_ || n > limit_ - cur) return false;
    } while (!used_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed));
    return true;
  }
  // Takes n bytes even beyond the limit (see kUnbudgetedBytes in receiver.h).
  void force(uint64_t n) { used_.fetch_add(n, std::memory_order_relaxed); }
  void give(uint64_t n) { used_.fetch_sub(n, std::memory_order_relaxed); }
  // What take() could still grant now.
  uint64_t room() const {
    uint64_t cur = used_.load(std::memory_order_relaxed);
    return cur >= limit_ ? 0 : limit_ - cur;
  }
  uint64_t used() const { return used_.load(std::memory_order_relaxed); }
  uint64_t limit() const { return limit_; }

 private:
  const uint64_t limit_;
  std::atomic<uint64_t> used_{0};
};

struct ConnSettings {
  // Who the connections report to, and where their events go (ownerTag in
  // each event): the same for every connection of a start, so held here once
  // instead of 40 bytes per connection. The owner is weak: a server or client
  // holds its current settings, so a strong reference would be a cycle; an
  // owner that is gone (its Server/Client destroyed, which stops it hard) has
  // nothing left to learn from its connections, and they skip the calls.
  std::weak_ptr<ConnectionOwner> owner;
  std::shared_ptr<EventSink> sink;
  uint64_t ownerTag = 0;
  bool server = true;
  Heartbeat heartbeat;
  DeflateOptions deflate;
  Limits limits;
  double closeTimeout = 2.0;         // seconds to wait for the peer's close reply / FIN
  std::shared_ptr<TlsContext> tls;   // null: plain TCP
  // Server role: the server-wide budget of bytes in unfinished messages
  // (maxUnfinishedBytes); null: none.
  std::shared_ptr<ByteBudget> unfinished;
  // Server role (ServerOptions): subprotocols, origins, the owner's verdict.
  std::vector<std::string> protocols;  // client role: the offer
  std::vector<std::string> allowedOrigins;
  bool verifyClient = false;
  bool closeReplyOnAck = false;  // both roles
  // Client role: what the opening handshake sends.
  std::string tlsHost;     // SNI and the name the certificate must carry
  std::string tlsPeer;     // "host:port" connected to (TLS session resumption's key)
  std::string hostHeader;  // Host
  std::string target;      // request target (path and query)
  Headers extraHeaders;
  // Through an HTTP proxy: the CONNECT request sent first (tunnel.cc); its
  // 2xx reply opens the tunnel in which TLS and the handshake run. Empty:
  // direct.
  std::string proxyConnect;
  // Inline mode: the embedder's loop the connections run on, held for as
  // long as any of them lives (null: an IO thread's, which never goes away).
  std::shared_ptr<IoLoop> embeddedLoop;
};

using ConnSettingsPtr = std::shared_ptr<const ConnSettings>;

// A start's settings with what ServerOptions and ClientOptions both carry
// filled in; the caller adds its role's own.
template <class Options>
std::shared_ptr<ConnSettings> startSettings(std::weak_ptr<ConnectionOwner> owner,
                                            std::shared_ptr<EventSink> sink, uint64_t ownerTag,
                                            bool server, const Options& opts) {
  auto s = std::make_shared<ConnSettings>();
  s->owner = std::move(owner);
  s->sink = std::move(sink);
  s->ownerTag = ownerTag;
  s->server = server;
  s->heartbeat = opts.heartbeat;
  s->deflate = opts.deflate;
  s->limits = opts.limits;
  s->protocols = opts.protocols;
  s->closeReplyOnAck = opts.closeReplyOnAck;
  s->embeddedLoop = opts.loop;
  return s;
}

}  // namespace wsengine
