// TlsContext / TlsSession: a client and a server session pumped into each
// other in memory; and one hostile TLS server on a real socket against the
// engine's Client. Certificates are made at run time (no key is committed).
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>

#include "check.h"
#include "loopback.h"
#include "queue_sink.h"
#include "tls.h"
#include "wsengine/wsengine.h"

using namespace wsengine;

namespace {

// ---- certificate factory ---------------------------------------------------

struct Cert {
  std::shared_ptr<EVP_PKEY> key;
  std::shared_ptr<X509> x509;
  std::string certPem, keyPem;
};

std::string toPem(X509* x) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(b, x);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

std::string toPem(EVP_PKEY* k) {
  BIO* b = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
  char* p = nullptr;
  long n = BIO_get_mem_data(b, &p);
  std::string s(p, static_cast<size_t>(n));
  BIO_free(b);
  return s;
}

void addExt(X509* x, X509* issuer, int nid, const char* value) {
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, issuer, x, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value);
  if (!ext) {
    std::fprintf(stderr, "cannot make extension %s\n", value);
    std::abort();
  }
  X509_add_ext(x, ext, -1);
  X509_EXTENSION_free(ext);
}

// issuer == nullptr: self-signed. san: "DNS:...,IP:..." or empty.
// Validity in days relative to now.
Cert makeCert(const char* cn, const Cert* issuer, bool ca, const char* san, long fromDays = -1,
              long toDays = 30) {
  static long serial = 1;
  Cert c;
  c.key.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
  X509* x = X509_new();
  c.x509.reset(x, X509_free);
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
  X509_gmtime_adj(X509_getm_notBefore(x), fromDays * 86400);
  X509_gmtime_adj(X509_getm_notAfter(x), toDays * 86400);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                             -1, -1, 0);
  X509* issuerCert = issuer ? issuer->x509.get() : x;
  X509_set_issuer_name(x, X509_get_subject_name(issuerCert));
  X509_set_pubkey(x, c.key.get());
  if (ca) {
    addExt(x, issuerCert, NID_basic_constraints, "critical,CA:TRUE");
    addExt(x, issuerCert, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    addExt(x, issuerCert, NID_basic_constraints, "CA:FALSE");
    addExt(x, issuerCert, NID_ext_key_usage, "serverAuth,clientAuth");
  }
  addExt(x, issuerCert, NID_subject_key_identifier, "hash");
  if (issuer) addExt(x, issuerCert, NID_authority_key_identifier, "keyid");
  if (san && *san) addExt(x, issuerCert, NID_subject_alt_name, san);
  EVP_PKEY* signer = issuer ? issuer->key.get() : c.key.get();
  if (!X509_sign(x, signer, EVP_sha256())) {
    std::fprintf(stderr, "cannot sign %s\n", cn);
    std::abort();
  }
  c.certPem = toPem(x);
  c.keyPem = toPem(c.key.get());
  return c;
}

// ---- pumping ---------------------------------------------------------------

struct Pair {
  std::shared_ptr<TlsContext> sctx, cctx;
  std::unique_ptr<TlsSession> server, client;
  std::string toClient, toServer;  // plaintext received by each side
  bool serverOk = true, clientOk = true;
};

// Moves ciphertext both ways until neither side has anything to send or one
// fails (its pending output, e.g. an alert, is still delivered). Bounded.
void pump(Pair& p) {
  for (int i = 0; i < 1000; ++i) {
    std::string c2s, s2c;
    p.client->takeOutput(c2s);
    p.server->takeOutput(s2c);
    if (c2s.empty() && s2c.empty()) return;
    if (!c2s.empty() && p.serverOk)
      p.serverOk = p.server->feed(reinterpret_cast<const uint8_t*>(c2s.data()), c2s.size(),
                                  p.toServer);
    if (!s2c.empty() && p.clientOk)
      p.clientOk = p.client->feed(reinterpret_cast<const uint8_t*>(s2c.data()), s2c.size(),
                                  p.toClient);
  }
  CHECK(!"pump did not settle");
}

TlsOptions serverOpts(const Cert& c) {
  TlsOptions o;
  o.enabled = true;
  o.cert = c.certPem;
  o.key = c.keyPem;
  o.verifyPeer = false;
  return o;
}

TlsOptions clientOpts(const Cert* ca) {
  TlsOptions o;
  o.enabled = true;
  if (ca) o.ca = ca->certPem;
  return o;
}

