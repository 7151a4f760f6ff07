#include "options.h"

#include "args.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

namespace wsengine {
namespace addon {

namespace {

constexpr double kMaxSafe = kMaxSafeInteger;
constexpr double kMaxInt = kMaxInt32;

enum TlsField : uint32_t {
  kCert = 1u << 0,
  kKey = 1u << 1,
  kCa = 1u << 2,
  kCertFile = 1u << 3,
  kKeyFile = 1u << 4,
  kCaFile = 1u << 5,
  kCiphers = 1u << 6,
  kVerifyPeer = 1u << 7,
  kDisableHostnameValidation = 1u << 8,
  kServername = 1u << 9,
};

std::string fmt(double v) {
  if (v == kMaxSafe) return "2^53-1";
  char buf[32];
  snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

// Reads the properties of one options object; `path` names it in errors.
class Reader {
 public:
  // present: presence bits of obj's top-level keys (all set for nested objects).
  Reader(Keys& keys, const Napi::Object& obj, std::string path, PresenceMask present = ~PresenceMask(0))
      : keys_(keys), obj_(obj), path_(std::move(path)), present_(present) {}

  Napi::Env env() const { return obj_.Env(); }
  const std::string& path() const { return path_; }
  std::string name(Key k) const { return path_ + "." + keyName(k); }

  // A property that is present and not undefined.
  bool has(Key k, Napi::Value& out) {
    PresenceMask bit = Keys::bit(k);
    if (bit != 0 && (present_ & bit) == 0) return false;
    out = keys_.get(obj_, k);
    return !out.IsUndefined();
  }

  // The nested object under k (throws when it is not a plain object).
  bool object(Key k, Napi::Object& out) {
    Napi::Value v;
    if (!has(k, v)) return false;
    if (!v.IsObject() || v.IsArray() || v.IsFunction()) throwType(env(), name(k) + " must be an object");
    out = v.As<Napi::Object>();
    return true;
  }

  bool boolean(Key k, bool& dst) {
    Napi::Value v;
    if (!has(k, v)) return false;
    if (!v.IsBoolean()) throwType(env(), name(k) + " must be a boolean");
    dst = v.As<Napi::Boolean>().Value();
    return true;
  }

  bool integer(Key k, double min, double max, double& dst) {
    Napi::Value v;
    if (!has(k, v)) return false;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!isInteger(v) || d < min || d > max) {
      throwType(env(), name(k) + " must be an integer between " + fmt(min) + " and " + fmt(max));
    }
    dst = d;
    return true;
  }

  // Seconds: any finite number above zero (or zero too, with zeroOff).
  bool seconds(Key k, double& dst, bool zeroOff = false) {
    Napi::Value v;
    if (!has(k, v)) return false;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!std::isfinite(d) || d < 0 || (d == 0 && !zeroOff)) {
      throwType(env(), name(k) + (zeroOff ? " must be a number of seconds (0 or more)"
                                          : " must be a positive number of seconds"));
    }
    dst = d;
    return true;
  }

  bool string(Key k, std::string& dst) {
    Napi::Value v;
    if (!has(k, v)) return false;
    if (!v.IsString()) throwType(env(), name(k) + " must be a string");
    dst = v.As<Napi::String>().Utf8Value();
    return true;
  }

  Keys& keys() { return keys_; }

