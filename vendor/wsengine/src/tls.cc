// TLS over memory BIOs (see tls.h). OpenSSL 3.0 API.
#include "tls.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <sys/stat.h>

#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

namespace wsengine {

namespace {

// The thread's OpenSSL error queue as text, emptied. Reason strings are
// friendlier than the full "error:0A000086:SSL routines::..." form; the latter
// is the fallback when a reason has no text.
// `verifyFailed` (optional) tells whether certificate verification was among
// the failures.
std::string drainErrors(bool* verifyFailed = nullptr) {
  std::string text;
  for (;;) {
    const char* data = nullptr;
    int flags = 0;
    unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
    if (e == 0) break;
    if (verifyFailed && ERR_GET_LIB(e) == ERR_LIB_SSL &&
        ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED)
      *verifyFailed = true;
    std::string one;
    if (const char* reason = ERR_reason_error_string(e)) {
      one = reason;
    } else {
      char buf[256];
      ERR_error_string_n(e, buf, sizeof buf);
      one = buf;
    }
    if (ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST)
      one = "plain HTTP request received on a TLS port";
    if ((flags & ERR_TXT_STRING) && data && *data) one += std::string(" (") + data + ")";
    // The same reason is often queued several times on the way up the stack.
    if (text.find(one) != std::string::npos) continue;
    if (!text.empty()) text += "; ";
    text += one;
  }
  return text.empty() ? std::string("unknown error") : text;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// A passphrase callback that supplies none: without it OpenSSL would prompt
// on the terminal for an encrypted key, blocking an IO thread.
int noPassphrase(char*, int, int, void*) { return 0; }

// Whether a PEM private key (text, else the file's start) is encrypted:
// PKCS#8 "ENCRYPTED PRIVATE KEY", or a traditional key's
// "Proc-Type: 4,ENCRYPTED" header (RFC 1421).
bool pemIsEncrypted(const std::string& text, const std::string& file) {
  std::string head = text;
  if (head.empty() && !file.empty()) {
    if (FILE* f = std::fopen(file.c_str(), "rb")) {
      char buf[4096];
      size_t n = std::fread(buf, 1, sizeof buf, f);
      std::fclose(f);
      head.assign(buf, n);
    }
  }
  return head.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") != std::string::npos ||
         head.find("Proc-Type: 4,ENCRYPTED") != std::string::npos;
}

// The passphrase given (tls.passphrase), for an encrypted private key.
int givenPassphrase(char* buf, int size, int, void* user) {
  const std::string& p = *static_cast<const std::string*>(user);
  if (size <= 0 || p.size() > static_cast<size_t>(size)) return 0;  // too long: no key
  std::memcpy(buf, p.data(), p.size());
  return static_cast<int>(p.size());
}

// PEM text wins over the file, as TlsOptions says. Null with `error` set
// when neither is usable.
BioPtr openPem(const std::string& text, const std::string& file, const char* what,
               std::string& error) {
  BIO* b = nullptr;
  if (!text.empty()) {
    if (text.size() > static_cast<size_t>(INT_MAX)) {
      error = std::string("TLS: ") + what + " is too large";
      return nullptr;
    }
    b = BIO_new_mem_buf(text.data(), static_cast<int>(text.size()));
  } else {
    b = BIO_new_file(file.c_str(), "r");
    if (!b) {
      error = std::string("TLS: cannot open ") + what + " file '" + file + "': " + drainErrors();
      return nullptr;
    }
  }
  if (!b) error = std::string("TLS: out of memory reading ") + what;
  return BioPtr(b);
}

// Every certificate of a PEM bundle, in order.
bool readCerts(BIO* bio, std::vector<X509Ptr>& certs, const char* what, std::string& error) {
  for (;;) {
    X509* x = PEM_read_bio_X509(bio, nullptr, noPassphrase, nullptr);
    if (!x) break;
    certs.emplace_back(x);
  }
  unsigned long last = ERR_peek_last_error();
  // Running out of PEM blocks is how the loop ends; anything else, or no
  // certificate at all, is a real failure.
  bool endOfInput = ERR_GET_LIB(last) == ERR_LIB_PEM && ERR_GET_REASON(last) == PEM_R_NO_START_LINE;
  if (certs.empty() || (last != 0 && !endOfInput)) {
    std::string why = certs.empty() && (last == 0 || endOfInput)
                          ? std::string("no PEM certificate found")
                          : drainErrors();
    ERR_clear_error();
    error = std::string("TLS: cannot load ") + what + ": " + why;
    return false;
  }
  ERR_clear_error();
  return true;
}

bool loadCertAndKey(SSL_CTX* ctx, const TlsOptions& o, std::string& error) {
  BioPtr certBio = openPem(o.cert, o.certFile, "certificate", error);
  if (!certBio) return false;
  std::vector<X509Ptr> certs;
  if (!readCerts(certBio.get(), certs, "certificate", error)) return false;
  if (SSL_CTX_use_certificate(ctx, certs[0].get()) != 1) {
    error = "TLS: cannot use certificate: " + drainErrors();
    return false;
  }
  // The rest of the bundle is the chain sent to the peer.
  for (size_t i = 1; i < certs.size(); ++i) {
    if (SSL_CTX_add1_chain_cert(ctx, certs[i].get()) != 1) {
      error = "TLS: cannot add chain certificate: " + drainErrors();
      return false;
    }
  }

  BioPtr keyBio = openPem(o.key, o.keyFile, "private key", error);
  if (!keyBio) return false;
  PkeyPtr key(o.passphrase.empty()
                  ? PEM_read_bio_PrivateKey(keyBio.get(), nullptr, noPassphrase, nullptr)
                  : PEM_read_bio_PrivateKey(keyBio.get(), nullptr, givenPassphrase,
                                            const_cast<std::string*>(&o.passphrase)));
  if (!key) {
    // OpenSSL's errors for a missing or wrong passphrase name the cipher
    // ("bad decrypt"): say it in our words.
    if (o.passphrase.empty() && pemIsEncrypted(o.key, o.keyFile)) {
      ERR_clear_error();
      error = "TLS: the private key is encrypted: give its passphrase (tls.passphrase)";
    } else if (!o.passphrase.empty()) {
      error = "TLS: cannot load private key (wrong passphrase?): " + drainErrors();
    } else {
      error = "TLS: cannot load private key: " + drainErrors();
    }
    return false;
  }
  if (SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    // OpenSSL already compares the key with the certificate here.
    unsigned long last = ERR_peek_last_error();
    bool mismatch = ERR_GET_LIB(last) == ERR_LIB_X509 &&
                    (ERR_GET_REASON(last) == X509_R_KEY_VALUES_MISMATCH ||
                     ERR_GET_REASON(last) == X509_R_KEY_TYPE_MISMATCH);
    error = std::string(mismatch ? "TLS: private key does not match the certificate: "
                                 : "TLS: cannot use private key: ") +
            drainErrors();
    return false;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    error = "TLS: private key does not match the certificate: " + drainErrors();
    return false;
  }
  return true;
}

// Adds each CA of ca/caFile to the verify store; the server also names them
// in its certificate request.
bool loadCa(SSL_CTX* ctx, const TlsOptions& o, bool clientCaList, std::string& error) {
  BioPtr bio = openPem(o.ca, o.caFile, "CA", error);
  if (!bio) return false;
  std::vector<X509Ptr> certs;
  if (!readCerts(bio.get(), certs, "CA", error)) return false;
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  for (auto& c : certs) {
    if (X509_STORE_add_cert(store, c.get()) != 1) {
      error = "TLS: cannot add CA certificate: " + drainErrors();
      return false;
    }
    if (clientCaList && SSL_CTX_add_client_CA(ctx, c.get()) != 1) {
      error = "TLS: cannot add client CA name: " + drainErrors();
      return false;
    }
  }
  return true;
}

// Node's `ciphers` mixes TLS 1.2 cipher names and TLS 1.3 suites ("TLS_*");
// OpenSSL configures them separately.
bool setCiphers(SSL_CTX* ctx, const std::string& spec, std::string& error) {
  std::string v12, v13;
  size_t pos = 0;
  while (pos <= spec.size()) {
    size_t end = spec.find(':', pos);
    if (end == std::string::npos) end = spec.size();
    std::string item = spec.substr(pos, end - pos);
    if (!item.empty()) {
      std::string& dst = item.compare(0, 4, "TLS_") == 0 ? v13 : v12;
      if (!dst.empty()) dst += ':';
      dst += item;
    }
    pos = end + 1;
  }
  if (!v12.empty() && SSL_CTX_set_cipher_list(ctx, v12.c_str()) != 1) {
    error = "TLS: invalid cipher list '" + v12 + "': " + drainErrors();
    return false;
  }
  if (!v13.empty() && SSL_CTX_set_ciphersuites(ctx, v13.c_str()) != 1) {
    error = "TLS: invalid TLS 1.3 cipher suites '" + v13 + "': " + drainErrors();
    return false;
  }
  return true;
}

SSL_CTX* newCtx(const SSL_METHOD* method, const TlsOptions& o, std::string& error) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (!ctx) {
    error = "TLS: cannot create context: " + drainErrors();
    return nullptr;
  }
  // TLS 1.2 at least (as Node's default), or the versions asked for.
  int minV = o.minVersion == "TLSv1.3" ? TLS1_3_VERSION : TLS1_2_VERSION;
  int maxV = o.maxVersion == "TLSv1.2" ? TLS1_2_VERSION : 0;  // 0: the highest
  for (const std::string* v : {&o.minVersion, &o.maxVersion}) {
    if (!v->empty() && *v != "TLSv1.2" && *v != "TLSv1.3") {
      error = "TLS: unknown version '" + *v + "' (TLSv1.2 or TLSv1.3)";
      SSL_CTX_free(ctx);
      return nullptr;
    }
  }
  if (maxV != 0 && minV > maxV) {
    error = "TLS: minVersion " + o.minVersion + " is above maxVersion " + o.maxVersion;
    SSL_CTX_free(ctx);
    return nullptr;
  }
  SSL_CTX_set_min_proto_version(ctx, minV);
  SSL_CTX_set_max_proto_version(ctx, maxV);
  // Renegotiation would make SSL_write wait for reads; the engine never needs it.
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION);
  // Idle connections give their read/write buffers back.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                            SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_default_passwd_cb(ctx, noPassphrase);
  if (!o.ciphers.empty() && !setCiphers(ctx, o.ciphers, error)) {
    SSL_CTX_free(ctx);
    return nullptr;
  }
  return ctx;
}

bool isIpLiteral(const std::string& host) {
  if (host.find(':') != std::string::npos) return true;  // IPv6: names have no ':'
  if (host.empty()) return false;
  for (char c : host)
    if (!(c == '.' || (c >= '0' && c <= '9'))) return false;
  return true;
}

// The system CA store, as OpenSSL finds it (SSL_CERT_FILE or its default
// bundle, SSL_CERT_DIR or its default directory), loaded once and shared by
// the client contexts that trust it. Loading it parses the whole bundle:
// ~20-40 ms and ~840 KB on Debian's (146 roots), per wss:// start when each
// context had its own, on the IO thread that every other connection of that
// thread waits for. An X509_STORE may be shared by contexts on several
// threads (OpenSSL locks it); the cache keeps it only while a context holds
// it, and a bundle replaced on disk (update-ca-certificates writes a new
// file) or other SSL_CERT_* values give a new one to the starts after.
std::string fileIdentity(const std::string& file) {
  struct stat st;
  if (file.empty() || ::stat(file.c_str(), &st) != 0) return "-";
#if defined(__APPLE__)
  long long nsec = st.st_mtimespec.tv_nsec;
#elif defined(_WIN32)
  long long nsec = 0;
#else
  long long nsec = st.st_mtim.tv_nsec;
#endif
  return std::to_string(st.st_dev) + ':' + std::to_string(st.st_ino) + ':' +
         std::to_string(static_cast<long long>(st.st_size)) + ':' +
         std::to_string(static_cast<long long>(st.st_mtime)) + '.' + std::to_string(nsec);
}

std::shared_ptr<X509_STORE> systemStore() {
  const char* fileEnv = std::getenv(X509_get_default_cert_file_env());
  const char* dirEnv = std::getenv(X509_get_default_cert_dir_env());
  std::string file = fileEnv ? fileEnv : X509_get_default_cert_file();
  std::string dir = dirEnv ? dirEnv : X509_get_default_cert_dir();
  std::string key = file + '\n' + dir + '\n' + fileIdentity(file);

  // Never destroyed: an IO thread may still build a context while the
  // process exits and static destructors run (see parkIoThreads).
  static std::mutex& mu = *new std::mutex;
  static auto& cache = *new std::map<std::string, std::weak_ptr<X509_STORE>>;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(key);
    if (it != cache.end()) {
      if (auto live = it->second.lock()) return live;
    }
  }
  // Loaded outside the lock: another thread may load the same one meanwhile
  // (both work; the first one stored is kept).
  X509_STORE* raw = X509_STORE_new();
  if (!raw) return nullptr;
  std::shared_ptr<X509_STORE> store(raw, X509_STORE_free);
  // Missing system locations are not an error here: verification then
  // fails with a readable reason.
  X509_STORE_set_default_paths(raw);
  ERR_clear_error();
  std::lock_guard<std::mutex> lock(mu);
  for (auto it = cache.begin(); it != cache.end();) {
    if (it->second.expired())
      it = cache.erase(it);
    else
      ++it;
  }
  auto& slot = cache[key];
  if (auto live = slot.lock()) return live;
  slot = store;
  return store;
}

}  // namespace