// Builds both contexts and sessions and runs the handshake.
Pair connect(const TlsOptions& so, const TlsOptions& co, const std::string& host) {
  Pair p;
  std::string err;
  p.sctx = TlsContext::createServer(so, err);
  CHECK_EQ(err, std::string());
  p.cctx = TlsContext::createClient(co, err);
  CHECK_EQ(err, std::string());
  if (!p.sctx || !p.cctx) std::abort();
  p.server.reset(new TlsSession(p.sctx, true, ""));
  p.client.reset(new TlsSession(p.cctx, false, host));
  CHECK(p.server->startHandshake());
  CHECK(p.client->startHandshake());
  CHECK(p.client->hasOutput());  // the ClientHello
  pump(p);
  return p;
}

bool contains(const std::string& s, const char* what) { return s.find(what) != std::string::npos; }

bool send(TlsSession& s, const std::string& data) {
  return s.write(reinterpret_cast<const uint8_t*>(data.data()), data.size());
}

// ---- the certificates used throughout ---------------------------------------

struct World {
  Cert ca = makeCert("Test Root CA", nullptr, true, "");
  Cert otherCa = makeCert("Untrusted CA", nullptr, true, "");
  Cert server = makeCert("localhost", &ca, false, "DNS:localhost,IP:127.0.0.1,IP:::1");
  Cert expired = makeCert("localhost", &ca, false, "DNS:localhost", -30, -1);
  Cert other = makeCert("other.example", &ca, false, "DNS:other.example");
  Cert untrusted = makeCert("localhost", &otherCa, false, "DNS:localhost");
  Cert clientCert = makeCert("client", &ca, false, "DNS:client");
  Cert foreignClient = makeCert("client", &otherCa, false, "DNS:client");
  Cert intermediate = makeCert("Test Intermediate", &ca, true, "");
  Cert chained = makeCert("localhost", &intermediate, false, "DNS:localhost");
};

// ---- tests -------------------------------------------------------------------

void testRoundTrip(const World& w) {
  Pair p = connect(serverOpts(w.server), clientOpts(&w.ca), "localhost");
  CHECK(p.serverOk);
  CHECK(p.clientOk);
  CHECK(p.client->handshakeDone());
  CHECK(p.server->handshakeDone());
  CHECK_EQ(p.client->error(), std::string());

  CHECK(send(*p.client, "hello server"));
  pump(p);
  CHECK_EQ(p.toServer, std::string("hello server"));
  CHECK(send(*p.server, "hello client"));
  pump(p);
  CHECK_EQ(p.toClient, std::string("hello client"));

  // 1 MiB each way, with a non-repeating pattern so misordering would show.
  std::string big(1 << 20, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131 + (i >> 9)) & 0xff);
  p.toServer.clear();
  p.toClient.clear();
  CHECK(send(*p.client, big));
  std::string wire;
  p.client->takeOutput(wire);
  CHECK(wire.size() > big.size());  // encrypted records carry overhead
  // Feed the ciphertext in odd-sized pieces, as a socket would deliver it.
  size_t at = 0;
  bool ok = true;
  while (at < wire.size() && ok) {
    size_t n = std::min<size_t>(7777, wire.size() - at);
    ok = p.server->feed(reinterpret_cast<const uint8_t*>(wire.data() + at), n, p.toServer);
    at += n;
  }
  CHECK(ok);
  CHECK(p.toServer == big);
  CHECK(send(*p.server, big));
  pump(p);
  CHECK(p.toClient == big);

  // close_notify: the peer's feed succeeds and yields nothing more.
  p.client->shutdown();
  CHECK(p.client->hasOutput());
  p.toServer.clear();
  pump(p);
  CHECK(p.serverOk);
  CHECK(p.toServer.empty());
  CHECK(!send(*p.client, "after shutdown"));
}