 private:
  Keys& keys_;
  Napi::Object obj_;
  std::string path_;
  PresenceMask present_;
};

void readHeartbeat(Reader& r, Heartbeat& hb) {
  double d;
  if (r.integer(Key::pingInterval, -1, kMaxInt, d)) hb.pingInterval = static_cast<int>(d);
  if (r.integer(Key::pingTimeout, -1, kMaxInt, d)) hb.pingTimeout = static_cast<int>(d);
  r.boolean(Key::enablePong, hb.enablePong);
}

void readDeflate(Reader& r, DeflateOptions& dst, bool& disable) {
  Napi::Object o;
  if (r.object(Key::perMessageDeflate, o)) {
    Reader p(r.keys(), o, r.name(Key::perMessageDeflate));
    DeflateOptions next = dst;
    double d;
    p.boolean(Key::enabled, next.enabled);
    p.boolean(Key::clientNoContextTakeover, next.clientNoContextTakeover);
    p.boolean(Key::serverNoContextTakeover, next.serverNoContextTakeover);
    if (p.integer(Key::serverMaxWindowBits, 8, 15, d)) next.serverMaxWindowBits = (int)d;
    if (p.integer(Key::clientMaxWindowBits, 8, 15, d)) next.clientMaxWindowBits = (int)d;
    if (p.integer(Key::threshold, 0, kMaxSafe, d)) next.threshold = static_cast<size_t>(d);
    dst = next;
  }
  r.boolean(Key::disablePerMessageDeflate, disable);
}

void readLimits(Reader& r, Limits& lim) {
  double d;
  if (r.integer(Key::maxPayload, 1, kMaxSafe, d)) lim.maxPayload = (uint64_t)d;
  if (r.integer(Key::maxHeaderSize, 1, kMaxInt, d)) lim.maxHeaderSize = (size_t)d;
  if (r.integer(Key::maxHeaders, 1, kMaxInt, d)) lim.maxHeaders = (int)d;
  if (r.integer(Key::sendHighWaterMark, 1, kMaxSafe, d)) {
    lim.sendHighWaterMark = static_cast<size_t>(d);
  }
}

struct TlsString {
  Key key;
  std::string TlsOptions::*field;
  uint32_t bit;
};
const TlsString kTlsStrings[] = {
    {Key::cert, &TlsOptions::cert, kCert},
    {Key::key, &TlsOptions::key, kKey},
    {Key::ca, &TlsOptions::ca, kCa},
    {Key::certFile, &TlsOptions::certFile, kCertFile},
    {Key::keyFile, &TlsOptions::keyFile, kKeyFile},
    {Key::caFile, &TlsOptions::caFile, kCaFile},
    {Key::ciphers, &TlsOptions::ciphers, kCiphers},
    {Key::servername, &TlsOptions::servername, kServername},
};

void readTls(Reader& r, TlsConfig& tls) {
  Napi::Value v;
  if (!r.has(Key::tls, v)) return;
  if (v.IsNull()) {  // null turns TLS back off
    tls = TlsConfig();
    return;
  }
  Napi::Object o;
  r.object(Key::tls, o);
  Reader t(r.keys(), o, r.name(Key::tls));
  TlsConfig next = tls;
  next.given = true;
  for (const auto& s : kTlsStrings) {
    if (t.string(s.key, next.opts.*(s.field))) next.fields |= s.bit;
  }
  if (t.boolean(Key::verifyPeer, next.opts.verifyPeer)) next.fields |= kVerifyPeer;
  if (t.boolean(Key::disableHostnameValidation, next.opts.disableHostnameValidation)) {
    next.fields |= kDisableHostnameValidation;
  }
  tls = next;
}

// method must be a function (null clears it); worker/window/process are any
// value. The instance keeps them; this only validates.
void checkMethod(Reader& r) {
  Napi::Value v;
  if (r.has(Key::method, v) && !v.IsFunction() && !v.IsNull()) {
    throwType(r.env(), r.name(Key::method) + " must be a function");
  }
}

void readClientHeaders(Reader& r, Headers& dst) {
  Napi::Object o;
  if (!r.object(Key::headers, o)) return;
  std::string p = r.name(Key::headers);
  Napi::Array names = o.GetPropertyNames();
  Headers next;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Napi::Value value = o.Get(name);
    if (!value.IsString()) throwType(r.env(), p + "." + name + " must be a string");
    std::string text = value.As<Napi::String>().Utf8Value();
    // A CR or LF would let a header value inject more of the request.
    bool bad = name.empty();
    for (char c : name) bad = bad || c == '\r' || c == '\n' || c == ':' || c == ' ' || c == '\0';
    for (char c : text) bad = bad || c == '\r' || c == '\n' || c == '\0';
    if (bad) throwType(r.env(), p + "." + name + " must be a header name and value without CR or LF");
    next.emplace_back(std::move(name), std::move(text));
  }
  dst = std::move(next);
}

void writeDeflate(Keys& k, const Napi::Object& out, const DeflateOptions& d, bool disable) {
  Napi::Object o = Napi::Object::New(out.Env());
  k.set(o, Key::enabled, d.enabled);
  k.set(o, Key::clientNoContextTakeover, d.clientNoContextTakeover);
  k.set(o, Key::serverNoContextTakeover, d.serverNoContextTakeover);
  k.set(o, Key::serverMaxWindowBits, d.serverMaxWindowBits);
  k.set(o, Key::clientMaxWindowBits, d.clientMaxWindowBits);
  k.set(o, Key::threshold, static_cast<double>(d.threshold));
  k.set(out, Key::perMessageDeflate, o);
  k.set(out, Key::disablePerMessageDeflate, disable);
}

void writeHeartbeat(Keys& k, const Napi::Object& out, const Heartbeat& hb) {
  k.set(out, Key::pingInterval, hb.pingInterval);
  k.set(out, Key::pingTimeout, hb.pingTimeout);
  k.set(out, Key::enablePong, hb.enablePong);
}

void writeLimits(Keys& k, const Napi::Object& out, const Limits& lim, bool server) {
  k.set(out, Key::maxPayload, static_cast<double>(lim.maxPayload));
  k.set(out, Key::maxHeaderSize, static_cast<double>(lim.maxHeaderSize));
  k.set(out, Key::maxHeaders, lim.maxHeaders);
  if (server) k.set(out, Key::handshakeTimeout, lim.handshakeTimeout);
  k.set(out, Key::sendHighWaterMark, static_cast<double>(lim.sendHighWaterMark));
}

void writeTls(Keys& k, const Napi::Object& out, const TlsConfig& tls) {
  if (!tls.given) return;
  Napi::Object o = Napi::Object::New(out.Env());
  const TlsOptions& t = tls.opts;
  for (const auto& s : kTlsStrings) {
    if (tls.fields & s.bit) k.set(o, s.key, t.*(s.field));
  }
  if (tls.fields & kVerifyPeer) k.set(o, Key::verifyPeer, t.verifyPeer);
  if (tls.fields & kDisableHostnameValidation) {
    k.set(o, Key::disableHostnameValidation, t.disableHostnameValidation);
  }
  k.set(out, Key::tls, o);
}

}  // namespace