std::shared_ptr<TlsContext> TlsContext::createServer(const TlsOptions& opts, std::string& error) {
  ERR_clear_error();
  if (opts.cert.empty() && opts.certFile.empty()) {
    error = "TLS: the server needs a certificate (cert or certFile)";
    return nullptr;
  }
  if (opts.key.empty() && opts.keyFile.empty()) {
    error = "TLS: the server needs a private key (key or keyFile)";
    return nullptr;
  }
  SSL_CTX* ctx = newCtx(TLS_server_method(), opts, error);
  if (!ctx) return nullptr;
  auto self = std::shared_ptr<TlsContext>(new TlsContext());
  self->ctx_ = ctx;
  self->opts_ = opts;
  if (!loadCertAndKey(ctx, opts, error)) return nullptr;
  if (opts.verifyPeer) {
    // Client certificates are checked against the CAs given, never against
    // the system store: that would admit any certificate a public CA issued
    // to anybody (with clientAuth usage), which is not an authentication.
    if (opts.ca.empty() && opts.caFile.empty()) {
      error = "TLS: verifyPeer on a server needs the CA to verify client certificates against "
              "(tls.ca or tls.caFile)";
      return nullptr;
    }
    if (!loadCa(ctx, opts, true, error)) return nullptr;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  // A client resuming a session (ours do on reconnection) is refused with
  // "session id context uninitialized" by a server that verifies peers and
  // has no session id context: sessions are only valid in the context that
  // made them, which this names.
  static const unsigned char kSessionContext[] = "ix-websocket";
  SSL_CTX_set_session_id_context(ctx, kSessionContext, sizeof kSessionContext - 1);
  ERR_clear_error();
  return self;
}

std::shared_ptr<TlsContext> TlsContext::createClient(const TlsOptions& opts, std::string& error) {
  ERR_clear_error();
  SSL_CTX* ctx = newCtx(TLS_client_method(), opts, error);
  if (!ctx) return nullptr;
  auto self = std::shared_ptr<TlsContext>(new TlsContext());
  self->ctx_ = ctx;
  self->opts_ = opts;
  // As Node's tls: a ca/caFile given replaces the default store (only those
  // CAs are trusted); without one, the system store as OpenSSL finds it
  // (SSL_CERT_FILE / SSL_CERT_DIR), shared (systemStore).
  if (!opts.ca.empty() || !opts.caFile.empty()) {
    if (!loadCa(ctx, opts, false, error)) return nullptr;
  } else {
    self->store_ = systemStore();
    if (!self->store_) {
      error = "TLS: cannot create the certificate store: " + drainErrors();
      return nullptr;
    }
    // The context takes a reference of its own (set1).
    SSL_CTX_set1_cert_store(ctx, self->store_.get());
  }
  ERR_clear_error();
  bool hasCert = !opts.cert.empty() || !opts.certFile.empty();
  bool hasKey = !opts.key.empty() || !opts.keyFile.empty();
  if (hasCert != hasKey) {
    error = hasCert ? "TLS: a client certificate needs its private key (key or keyFile)"
                    : "TLS: a client private key needs its certificate (cert or certFile)";
    return nullptr;
  }
  if (hasCert && !loadCertAndKey(ctx, opts, error)) return nullptr;
  SSL_CTX_set_verify(ctx, opts.verifyPeer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  // Sessions go to TlsContext's own per-peer cache (TlsSession::onNewSession),
  // not OpenSSL's internal one, which clients never look up anyway.
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, &TlsSession::onNewSession);
  ERR_clear_error();
  return self;
}

namespace {
// Peers a client start talks to: the url's server and the hops of its
// redirects (a handful at most); bounded all the same.
constexpr size_t kMaxPeers = 16;
// Servers send two TLS 1.3 tickets after a full handshake (OpenSSL's and
// Node's default) and, OpenSSL's, one more after each resumption.
constexpr size_t kTicketsPerPeer = 4;
}  // namespace

void TlsContext::saveSession(const std::string& peer, SSL_SESSION* session) {
  std::lock_guard<std::mutex> lock(sessionsMu_);
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) {
    if (sessions_.size() >= kMaxPeers) {
      auto oldest = sessions_.begin();
      for (auto i = sessions_.begin(); i != sessions_.end(); ++i)
        if (i->second.serial < oldest->second.serial) oldest = i;
      for (SSL_SESSION* old : oldest->second.sessions) SSL_SESSION_free(old);
      sessions_.erase(oldest);
    }
    it = sessions_.emplace(peer, Saved{}).first;
  }
  Saved& saved = it->second;
  // A TLS 1.2 session is resumed as often as the server allows: only the
  // newest is worth keeping. TLS 1.3 tickets are kept up to
  // kTicketsPerPeer, newest last.
  bool tls13 = SSL_SESSION_get_protocol_version(session) >= TLS1_3_VERSION;
  size_t keep = tls13 ? kTicketsPerPeer : 1;
  if (!tls13) {
    for (SSL_SESSION* old : saved.sessions) SSL_SESSION_free(old);
    saved.sessions.clear();
  }
  saved.sessions.push_back(session);
  while (saved.sessions.size() > keep) {
    SSL_SESSION_free(saved.sessions.front());
    saved.sessions.erase(saved.sessions.begin());
  }
  saved.serial = ++saved_;
}