void testIpAndSni(const World& w) {
  // Capture the SNI the server sees.
  static std::string seen;
  static bool called;
  auto cb = [](SSL* ssl, int*, void*) -> int {
    called = true;
    const char* n = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    seen = n ? n : "";
    return SSL_TLSEXT_ERR_OK;
  };
  std::string err;
  {
    TlsOptions so = serverOpts(w.server);
    Pair p;
    p.sctx = TlsContext::createServer(so, err);
    SSL_CTX_set_tlsext_servername_callback(p.sctx->ctx(), +cb);
    p.cctx = TlsContext::createClient(clientOpts(&w.ca), err);
    p.server.reset(new TlsSession(p.sctx, true, ""));
    p.client.reset(new TlsSession(p.cctx, false, "localhost"));
    seen.clear();
    called = false;
    p.client->startHandshake();
    pump(p);
    CHECK(p.client->handshakeDone());
    CHECK(called);
    CHECK_EQ(seen, std::string("localhost"));

    // An IP literal: verified against the IP SAN, no SNI sent.
    p.server.reset(new TlsSession(p.sctx, true, ""));
    p.client.reset(new TlsSession(p.cctx, false, "127.0.0.1"));
    seen = "unset";
    p.client->startHandshake();
    pump(p);
    CHECK(p.clientOk);
    CHECK(p.client->handshakeDone());
    CHECK_EQ(seen, std::string());

    // IPv6 literal (brackets tolerated).
    p.server.reset(new TlsSession(p.sctx, true, ""));
    p.client.reset(new TlsSession(p.cctx, false, "[::1]"));
    p.client->startHandshake();
    pump(p);
    CHECK(p.clientOk);
    CHECK(p.client->handshakeDone());

    // An IP not in the certificate.
    p.server.reset(new TlsSession(p.sctx, true, ""));
    p.client.reset(new TlsSession(p.cctx, false, "127.0.0.2"));
    p.clientOk = p.serverOk = true;
    p.client->startHandshake();
    pump(p);
    CHECK(!p.clientOk);
    CHECK(contains(p.client->error(), "certificate verify failed"));
    CHECK(contains(p.client->error(), "127.0.0.2"));
  }
  {
    // The name given (the client passes tls.servername there) is used for
    // SNI and for verification, whatever address the socket reached.
    Pair p;
    p.sctx = TlsContext::createServer(serverOpts(w.other), err);
    SSL_CTX_set_tlsext_servername_callback(p.sctx->ctx(), +cb);
    TlsOptions co = clientOpts(&w.ca);
    p.cctx = TlsContext::createClient(co, err);
    p.server.reset(new TlsSession(p.sctx, true, ""));
    p.client.reset(new TlsSession(p.cctx, false, "other.example"));
    seen.clear();
    p.client->startHandshake();
    pump(p);
    CHECK(p.clientOk);
    CHECK(p.client->handshakeDone());
    CHECK_EQ(seen, std::string("other.example"));
  }
}

void testHostMismatch(const World& w) {
  Pair p = connect(serverOpts(w.other), clientOpts(&w.ca), "localhost");
  CHECK(!p.clientOk);
  CHECK(!p.client->handshakeDone());
  CHECK(contains(p.client->error(), "TLS handshake failed: certificate verify failed"));
  CHECK(contains(p.client->error(), "mismatch"));
  CHECK(contains(p.client->error(), "localhost"));
  // The client's alert reached the server, which fails too.
  CHECK(!p.serverOk);
  CHECK(!p.server->error().empty());
  std::printf("host mismatch: %s | server: %s\n", p.client->error().c_str(),
              p.server->error().c_str());

  // disableHostnameValidation: the chain is still verified, the name is not.
  TlsOptions co = clientOpts(&w.ca);
  co.disableHostnameValidation = true;
  Pair q = connect(serverOpts(w.other), co, "localhost");
  CHECK(q.clientOk);
  CHECK(q.client->handshakeDone());
}

void testUntrusted(const World& w) {
  Pair p = connect(serverOpts(w.untrusted), clientOpts(&w.ca), "localhost");
  CHECK(!p.clientOk);
  CHECK(contains(p.client->error(), "certificate verify failed"));
  CHECK(contains(p.client->error(), "unable to get local issuer certificate"));
  std::printf("untrusted: %s\n", p.client->error().c_str());

  // No CA option at all: the system store does not know our root either.
  Pair q = connect(serverOpts(w.server), clientOpts(nullptr), "localhost");
  CHECK(!q.clientOk);
  CHECK(contains(q.client->error(), "certificate verify failed"));

  // verifyPeer=false: connects anyway, data flows.
  TlsOptions co = clientOpts(nullptr);
  co.verifyPeer = false;
  Pair r = connect(serverOpts(w.untrusted), co, "wrong.name");
  CHECK(r.clientOk);
  CHECK(r.client->handshakeDone());
  CHECK(send(*r.client, "ping"));
  pump(r);
  CHECK_EQ(r.toServer, std::string("ping"));
}

void testExpired(const World& w) {
  Pair p = connect(serverOpts(w.expired), clientOpts(&w.ca), "localhost");
  CHECK(!p.clientOk);
  CHECK(contains(p.client->error(), "expired"));
  std::printf("expired: %s\n", p.client->error().c_str());
}

