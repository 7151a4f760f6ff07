#include "options.h"

#include <cmath>
#include <limits>

namespace wsengine {
namespace addon {

namespace {

constexpr double kMaxSafe = 9007199254740991.0;  // 2^53 - 1
constexpr double kMaxInt = 2147483647.0;

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

// A property that is present and not undefined.
bool has(const Napi::Object& obj, const char* key, Napi::Value& out) {
  out = obj.Get(key);
  return !out.IsUndefined();
}

bool readBool(const Napi::Object& obj, const char* key, const std::string& path, bool& dst) {
  Napi::Value v;
  if (!has(obj, key, v)) return false;
  if (!v.IsBoolean()) throwType(obj.Env(), path + "." + key + " must be a boolean");
  dst = v.As<Napi::Boolean>().Value();
  return true;
}

bool readInt(const Napi::Object& obj, const char* key, const std::string& path, double min,
             double max, double& dst) {
  Napi::Value v;
  if (!has(obj, key, v)) return false;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!isInteger(v) || d < min || d > max) {
    throwType(obj.Env(), path + "." + key + " must be an integer between " + fmt(min) + " and " +
                             fmt(max));
  }
  dst = d;
  return true;
}

// Seconds: any finite number above zero.
bool readSeconds(const Napi::Object& obj, const char* key, const std::string& path, double& dst) {
  Napi::Value v;
  if (!has(obj, key, v)) return false;
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
  if (!std::isfinite(d) || d <= 0) {
    throwType(obj.Env(), path + "." + key + " must be a positive number of seconds");
  }
  dst = d;
  return true;
}

bool readString(const Napi::Object& obj, const char* key, const std::string& path,
                std::string& dst) {
  Napi::Value v;
  if (!has(obj, key, v)) return false;
  if (!v.IsString()) throwType(obj.Env(), path + "." + key + " must be a string");
  dst = v.As<Napi::String>().Utf8Value();
  return true;
}

void readHeartbeat(const Napi::Object& obj, const std::string& path, Heartbeat& hb) {
  double d;
  if (readInt(obj, "pingInterval", path, -1, kMaxInt, d)) hb.pingInterval = static_cast<int>(d);
  if (readInt(obj, "pingTimeout", path, -1, kMaxInt, d)) hb.pingTimeout = static_cast<int>(d);
  readBool(obj, "enablePong", path, hb.enablePong);
}

void readDeflate(const Napi::Object& obj, const std::string& path, DeflateOptions& dst,
                 bool& disable) {
  Napi::Value v;
  if (has(obj, "perMessageDeflate", v)) {
    std::string p = path + ".perMessageDeflate";
    if (!v.IsObject() || v.IsArray() || v.IsFunction()) {
      throwType(obj.Env(), p + " must be an object");
    }
    Napi::Object o = v.As<Napi::Object>();
    DeflateOptions next = dst;
    double d;
    readBool(o, "enabled", p, next.enabled);
    readBool(o, "clientNoContextTakeover", p, next.clientNoContextTakeover);
    readBool(o, "serverNoContextTakeover", p, next.serverNoContextTakeover);
    if (readInt(o, "serverMaxWindowBits", p, 8, 15, d)) next.serverMaxWindowBits = (int)d;
    if (readInt(o, "clientMaxWindowBits", p, 8, 15, d)) next.clientMaxWindowBits = (int)d;
    if (readInt(o, "threshold", p, 0, kMaxSafe, d)) next.threshold = static_cast<size_t>(d);
    dst = next;
  }
  readBool(obj, "disablePerMessageDeflate", path, disable);
}

void readLimits(const Napi::Object& obj, const std::string& path, Limits& lim) {
  double d;
  if (readInt(obj, "maxPayload", path, 1, kMaxSafe, d)) lim.maxPayload = (uint64_t)d;
  if (readInt(obj, "maxHeaderSize", path, 1, kMaxInt, d)) lim.maxHeaderSize = (size_t)d;
  if (readInt(obj, "maxHeaders", path, 1, kMaxInt, d)) lim.maxHeaders = (int)d;
  if (readInt(obj, "sendHighWaterMark", path, 1, kMaxSafe, d)) {
    lim.sendHighWaterMark = static_cast<size_t>(d);
  }
}

void readTls(const Napi::Object& obj, const std::string& path, TlsConfig& tls) {
  Napi::Value v;
  if (!has(obj, "tls", v)) return;
  std::string p = path + ".tls";
  if (v.IsNull()) {  // null turns TLS back off
    tls = TlsConfig();
    return;
  }
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) throwType(obj.Env(), p + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  TlsConfig next = tls;
  next.given = true;
  struct S {
    const char* key;
    std::string TlsOptions::*field;
    uint32_t bit;
  };
  static const S strings[] = {
      {"cert", &TlsOptions::cert, kCert},
      {"key", &TlsOptions::key, kKey},
      {"ca", &TlsOptions::ca, kCa},
      {"certFile", &TlsOptions::certFile, kCertFile},
      {"keyFile", &TlsOptions::keyFile, kKeyFile},
      {"caFile", &TlsOptions::caFile, kCaFile},
      {"ciphers", &TlsOptions::ciphers, kCiphers},
      {"servername", &TlsOptions::servername, kServername},
  };
  for (const auto& s : strings) {
    if (readString(o, s.key, p, next.opts.*(s.field))) next.fields |= s.bit;
  }
  if (readBool(o, "verifyPeer", p, next.opts.verifyPeer)) next.fields |= kVerifyPeer;
  if (readBool(o, "disableHostnameValidation", p, next.opts.disableHostnameValidation)) {
    next.fields |= kDisableHostnameValidation;
  }
  tls = next;
}

// method must be a function; worker/window/process are any value. They are
// kept by the instance, not here; this only validates.
void checkMethod(const Napi::Object& obj, const std::string& path) {
  Napi::Value v;
  if (has(obj, "method", v) && !v.IsFunction() && !v.IsNull()) {
    throwType(obj.Env(), path + ".method must be a function");
  }
}

void readClientHeaders(const Napi::Object& obj, const std::string& path, Headers& dst) {
  Napi::Value v;
  if (!has(obj, "headers", v)) return;
  std::string p = path + ".headers";
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) throwType(obj.Env(), p + " must be an object");
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array names = o.GetPropertyNames();
  Headers next;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Napi::Value value = o.Get(name);
    if (!value.IsString()) throwType(obj.Env(), p + "." + name + " must be a string");
    std::string text = value.As<Napi::String>().Utf8Value();
    // A CR or LF would let a header value inject more of the request.
    bool bad = name.empty();
    for (char c : name) bad = bad || c == '\r' || c == '\n' || c == ':' || c == ' ' || c == '\0';
    for (char c : text) bad = bad || c == '\r' || c == '\n' || c == '\0';
    if (bad) throwType(obj.Env(), p + "." + name + " must be a header name and value without CR or LF");
    next.emplace_back(std::move(name), std::move(text));
  }
  dst = std::move(next);
}