SSL_SESSION* TlsContext::sessionFor(const std::string& peer) {
  std::lock_guard<std::mutex> lock(sessionsMu_);
  auto it = sessions_.find(peer);
  if (it == sessions_.end()) return nullptr;
  std::vector<SSL_SESSION*>& list = it->second.sessions;
  SSL_SESSION* found = nullptr;
  while (!list.empty() && !found) {
    SSL_SESSION* s = list.back();
    // Not resumable: a TLS 1.3 ticket already used (OpenSSL marks it), or
    // a session whose connection failed with a fatal error.
    if (!SSL_SESSION_is_resumable(s)) {
      SSL_SESSION_free(s);
      list.pop_back();
      continue;
    }
    found = s;
    if (SSL_SESSION_get_protocol_version(s) >= TLS1_3_VERSION) {
      list.pop_back();  // used once: the caller gets the cache's reference
    } else {
      SSL_SESSION_up_ref(s);  // stays for the next connection
    }
  }
  if (list.empty()) sessions_.erase(it);
  return found;
}

bool TlsContext::setTicketKeys(const uint8_t* keys) {
  return SSL_CTX_set_tlsext_ticket_keys(ctx_, const_cast<uint8_t*>(keys),
                                        static_cast<long>(kTicketKeysSize)) == 1;
}