void testChain(const World& w) {
  // The server sends leaf + intermediate; the client trusts only the root.
  TlsOptions so = serverOpts(w.chained);
  so.cert = w.chained.certPem + w.intermediate.certPem;
  Pair p = connect(so, clientOpts(&w.ca), "localhost");
  CHECK(p.clientOk);
  CHECK(p.client->handshakeDone());
  // Without the intermediate the chain cannot be built.
  Pair q = connect(serverOpts(w.chained), clientOpts(&w.ca), "localhost");
  CHECK(!q.clientOk);
  CHECK(contains(q.client->error(), "unable to get local issuer certificate"));
  // Several CAs in one PEM text: each is trusted.
  TlsOptions co = clientOpts(nullptr);
  co.ca = w.otherCa.certPem + w.ca.certPem;
  Pair r = connect(serverOpts(w.server), co, "localhost");
  CHECK(r.clientOk);
  Pair s = connect(serverOpts(w.untrusted), co, "localhost");
  CHECK(s.clientOk);
}

void testClientCertificates(const World& w) {
  TlsOptions so = serverOpts(w.server);
  so.verifyPeer = true;
  so.ca = w.ca.certPem;

  // No client certificate: the server refuses. With TLS 1.3 the client
  // believes the handshake done, then reads the server's alert.
  Pair p = connect(so, clientOpts(&w.ca), "localhost");
  CHECK(!p.serverOk);
  CHECK(contains(p.server->error(), "certificate"));
  std::printf("no client cert: server: %s | client: %s\n", p.server->error().c_str(),
              p.client->error().c_str());
  CHECK(!p.clientOk);
  CHECK(!p.client->error().empty());

  // A client certificate signed by the CA: accepted, data flows.
  TlsOptions co = clientOpts(&w.ca);
  co.cert = w.clientCert.certPem;
  co.key = w.clientCert.keyPem;
  Pair q = connect(so, co, "localhost");
  CHECK(q.serverOk);
  CHECK(q.clientOk);
  CHECK(q.server->handshakeDone());
  CHECK(send(*q.client, "authenticated"));
  pump(q);
  CHECK_EQ(q.toServer, std::string("authenticated"));
  CHECK(send(*q.server, "welcome"));
  pump(q);
  CHECK_EQ(q.toClient, std::string("welcome"));

  // A client certificate from another CA: the server's verification fails.
  co.cert = w.foreignClient.certPem;
  co.key = w.foreignClient.keyPem;
  Pair r = connect(so, co, "localhost");
  CHECK(!r.serverOk);
  CHECK(contains(r.server->error(), "certificate verify failed"));
  std::printf("foreign client cert: server: %s\n", r.server->error().c_str());

  // The certificate without its key is refused up front.
  TlsOptions half = clientOpts(&w.ca);
  half.cert = w.clientCert.certPem;
  std::string err;
  CHECK(!TlsContext::createClient(half, err));
  CHECK(contains(err, "private key"));
}

void testContextErrors(const World& w) {
  std::string err;
  TlsOptions o = serverOpts(w.server);
  o.cert = "-----BEGIN CERTIFICATE-----\nnot base64 at all!!\n-----END CERTIFICATE-----\n";
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "TLS: cannot load certificate: "));
  std::printf("bad cert PEM: %s\n", err.c_str());

  err.clear();
  o.cert = "hello";
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "TLS: cannot load certificate: no PEM certificate found"));

  err.clear();
  o = serverOpts(w.server);
  o.key = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "TLS: cannot load private key: "));
  std::printf("bad key PEM: %s\n", err.c_str());

  err.clear();
  o = serverOpts(w.server);
  o.key = w.other.keyPem;
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "does not match"));
  std::printf("mismatched key: %s\n", err.c_str());

  err.clear();
  o = TlsOptions();
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "certificate"));

  err.clear();
  o = TlsOptions();
  o.certFile = "/nonexistent/dir/cert.pem";
  o.keyFile = "/nonexistent/dir/key.pem";
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "/nonexistent/dir/cert.pem"));
  std::printf("missing file: %s\n", err.c_str());

  err.clear();
  o = serverOpts(w.server);
  o.ciphers = "NOT-A-CIPHER";
  CHECK(!TlsContext::createServer(o, err));
  CHECK(contains(err, "cipher"));

  err.clear();
  TlsOptions c = clientOpts(nullptr);
  c.ca = "garbage";
  CHECK(!TlsContext::createClient(c, err));
  CHECK(contains(err, "TLS: cannot load CA"));
}

