// TLS over memory BIOs: the connection moves ciphertext between the socket
// and the session; OpenSSL never touches the socket. IO threads only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "wsengine/wsengine.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct x509_store_st X509_STORE;
typedef struct ssl_session_st SSL_SESSION;

namespace wsengine {

// An SSL_CTX built from TlsOptions; shared by the connections of one server
// or one client start.
class TlsContext {
 public:
  // Server: certificate and key (PEM text or files) required; verifyPeer
  // requires client certificates and verifies them against ca/caFile, which
  // it then requires (the system store is never used for client certs).
  static std::shared_ptr<TlsContext> createServer(const TlsOptions& opts, std::string& error);
  // Server: the keys that encrypt session tickets (RFC 5077 / RFC 8446
  // §4.6.1): kTicketKeysSize bytes (name, HMAC and AES keys). OpenSSL draws
  // them per context; the server object keeps its own across stop and start,
  // so that clients cut off by a restart resume (servers without
  // verifyPeer: see server.cc).
  static constexpr size_t kTicketKeysSize = 80;
  bool setTicketKeys(const uint8_t* keys);
  // Client: ca/caFile when given (they replace the default store, as in
  // Node's tls), else the system's default CA store (SSL_CERT_FILE /
  // SSL_CERT_DIR); verification on unless verifyPeer is false; optional
  // client certificate and key. The system store is loaded once and shared
  // by every client context while one holds it (see systemStore in tls.cc).
  static std::shared_ptr<TlsContext> createClient(const TlsOptions& opts, std::string& error);
  ~TlsContext();
  SSL_CTX* ctx() const { return ctx_; }
  const TlsOptions& options() const { return opts_; }

  // Client: the sessions servers offered for resumption (a TLS 1.3 ticket,
  // RFC 8446 §4.6.1; a TLS 1.2 session, RFC 5246 §7.3 / RFC 5077), one per
  // peer. A peer is the address connected to plus the name verified, so a
  // session is only offered back to the server that made it, under the name
  // its certificate was checked for. A reconnection that resumes skips the
  // certificate exchange: the client verifies no chain, the server signs
  // nothing. The context lives for one client start, so do its sessions.
  // saveSession takes the caller's reference; sessionFor hands one over
  // (null: none), the newest first. A TLS 1.3 ticket is used once (RFC 8446
  // §C.4: reuse would let an observer link the connections; OpenSSL marks a
  // used ticket not resumable), so a few are kept per peer: servers send two
  // after a full handshake, and OpenSSL's one more after each resumption
  // (Node's send none then, so every third reconnection to a Node server is
  // a full handshake). A TLS 1.2 session is reused until a newer one comes.
  void saveSession(const std::string& peer, SSL_SESSION* session);
  SSL_SESSION* sessionFor(const std::string& peer);
  // Sessions kept for `peer`; peers that have some.
  size_t sessionCount(const std::string& peer);
  size_t peerCount();

 private:
  SSL_CTX* ctx_ = nullptr;
  TlsOptions opts_;
  std::mutex sessionsMu_;
  struct Saved {
    std::vector<SSL_SESSION*> sessions;  // newest last
    uint64_t serial = 0;                 // when one was last saved: the oldest peer goes first
  };
  std::map<std::string, Saved> sessions_;  // kMaxPeers at most
  uint64_t saved_ = 0;
  // The shared system store this context trusts (null with ca/caFile, and
  // for servers); released after ~TlsContext has freed ctx_.
  std::shared_ptr<X509_STORE> store_;
};

class TlsSession {
 public:
  // Client: `host` is used for SNI and host name verification (unless
  // disabled); an IP address literal is verified as an IP, without SNI. The
  // caller passes TlsOptions::servername there when it applies (the client
  // does for its url's own host, not for a redirect to another).
  // `peer` (client, optional) names the server for session resumption: a
  // session the context holds for it is offered, and the ones this
  // connection receives are kept for it (TlsContext::saveSession).
  TlsSession(std::shared_ptr<TlsContext> ctx, bool server, const std::string& host,
             const std::string& peer = std::string());
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  // Client: queues the ClientHello (take it with takeOutput).
  bool startHandshake();
  // Ciphertext from the socket. Decrypted application data is appended to
  // plain. False on a fatal error (then error() says why, e.g. the
  // certificate verification failure). Handshake progress happens here.
  bool feed(const uint8_t* data, size_t len, std::string& plain);
  // Encrypts application data (only after handshakeDone()).
  bool write(const uint8_t* data, size_t len);
  bool handshakeDone() const { return done_; }
  // Once the handshake is done: an earlier session was resumed; the
  // protocol version ("TLSv1.3"); the cipher suite; the peer's certificate
  // as PEM ("" when it presented none; a resumed session still has it).
  bool resumed() const;
  std::string protocolName() const;
  std::string cipherName() const;
  std::string peerCertificatePem() const;
  // The peer's close_notify arrived: it sends nothing more (RFC 8446 §6.1).
  bool peerClosed() const { return peerClosed_; }
  // Ciphertext waiting for the socket, appended to out and removed here.
  void takeOutput(std::string& out);
  bool hasOutput() const;
  // Queues close_notify.
  void shutdown();
  const std::string& error() const { return error_; }

 private:
  std::shared_ptr<TlsContext> ctx_;
  SSL* ssl_ = nullptr;
  BIO* in_ = nullptr;   // network -> SSL
  BIO* out_ = nullptr;  // SSL -> network
  bool done_ = false;
  bool failed_ = false;        // fatal error seen: the session is dead
  bool peerClosed_ = false;    // close_notify received
  bool shutdownSent_ = false;  // our close_notify queued
  std::string verifyName_;     // host or IP checked against the certificate
  std::string peer_;           // client: the resumption key (see TlsContext)
  std::string error_;

  // OpenSSL's new-session callback (client contexts): hands the session to
  // the context under the connection's peer.
  static int onNewSession(SSL* ssl, SSL_SESSION* session);
  friend class TlsContext;

  bool advanceHandshake();
  void fail(const char* prefix, int sslError);
};

}  // namespace wsengine