size_t TlsContext::sessionCount(const std::string& peer) {
  std::lock_guard<std::mutex> lock(sessionsMu_);
  auto it = sessions_.find(peer);
  return it == sessions_.end() ? 0 : it->second.sessions.size();
}

size_t TlsContext::peerCount() {
  std::lock_guard<std::mutex> lock(sessionsMu_);
  return sessions_.size();
}

int TlsSession::onNewSession(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<TlsSession*>(SSL_get_app_data(ssl));
  // 0: OpenSSL keeps its reference (and frees the session when done).
  if (!self || self->peer_.empty() || !self->ctx_ || !SSL_SESSION_is_resumable(session)) return 0;
  self->ctx_->saveSession(self->peer_, session);
  return 1;  // the cache owns the reference OpenSSL passed
}

TlsContext::~TlsContext() {
  for (auto& entry : sessions_)
    for (SSL_SESSION* s : entry.second.sessions) SSL_SESSION_free(s);
  if (ctx_) SSL_CTX_free(ctx_);
}

TlsSession::TlsSession(std::shared_ptr<TlsContext> ctx, bool server, const std::string& host,
                       const std::string& peer)
    : ctx_(std::move(ctx)) {
  ERR_clear_error();
  if (!ctx_ || !ctx_->ctx()) {
    error_ = "TLS: no context";
    failed_ = true;
    return;
  }
  ssl_ = SSL_new(ctx_->ctx());
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (!ssl_ || !in_ || !out_) {
    error_ = "TLS: cannot create session: " + drainErrors();
    failed_ = true;
    if (in_) BIO_free(in_);
    if (out_) BIO_free(out_);
    in_ = out_ = nullptr;
    return;
  }
  // An empty memory BIO means "no data yet" (retry), not end of file.
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_, in_, out_);  // the SSL owns both BIOs from here
  if (server) {
    SSL_set_accept_state(ssl_);
    return;
  }
  SSL_set_connect_state(ssl_);
  const TlsOptions& o = ctx_->options();
  // The client chose the name: tls.servername for the url's own host, the
  // host itself for a redirect elsewhere (client.cc, connectHop).
  std::string name = host;
  if (name.size() >= 2 && name.front() == '[' && name.back() == ']')
    name = name.substr(1, name.size() - 2);
  bool ip = isIpLiteral(name);
  // RFC 6066 §3: SNI carries host names only, never address literals.
  if (!ip && !name.empty() && SSL_set_tlsext_host_name(ssl_, name.c_str()) != 1) {
    error_ = "TLS: invalid server name '" + name + "': " + drainErrors();
    failed_ = true;
    return;
  }
  if (o.verifyPeer && !o.disableHostnameValidation && !name.empty()) {
    int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_), name.c_str())
                : SSL_set1_host(ssl_, name.c_str());
    if (ok != 1) {
      error_ = "TLS: cannot verify against host '" + name + "'";
      failed_ = true;
      ERR_clear_error();
      return;
    }
    verifyName_ = name;
  }
  // Resumption: the peer's session, if the context holds one. The key names
  // the address and the name verified; a session for another never applies.
  if (!peer.empty()) {
    peer_ = peer + "|" + name;
    SSL_set_app_data(ssl_, this);
    if (SSL_SESSION* s = ctx_->sessionFor(peer_)) {
      SSL_set_session(ssl_, s);  // takes a reference of its own
      SSL_SESSION_free(s);
    }
  }
}