void testFiles(const World& w) {
  char dir[] = "/tmp/tls_testXXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  std::string d = dir;
  auto write = [&](const std::string& name, const std::string& text) {
    std::string path = d + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    return path;
  };
  TlsOptions so;
  so.certFile = write("cert.pem", w.server.certPem);
  so.keyFile = write("key.pem", w.server.keyPem);
  so.verifyPeer = false;
  TlsOptions co;
  co.caFile = write("ca.pem", w.ca.certPem);
  Pair p = connect(so, co, "localhost");
  CHECK(p.clientOk);
  CHECK(p.client->handshakeDone());

  // PEM text wins over the file.
  TlsOptions co2 = co;
  co2.ca = w.otherCa.certPem;
  Pair q = connect(so, co2, "localhost");
  CHECK(!q.clientOk);

  for (const char* f : {"cert.pem", "key.pem", "ca.pem"}) std::remove((d + "/" + f).c_str());
  rmdir(dir);
}

void testCiphers(const World& w) {
  TlsOptions so = serverOpts(w.server);
  so.ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:TLS_AES_256_GCM_SHA384";
  Pair p = connect(so, clientOpts(&w.ca), "localhost");
  CHECK(p.clientOk);
  CHECK(p.client->handshakeDone());
}

void testGarbage(const World& w) {
  std::string err;
  auto sctx = TlsContext::createServer(serverOpts(w.server), err);
  TlsSession s(sctx, true, "");
  std::string plain;
  std::string junk = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
  CHECK(!s.feed(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), plain));
  CHECK(contains(s.error(), "TLS handshake failed: "));
  CHECK(plain.empty());
  std::printf("garbage: %s\n", s.error().c_str());
  // The dead session stays dead, without crashing.
  CHECK(!s.feed(reinterpret_cast<const uint8_t*>(junk.data()), junk.size(), plain));
  CHECK(!send(s, "x"));
  s.shutdown();
  std::string out;
  s.takeOutput(out);  // maybe an alert; must not crash

  // Random bytes after a valid handshake: the record layer rejects them.
  Pair p = connect(serverOpts(w.server), clientOpts(&w.ca), "localhost");
  CHECK(p.clientOk);
  std::string rnd(4096, '\0');
  for (size_t i = 0; i < rnd.size(); ++i) rnd[i] = static_cast<char>((i * 7919 + 13) & 0xff);
  rnd[0] = 23;  // application data record type
  rnd[1] = 3;
  rnd[2] = 3;
  rnd[3] = 0;
  rnd[4] = 100;
  CHECK(!p.server->feed(reinterpret_cast<const uint8_t*>(rnd.data()), rnd.size(), plain));
  CHECK(contains(p.server->error(), "TLS: "));
  std::printf("bad record: %s\n", p.server->error().c_str());

  // Write before the handshake completes is refused.
  auto cctx = TlsContext::createClient(clientOpts(&w.ca), err);
  TlsSession c(cctx, false, "localhost");
  CHECK(!send(c, "early"));
}

void testErrorQueueIsolation(const World& w) {
  Pair p = connect(serverOpts(w.server), clientOpts(&w.ca), "localhost");
  CHECK(p.clientOk);
  // Leave unrelated errors on this thread's queue, as another connection
  // on the same IO thread might.
  ERR_raise(ERR_LIB_SSL, SSL_R_CERTIFICATE_VERIFY_FAILED);
  ERR_raise(ERR_LIB_PEM, PEM_R_NO_START_LINE);
  CHECK(send(*p.client, "still fine"));
  ERR_raise(ERR_LIB_SSL, SSL_R_WRONG_VERSION_NUMBER);
  pump(p);
  CHECK(p.serverOk);
  CHECK(p.clientOk);
  CHECK_EQ(p.toServer, std::string("still fine"));
  CHECK_EQ(p.server->error(), std::string());
  ERR_clear_error();
}

