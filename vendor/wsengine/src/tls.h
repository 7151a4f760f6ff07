// TLS over memory BIOs: the connection moves ciphertext between the socket
// and the session; OpenSSL never touches the socket. IO threads only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "wsengine/wsengine.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;
typedef struct bio_st BIO;
typedef struct x509_store_st X509_STORE;

namespace wsengine {

// An SSL_CTX built from TlsOptions; shared by the connections of one server
// or one client start.
class TlsContext {
 public:
  // Server: certificate and key (PEM text or files) required; verifyPeer
  // requires client certificates and verifies them against ca/caFile, which
  // it then requires (the system store is never used for client certs).
  static std::shared_ptr<TlsContext> createServer(const TlsOptions& opts, std::string& error);
  // Client: ca/caFile when given (they replace the default store, as in
  // Node's tls), else the system's default CA store (SSL_CERT_FILE /
  // SSL_CERT_DIR); verification on unless verifyPeer is false; optional
  // client certificate and key. The system store is loaded once and shared
  // by every client context while one holds it (see systemStore in tls.cc).
  static std::shared_ptr<TlsContext> createClient(const TlsOptions& opts, std::string& error);
  ~TlsContext();
  SSL_CTX* ctx() const { return ctx_; }
  const TlsOptions& options() const { return opts_; }

 private:
  SSL_CTX* ctx_ = nullptr;
  TlsOptions opts_;
  // The shared system store this context trusts (null with ca/caFile, and
  // for servers); released after ~TlsContext has freed ctx_.
  std::shared_ptr<X509_STORE> store_;
};

class TlsSession {
 public:
  // Client: `host` is used for SNI and host name verification (unless
  // disabled); an IP address literal is verified as an IP, without SNI.
  TlsSession(std::shared_ptr<TlsContext> ctx, bool server, const std::string& host);
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
  std::string error_;

  bool advanceHandshake();
  void fail(const char* prefix, int sslError);
};

}  // namespace wsengine