bool TlsSession::resumed() const {
  return ssl_ && done_ && SSL_session_reused(ssl_) == 1;
}

std::string TlsSession::protocolName() const {
  return ssl_ && done_ ? SSL_get_version(ssl_) : "";
}

std::string TlsSession::cipherName() const {
  const char* name = ssl_ && done_ ? SSL_get_cipher_name(ssl_) : nullptr;
  return name ? name : "";
}

std::string TlsSession::peerCertificatePem() const {
  if (!ssl_ || !done_) return "";
  X509* cert = SSL_get1_peer_certificate(ssl_);
  if (!cert) return "";
  std::string pem;
  BIO* b = BIO_new(BIO_s_mem());
  if (b && PEM_write_bio_X509(b, cert) == 1) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    if (n > 0) pem.assign(data, static_cast<size_t>(n));
  }
  if (b) BIO_free(b);
  X509_free(cert);
  ERR_clear_error();
  return pem;
}

TlsSession::~TlsSession() {
  // OpenSSL marks the session of a connection freed without a close_notify
  // sent as not resumable (the SSL 3.0 / TLS 1.0 rule). Since TLS 1.1 a
  // connection that ends without one may still be resumed (RFC 5246 §7.2.1):
  // a reset or a peer that vanished is exactly when a client reconnects and
  // wants its session. A fatal TLS error still spoils it.
  if (ssl_ && !failed_) SSL_set_shutdown(ssl_, SSL_get_shutdown(ssl_) | SSL_SENT_SHUTDOWN);
  if (ssl_) SSL_free(ssl_);  // frees in_ and out_ too
}