// TLS 1.2 (the minimum): round trip, and a missing client certificate is
// refused inside the handshake itself, so both sides fail there.
void testTls12(const World& w) {
  std::string err;
  Pair p;
  p.sctx = TlsContext::createServer(serverOpts(w.server), err);
  p.cctx = TlsContext::createClient(clientOpts(&w.ca), err);
  SSL_CTX_set_max_proto_version(p.cctx->ctx(), TLS1_2_VERSION);
  p.server.reset(new TlsSession(p.sctx, true, ""));
  p.client.reset(new TlsSession(p.cctx, false, "localhost"));
  p.client->startHandshake();
  pump(p);
  CHECK(p.clientOk);
  CHECK(p.client->handshakeDone());
  CHECK(send(*p.client, "v1.2"));
  pump(p);
  CHECK_EQ(p.toServer, std::string("v1.2"));

  TlsOptions so = serverOpts(w.server);
  so.verifyPeer = true;
  so.ca = w.ca.certPem;
  Pair q;
  q.sctx = TlsContext::createServer(so, err);
  q.cctx = p.cctx;
  q.server.reset(new TlsSession(q.sctx, true, ""));
  q.client.reset(new TlsSession(q.cctx, false, "localhost"));
  q.client->startHandshake();
  pump(q);
  CHECK(!q.serverOk);
  CHECK(!q.clientOk);
  CHECK(!q.client->handshakeDone());
  CHECK(contains(q.client->error(), "TLS handshake failed: "));
  std::printf("tls1.2 no client cert: client: %s\n", q.client->error().c_str());

  // A peer limited to TLS 1.1 is refused.
  Pair r;
  r.sctx = p.sctx;
  r.cctx = TlsContext::createClient(clientOpts(&w.ca), err);
  SSL_CTX_set_security_level(r.cctx->ctx(), 0);
  SSL_CTX_set_min_proto_version(r.cctx->ctx(), TLS1_1_VERSION);
  SSL_CTX_set_max_proto_version(r.cctx->ctx(), TLS1_1_VERSION);
  r.server.reset(new TlsSession(r.sctx, true, ""));
  r.client.reset(new TlsSession(r.cctx, false, "localhost"));
  r.client->startHandshake();
  pump(r);
  CHECK(!r.client->handshakeDone());
  CHECK(!r.server->handshakeDone());
  CHECK(!r.serverOk);
  std::printf("tls1.1 peer: server: %s\n", r.server->error().c_str());
}


// Session resumption: a client context keeps the session each server offers,
// per peer (address and name verified), and the next session to that peer
// offers it back. The server verifies client certificates, so it also needs
// its session id context (without one OpenSSL refuses every resumption).
void testResumption(const World& w, bool tls12) {
  std::string err;
  TlsOptions so = serverOpts(w.server);
  so.verifyPeer = true;
  so.ca = w.ca.certPem;
  TlsOptions co = clientOpts(&w.ca);
  co.cert = w.clientCert.certPem;
  co.key = w.clientCert.keyPem;
  auto sctx = TlsContext::createServer(so, err);
  auto cctx = TlsContext::createClient(co, err);
  CHECK_EQ(err, std::string());
  if (!sctx || !cctx) return;
  if (tls12) SSL_CTX_set_max_proto_version(cctx->ctx(), TLS1_2_VERSION);
  // One connection: handshake, a message each way (a TLS 1.3 ticket comes
  // after the handshake and is read with the application data).
  auto session = [&](const std::string& host, const std::string& peer) {
    Pair p;
    p.sctx = sctx;
    p.cctx = cctx;
    p.server.reset(new TlsSession(sctx, true, ""));
    p.client.reset(new TlsSession(cctx, false, host, peer));
    p.client->startHandshake();
    pump(p);
    CHECK(p.clientOk);
    CHECK(p.serverOk);
    CHECK(p.client->handshakeDone());
    CHECK(send(*p.server, "hello"));
    pump(p);
    CHECK(send(*p.client, "hi"));
    pump(p);
    CHECK_EQ(p.toClient, std::string("hello"));
    CHECK_EQ(p.toServer, std::string("hi"));
    // What each side reports of the session: the same protocol, cipher and
    // resumption, and the other's certificate (the client's from the
    // session when resumed).
    const char* version = tls12 ? "TLSv1.2" : "TLSv1.3";
    CHECK_EQ(p.client->protocolName(), std::string(version));
    CHECK_EQ(p.server->protocolName(), std::string(version));
    CHECK(!p.client->cipherName().empty());
    CHECK_EQ(p.client->cipherName(), p.server->cipherName());
    CHECK_EQ(p.client->resumed(), p.server->resumed());
    CHECK_EQ(p.client->peerCertificatePem(), w.server.certPem);
    CHECK_EQ(p.server->peerCertificatePem(), w.clientCert.certPem);
    return p.client->resumed();
  };
  const std::string key = "localhost:443|localhost";  // peer "|" name verified
  CHECK(!session("localhost", "localhost:443"));         // nothing to resume yet
  // OpenSSL's server sends two TLS 1.3 tickets after a full handshake; TLS
  // 1.2 has one session.
  CHECK_EQ(cctx->sessionCount(key), size_t(tls12 ? 1 : 2));
  for (int i = 0; i < 5; ++i) CHECK(session("localhost", "localhost:443"));  // resumed every time
  CHECK(cctx->sessionCount(key) >= 1);
  // Another address, or the same address under another name: not that session.
  CHECK(!session("localhost", "localhost:444"));
  CHECK(!session("127.0.0.1", "localhost:443"));
  CHECK_EQ(cctx->peerCount(), size_t(3));
  // No peer given (as the server role passes none): nothing kept or offered.
  CHECK(!session("localhost", ""));
  CHECK_EQ(cctx->peerCount(), size_t(3));
  // Bounded: sessions for at most 16 peers, the oldest forgotten first.
  for (int i = 0; i < 20; ++i) session("localhost", "host" + std::to_string(i) + ":443");
  CHECK_EQ(cctx->peerCount(), size_t(16));
  CHECK_EQ(cctx->sessionCount("host0:443|localhost"), size_t(0));
  CHECK_EQ(cctx->sessionCount(key), size_t(0));
  CHECK(cctx->sessionCount("host19:443|localhost") >= 1);

  // Handed out newest first; a TLS 1.3 ticket leaves the cache (used once),
  // a TLS 1.2 session stays.
  size_t before = cctx->sessionCount("host19:443|localhost");
  SSL_SESSION* s = cctx->sessionFor("host19:443|localhost");
  CHECK(s != nullptr);
  if (s) {
    CHECK_EQ(SSL_SESSION_get_protocol_version(s), tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_SESSION_free(s);
  }
  CHECK_EQ(cctx->sessionCount("host19:443|localhost"), tls12 ? before : before - 1);

  // A server that does not know the session (another context: other ticket
  // keys, another cache) makes a full handshake, and the client goes on.
  auto other = TlsContext::createServer(so, err);
  Pair q;
  q.sctx = other;
  q.cctx = cctx;
  q.server.reset(new TlsSession(other, true, ""));
  q.client.reset(new TlsSession(cctx, false, "localhost", "localhost:443"));
  q.client->startHandshake();
  pump(q);
  CHECK(q.clientOk);
  CHECK(q.serverOk);
  CHECK(q.client->handshakeDone());
  CHECK(!q.client->resumed());
  std::printf("resumption (%s): ok\n", tls12 ? "TLS 1.2" : "TLS 1.3");
}
}  // namespace