void writeDeflate(const Napi::Object& out, const DeflateOptions& d, bool disable) {
  Napi::Env env = out.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("enabled", d.enabled);
  o.Set("clientNoContextTakeover", d.clientNoContextTakeover);
  o.Set("serverNoContextTakeover", d.serverNoContextTakeover);
  o.Set("serverMaxWindowBits", d.serverMaxWindowBits);
  o.Set("clientMaxWindowBits", d.clientMaxWindowBits);
  o.Set("threshold", static_cast<double>(d.threshold));
  out.Set("perMessageDeflate", o);
  out.Set("disablePerMessageDeflate", disable);
}

void writeHeartbeat(const Napi::Object& out, const Heartbeat& hb) {
  out.Set("pingInterval", hb.pingInterval);
  out.Set("pingTimeout", hb.pingTimeout);
  out.Set("enablePong", hb.enablePong);
}

void writeLimits(const Napi::Object& out, const Limits& lim, bool server) {
  out.Set("maxPayload", static_cast<double>(lim.maxPayload));
  out.Set("maxHeaderSize", static_cast<double>(lim.maxHeaderSize));
  out.Set("maxHeaders", lim.maxHeaders);
  if (server) out.Set("handshakeTimeout", lim.handshakeTimeout);
  out.Set("sendHighWaterMark", static_cast<double>(lim.sendHighWaterMark));
}

void writeTls(const Napi::Object& out, const TlsConfig& tls) {
  if (!tls.given) return;
  Napi::Object o = Napi::Object::New(out.Env());
  const TlsOptions& t = tls.opts;
  if (tls.fields & kCert) o.Set("cert", t.cert);
  if (tls.fields & kKey) o.Set("key", t.key);
  if (tls.fields & kCa) o.Set("ca", t.ca);
  if (tls.fields & kCertFile) o.Set("certFile", t.certFile);
  if (tls.fields & kKeyFile) o.Set("keyFile", t.keyFile);
  if (tls.fields & kCaFile) o.Set("caFile", t.caFile);
  if (tls.fields & kCiphers) o.Set("ciphers", t.ciphers);
  if (tls.fields & kVerifyPeer) o.Set("verifyPeer", t.verifyPeer);
  if (tls.fields & kDisableHostnameValidation) {
    o.Set("disableHostnameValidation", t.disableHostnameValidation);
  }
  if (tls.fields & kServername) o.Set("servername", t.servername);
  out.Set("tls", o);
}

}  // namespace