ServerConfig::ServerConfig() {
  // A server asks for client certificates only when told to.
  opts.tls.verifyPeer = false;
  tls.opts.verifyPeer = false;
}

ServerOptions ServerConfig::effective() const {
  ServerOptions o = opts;
  if (disablePerMessageDeflate) o.deflate.enabled = false;
  o.tls = tls.opts;
  o.tls.enabled = tls.given;
  return o;
}

ClientOptions ClientConfig::effective() const {
  ClientOptions o = opts;
  if (disablePerMessageDeflate) o.deflate.enabled = false;
  o.tls = tls.opts;
  o.tls.enabled = false;  // the engine turns it on for wss://
  return o;
}

void readServerOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ServerConfig& cfg,
                       const std::string& name) {
  Reader r(keys, obj, name, present);
  ServerConfig next = cfg;
  ServerOptions& o = next.opts;
  double d;
  checkMethod(r);
  if (r.integer(Key::port, 0, 65535, d)) o.port = static_cast<int>(d);
  r.string(Key::host, o.host);
  if (r.integer(Key::backlog, 0, kMaxInt, d)) o.backlog = static_cast<int>(d);
  if (r.integer(Key::maxConnections, 1, kMaxInt, d)) o.maxConnections = static_cast<int>(d);
  if (r.integer(Key::maxHandshakes, 1, kMaxInt, d)) o.maxHandshakes = static_cast<int>(d);
  if (r.integer(Key::maxConnectionsPerAddress, 0, kMaxInt, d)) {
    o.maxConnectionsPerAddress = static_cast<int>(d);
  }
  if (r.integer(Key::maxUnfinishedBytes, 0, kMaxSafe, d)) {
    o.maxUnfinishedBytes = static_cast<uint64_t>(d);
  }
  r.seconds(Key::handshakeTimeout, o.limits.handshakeTimeout);
  r.seconds(Key::firstByteTimeout, o.limits.firstByteTimeout, true);
  readHeartbeat(r, o.heartbeat);
  readDeflate(r, o.deflate, next.disablePerMessageDeflate);
  readLimits(r, o.limits);
  readTls(r, next.tls);
  cfg = std::move(next);
}

void readClientOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ClientConfig& cfg,
                       const std::string& name) {
  Reader r(keys, obj, name, present);
  ClientConfig next = cfg;
  ClientOptions& o = next.opts;
  double d;
  checkMethod(r);
  r.string(Key::url, o.url);
  readClientHeaders(r, o.extraHeaders);
  readHeartbeat(r, o.heartbeat);
  r.boolean(Key::enableAutomaticReconnection, o.enableAutomaticReconnection);
  if (r.integer(Key::minWaitBetweenReconnectionRetries, 0, 4294967295.0, d)) {
    o.minWaitBetweenReconnectionRetries = static_cast<uint32_t>(d);
  }
  if (r.integer(Key::maxWaitBetweenReconnectionRetries, 0, 4294967295.0, d)) {
    o.maxWaitBetweenReconnectionRetries = static_cast<uint32_t>(d);
  }
  r.seconds(Key::timeout, o.timeout);
  readDeflate(r, o.deflate, next.disablePerMessageDeflate);
  readLimits(r, o.limits);
  readTls(r, next.tls);
  cfg = std::move(next);
}

void writeServerOptions(Keys& k, const Napi::Object& out, const ServerConfig& cfg) {
  const ServerOptions& o = cfg.opts;
  k.set(out, Key::port, o.port);
  k.set(out, Key::host, o.host);
  k.set(out, Key::backlog, o.backlog);
  k.set(out, Key::maxConnections, o.maxConnections);
  k.set(out, Key::maxHandshakes, o.maxHandshakes);
  k.set(out, Key::maxConnectionsPerAddress, o.maxConnectionsPerAddress);
  k.set(out, Key::maxUnfinishedBytes, static_cast<double>(o.maxUnfinishedBytes));
  k.set(out, Key::firstByteTimeout, o.limits.firstByteTimeout);
  writeHeartbeat(k, out, o.heartbeat);
  writeDeflate(k, out, o.deflate, cfg.disablePerMessageDeflate);
  writeLimits(k, out, o.limits, true);
  writeTls(k, out, cfg.tls);
}

void writeClientOptions(Keys& k, const Napi::Object& out, const ClientConfig& cfg) {
  const ClientOptions& o = cfg.opts;
  Napi::Env env = out.Env();
  k.set(out, Key::url, o.url);
  writeHeartbeat(k, out, o.heartbeat);
  k.set(out, Key::enableAutomaticReconnection, o.enableAutomaticReconnection);
  k.set(out, Key::minWaitBetweenReconnectionRetries,
        static_cast<double>(o.minWaitBetweenReconnectionRetries));
  k.set(out, Key::maxWaitBetweenReconnectionRetries,
        static_cast<double>(o.maxWaitBetweenReconnectionRetries));
  k.set(out, Key::timeout, o.timeout);
  Napi::Object headers = Napi::Object::New(env);
  for (const auto& h : o.extraHeaders) headers.Set(h.first, h.second);
  k.set(out, Key::headers, headers);
  writeDeflate(k, out, o.deflate, cfg.disablePerMessageDeflate);
  writeLimits(k, out, o.limits, false);
  writeTls(k, out, cfg.tls);
}

}  // namespace addon
}  // namespace wsengine