// The system store is loaded once and shared while a client context holds
// it; SSL_CERT_FILE (another value, or the same file rewritten) gives the
// starts after it a store of their own, which is what they verify against.
void testSharedSystemStore(const World& w) {
  char dir[] = "/tmp/tls_storeXXXXXX";
  if (!mkdtemp(dir)) {
    CHECK(!"mkdtemp");
    return;
  }
  std::string bundle = std::string(dir) + "/bundle.pem";
  auto writeBundle = [&](const std::string& text) {
    FILE* f = std::fopen(bundle.c_str(), "w");
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  };
  const char* saved = std::getenv("SSL_CERT_FILE");
  std::string savedValue = saved ? saved : "";
  std::string err;
  auto storeOf = [](const std::shared_ptr<TlsContext>& c) { return SSL_CTX_get_cert_store(c->ctx()); };

  // The system's own store: two contexts, one store.
  unsetenv("SSL_CERT_FILE");
  auto a = TlsContext::createClient(clientOpts(nullptr), err);
  auto b = TlsContext::createClient(clientOpts(nullptr), err);
  CHECK(a && b);
  CHECK(storeOf(a) == storeOf(b));
  CHECK(storeOf(a) != nullptr);
  // A ca of its own is not the shared store.
  auto own = TlsContext::createClient(clientOpts(&w.ca), err);
  CHECK(own && storeOf(own) != storeOf(a));

  // SSL_CERT_FILE naming a bundle with the other CA: a new store, shared by
  // the starts while it is unchanged; it trusts what the bundle holds.
  writeBundle(w.otherCa.certPem);
  setenv("SSL_CERT_FILE", bundle.c_str(), 1);
  auto c = TlsContext::createClient(clientOpts(nullptr), err);
  auto d = TlsContext::createClient(clientOpts(nullptr), err);
  CHECK(c && d);
  CHECK(storeOf(c) != storeOf(a));
  CHECK(storeOf(c) == storeOf(d));
  TlsOptions sys = clientOpts(nullptr);
  Pair refused = connect(serverOpts(w.server), sys, "localhost");  // signed by w.ca
  CHECK(!refused.clientOk);

  // The bundle rewritten (as update-ca-certificates does): the next start
  // loads it, while contexts made before keep theirs.
  usleep(20 * 1000);  // a different modification time even on coarse clocks
  writeBundle(w.ca.certPem + w.otherCa.certPem);
  auto e = TlsContext::createClient(clientOpts(nullptr), err);
  CHECK(e && storeOf(e) != storeOf(c));
  CHECK(storeOf(d) == storeOf(c));
  Pair accepted = connect(serverOpts(w.server), sys, "localhost");
  CHECK(accepted.clientOk);
  CHECK(accepted.client->handshakeDone());

  if (saved)
    setenv("SSL_CERT_FILE", savedValue.c_str(), 1);
  else
    unsetenv("SSL_CERT_FILE");
  std::remove(bundle.c_str());
  rmdir(dir);
}