bool isInteger(const Napi::Value& v) {
  if (!v.IsNumber()) return false;
  double d = v.As<Napi::Number>().DoubleValue();
  return std::isfinite(d) && std::trunc(d) == d;
}

Napi::Object readRefArg(const Napi::Value& v, const char* name, int& ref) {
  std::string message = std::string(name) + " must be an object with a numeric ref";
  if (!v.IsObject()) throwType(v.Env(), message);
  Napi::Object obj = v.As<Napi::Object>();
  Napi::Value r = obj.Get("ref");
  if (!r.IsNumber()) throwType(v.Env(), message);
  double d = r.As<Napi::Number>().DoubleValue();
  ref = isInteger(r) && d >= -kMaxInt && d <= kMaxInt ? static_cast<int>(d) : 0;
  return obj;
}

void throwType(const Napi::Env& env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

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

void readServerOptions(const Napi::Object& obj, ServerConfig& cfg, const std::string& name) {
  ServerConfig next = cfg;
  ServerOptions& o = next.opts;
  double d;
  checkMethod(obj, name);
  if (readInt(obj, "port", name, 0, 65535, d)) o.port = static_cast<int>(d);
  readString(obj, "host", name, o.host);
  if (readInt(obj, "backlog", name, 0, kMaxInt, d)) o.backlog = static_cast<int>(d);
  if (readInt(obj, "maxConnections", name, 1, kMaxInt, d)) o.maxConnections = static_cast<int>(d);
  readSeconds(obj, "handshakeTimeout", name, o.limits.handshakeTimeout);
  readHeartbeat(obj, name, o.heartbeat);
  readDeflate(obj, name, o.deflate, next.disablePerMessageDeflate);
  readLimits(obj, name, o.limits);
  readTls(obj, name, next.tls);
  cfg = std::move(next);
}

void readClientOptions(const Napi::Object& obj, ClientConfig& cfg, const std::string& name) {
  ClientConfig next = cfg;
  ClientOptions& o = next.opts;
  double d;
  checkMethod(obj, name);
  readString(obj, "url", name, o.url);
  readClientHeaders(obj, name, o.extraHeaders);
  readHeartbeat(obj, name, o.heartbeat);
  readBool(obj, "enableAutomaticReconnection", name, o.enableAutomaticReconnection);
  if (readInt(obj, "minWaitBetweenReconnectionRetries", name, 0, 4294967295.0, d)) {
    o.minWaitBetweenReconnectionRetries = static_cast<uint32_t>(d);
  }
  if (readInt(obj, "maxWaitBetweenReconnectionRetries", name, 0, 4294967295.0, d)) {
    o.maxWaitBetweenReconnectionRetries = static_cast<uint32_t>(d);
  }
  readSeconds(obj, "timeout", name, o.timeout);
  readDeflate(obj, name, o.deflate, next.disablePerMessageDeflate);
  readLimits(obj, name, o.limits);
  readTls(obj, name, next.tls);
  cfg = std::move(next);
}

void writeServerOptions(const Napi::Object& out, const ServerConfig& cfg) {
  const ServerOptions& o = cfg.opts;
  out.Set("port", o.port);
  out.Set("host", o.host);
  out.Set("backlog", o.backlog);
  out.Set("maxConnections", o.maxConnections);
  writeHeartbeat(out, o.heartbeat);
  writeDeflate(out, o.deflate, cfg.disablePerMessageDeflate);
  writeLimits(out, o.limits, true);
  writeTls(out, cfg.tls);
}

void writeClientOptions(const Napi::Object& out, const ClientConfig& cfg) {
  const ClientOptions& o = cfg.opts;
  Napi::Env env = out.Env();
  out.Set("url", o.url);
  writeHeartbeat(out, o.heartbeat);
  out.Set("enableAutomaticReconnection", o.enableAutomaticReconnection);
  out.Set("minWaitBetweenReconnectionRetries",
          static_cast<double>(o.minWaitBetweenReconnectionRetries));
  out.Set("maxWaitBetweenReconnectionRetries",
          static_cast<double>(o.maxWaitBetweenReconnectionRetries));
  out.Set("timeout", o.timeout);
  Napi::Object headers = Napi::Object::New(env);
  for (const auto& h : o.extraHeaders) headers.Set(h.first, h.second);
  out.Set("headers", headers);
  writeDeflate(out, o.deflate, cfg.disablePerMessageDeflate);
  writeLimits(out, o.limits, false);
  writeTls(out, cfg.tls);
}

}  // namespace addon
}  // namespace wsengine