bool TlsSession::startHandshake() {
  if (failed_) return false;
  ERR_clear_error();
  if (SSL_is_server(ssl_) || done_) return true;
  return advanceHandshake();
}

bool TlsSession::advanceHandshake() {
  int r = SSL_do_handshake(ssl_);
  if (r == 1) {
    done_ = true;
    return true;
  }
  int e = SSL_get_error(ssl_, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
  fail("TLS handshake failed: ", e);
  return false;
}

void TlsSession::fail(const char* prefix, int sslError) {
  failed_ = true;
  bool verifyFailed = false;
  bool queued = ERR_peek_error() != 0;
  std::string queue = drainErrors(&verifyFailed);
  long vr = SSL_get_verify_result(ssl_);
  if (verifyFailed && vr != X509_V_OK) {
    error_ = std::string(prefix) + "certificate verify failed: " +
             X509_verify_cert_error_string(vr);
    if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
      error_ += " (expected '" + verifyName_ + "')";
    return;
  }
  if (queued) {
    error_ = std::string(prefix) + queue;
  } else if (sslError == SSL_ERROR_SYSCALL) {
    error_ = std::string(prefix) + "unexpected end of stream";
  } else {
    error_ = std::string(prefix) + "error " + std::to_string(sslError);
  }
}

bool TlsSession::feed(const uint8_t* data, size_t len, std::string& plain) {
  if (failed_) return false;
  // After close_notify nothing more is application data; dropping it keeps
  // a chatty peer from growing the input buffer.
  if (peerClosed_) return true;
  ERR_clear_error();
  while (len > 0) {
    int chunk = len > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
    int n = BIO_write(in_, data, chunk);
    if (n <= 0) {
      failed_ = true;
      error_ = "TLS: cannot buffer input: " + drainErrors();
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  if (!done_) {
    if (!advanceHandshake()) return false;
    if (!done_) return true;
  }
  char buf[16 * 1024];
  for (;;) {
    int n = SSL_read(ssl_, buf, sizeof buf);
    if (n > 0) {
      plain.append(buf, static_cast<size_t>(n));
      continue;
    }
    int e = SSL_get_error(ssl_, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
    if (e == SSL_ERROR_ZERO_RETURN) {
      peerClosed_ = true;
      return true;
    }
    fail("TLS: ", e);
    return false;
  }
}

bool TlsSession::write(const uint8_t* data, size_t len) {
  if (failed_) return false;
  if (!done_ || shutdownSent_) {
    error_ = done_ ? "TLS: write after shutdown" : "TLS: write before the handshake completed";
    return false;
  }
  ERR_clear_error();
  while (len > 0) {
    int chunk = len > static_cast<size_t>(INT_MAX) ? INT_MAX : static_cast<int>(len);
    int n = SSL_write(ssl_, data, chunk);
    if (n <= 0) {
      // The output BIO grows without bound, so any failure here is fatal.
      fail("TLS: write failed: ", SSL_get_error(ssl_, n));
      return false;
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

void TlsSession::takeOutput(std::string& out) {
  if (!out_) return;
  size_t pending = BIO_ctrl_pending(out_);
  while (pending > 0) {
    size_t chunk = pending > static_cast<size_t>(INT_MAX) ? INT_MAX : pending;
    size_t at = out.size();
    out.resize(at + chunk);
    int n = BIO_read(out_, &out[at], static_cast<int>(chunk));
    if (n <= 0) {
      out.resize(at);
      return;
    }
    out.resize(at + static_cast<size_t>(n));
    pending = BIO_ctrl_pending(out_);
  }
}

bool TlsSession::hasOutput() const { return out_ && BIO_ctrl_pending(out_) > 0; }

void TlsSession::shutdown() {
  // SSL_shutdown is forbidden after a fatal error and meaningless mid-handshake.
  if (shutdownSent_ || failed_ || !done_) return;
  shutdownSent_ = true;
  ERR_clear_error();
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

}  // namespace wsengine