// A TLS 1.3 server that finishes the TLS handshake, reads the upgrade
// request, never answers it and never reads again, and asks for key updates
// without end: OpenSSL on the client answers each with a KeyUpdate of its own
// (~27 bytes) that the server never takes. Before the 101 the client kept
// reading, and its unsent answers grew until the start's timeout (20 s by
// default): a few MB per connection. Now the send queue's high-water mark
// stops reading before the open too, TCP pushes back, and the flood stalls.
#if defined(__SANITIZE_THREAD__)
#define TLS_TEST_UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TLS_TEST_UNDER_TSAN 1
#endif
#endif

void testKeyUpdateFloodBeforeOpen(const World& w) {
#if TLS_TEST_UNDER_TSAN
  // The flood must fill both directions' socket buffers with 27-byte TLS
  // records (~350,000 of them) before the mark is reached: 8-25 s here,
  // past 150 s under TSan (145,000 records in 60 s). Nothing in it crosses
  // threads that engine_test does not cross; the plain and ASan builds run it.
  (void)w;
  std::printf("key update flood before the open: skipped under TSan (too slow to fill the buffers)\n");
  return;
#endif
  sockaddr_in a;
  int listener = listenLoopback(&a);
  CHECK(listener >= 0);
  if (listener < 0) return;
  // A small receive buffer on the server's end (inherited by the accepted
  // socket): the client's unread answers fill the path sooner.
  int small = 16 * 1024;
  ::setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  std::atomic<long> updates{0};
  std::atomic<bool> requestRead{false};
  std::thread server([&] {
    int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) return;
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_use_certificate(ctx, w.server.x509.get());
    SSL_CTX_use_PrivateKey(ctx, w.server.key.get());
    SSL* ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    if (SSL_accept(ssl) == 1) {
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos) {
        int r = SSL_read(ssl, buf, sizeof buf);
        if (r <= 0) break;
        request.append(buf, static_cast<size_t>(r));
      }
      requestRead = true;
      // Blocks once the client stops reading and the socket buffers are
      // full; fails once the client has gone.
      while (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) == 1 && SSL_do_handshake(ssl) == 1) ++updates;
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::close(fd);
  });

  const size_t mark = 256 * 1024;
  {
    auto sink = std::make_shared<testsink::QueueSink>();
    Client client(sink, 1);
    ClientOptions co;
    co.url = "wss://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/";
    co.tls = clientOpts(&w.ca);
    co.timeout = 180;
    co.enableAutomaticReconnection = false;
    co.limits.sendHighWaterMark = mark;
    client.start(co, [](ConnectResult) {});
    // First the flood fills both directions' socket buffers, then the
    // client's queue reaches the mark (~5-25 s here, the machine's load
    // decides; sanitizer builds are slower): within 120 s.
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 1200 && client.bufferedAmount() < mark; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(requestRead.load());
    CHECK(client.bufferedAmount() >= mark);
    // Then it must not grow on: reading has stopped. What it holds is the
    // mark plus the answers to what the reads of one readiness took (2.0x
    // the mark in the runs written down with this test). Without the pause
    // it grew ~0.6 MB/s: past 4x the mark within these 3 s.
    std::this_thread::sleep_for(std::chrono::seconds(3));
    uint64_t held = client.bufferedAmount();
    std::printf("key update flood before the open: the mark reached after %.1f s, %ld updates, "
                "the client holds %llu bytes 3 s later\n",
                secs, updates.load(), static_cast<unsigned long long>(held));
    CHECK(held < 4 * mark);
    client.stop();
  }
  server.join();
  ::close(listener);
}

int main() {
  World w;
  testRoundTrip(w);
  testIpAndSni(w);
  testHostMismatch(w);
  testUntrusted(w);
  testExpired(w);
  testChain(w);
  testClientCertificates(w);
  testContextErrors(w);
  testFiles(w);
  testCiphers(w);
  testGarbage(w);
  testErrorQueueIsolation(w);
  testTls12(w);
  testSharedSystemStore(w);
  testResumption(w, false);
  testResumption(w, true);
  testKeyUpdateFloodBeforeOpen(w);
  return check::finish();
}
