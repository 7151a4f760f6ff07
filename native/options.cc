#include "options.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <strings.h>
#include <type_traits>
#include <utility>

#include "args.h"
#include "option_table.h"

namespace wsengine {
namespace addon {

namespace {

// ---- the kinds of option_table.h ----

namespace kind {
struct IntSpec {
  double lo, hi;
};
struct BoolSpec {};
struct StringSpec {};
struct ProxySpec {};
struct SecondsSpec {
  bool zeroOff;
};
struct FractionSpec {};
struct TlsVersionSpec {};
struct HeadersSpec {};
struct TokensSpec {};
struct OriginsSpec {};
struct FunctionSpec {};
struct DeflateSpec {};
struct TlsSpec {};
constexpr IntSpec Int(double lo, double hi) { return {lo, hi}; }
constexpr BoolSpec Bool() { return {}; }
constexpr StringSpec String() { return {}; }
constexpr ProxySpec Proxy() { return {}; }
constexpr SecondsSpec Seconds() { return {false}; }
constexpr SecondsSpec SecondsOrOff() { return {true}; }
constexpr FractionSpec Fraction() { return {}; }
constexpr TlsVersionSpec TlsVersion() { return {}; }
constexpr HeadersSpec Headers() { return {}; }
constexpr TokensSpec Tokens() { return {}; }
constexpr OriginsSpec Origins() { return {}; }
constexpr FunctionSpec Function() { return {}; }
constexpr DeflateSpec Deflate() { return {}; }
constexpr TlsSpec Tls() { return {}; }
}  // namespace kind

enum class Side { Server, Client, Both };

template <class Cfg>
constexpr bool onSide(Side side) {
  using Engine = std::decay_t<decltype(std::declval<Cfg&>().opts)>;
  return side == Side::Both ||
         side == (std::is_same<Engine, ServerOptions>::value ? Side::Server : Side::Client);
}

// f(key, kind, field) for each option of cfg's side (cfg may be const), in
// table order. A field of the other side is never named (if constexpr).
template <class Cfg, class F>
void forEachOption(Cfg& cfg, F&& f) {
#define IXWS_VISIT_OPTION(name, side, kind_, field) \
  if constexpr (onSide<Cfg>(Side::side)) f(Key::name, kind::kind_, cfg.field);
  IXWS_OPTIONS(IXWS_VISIT_OPTION)
#undef IXWS_VISIT_OPTION
}

template <class Deflate, class F>
void forEachDeflateField(Deflate& d, F&& f) {
#define IXWS_VISIT_FIELD(name, kind_, field) f(Key::name, kind::kind_, d.field);
  IXWS_DEFLATE_OPTIONS(IXWS_VISIT_FIELD)
#undef IXWS_VISIT_FIELD
}

// f(key, kind, member, bit): member points into TlsOptions; bit is the
// field's bit in TlsConfig::fields.
template <class F>
void forEachTlsField(F&& f) {
  uint32_t bit = 1;
#define IXWS_VISIT_FIELD(name, kind_, field)          \
  f(Key::name, kind::kind_, &TlsOptions::field, bit); \
  bit <<= 1;
  IXWS_TLS_OPTIONS(IXWS_VISIT_FIELD)
#undef IXWS_VISIT_FIELD
}

// ---- reading ----

std::string fmt(double v) {
  if (v == kMaxSafeInteger) return "2^53-1";
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
  std::string name(Key k) const { return path_ + "." + keyName(k); }
  Keys& keys() { return keys_; }

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
    out = asObject(k, v);
    return true;
  }
  // v, the value read under k, as a plain object (throws when it is not).
  Napi::Object asObject(Key k, const Napi::Value& v) {
    if (!v.IsObject() || v.IsArray() || v.IsFunction()) throwType(env(), name(k) + " must be an object");
    return v.As<Napi::Object>();
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
  bool seconds(Key k, double& dst, bool zeroOff) {
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

  // A number from 0 to 1.
  bool fraction(Key k, double& dst) {
    Napi::Value v;
    if (!has(k, v)) return false;
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : NAN;
    if (!(d >= 0 && d <= 1)) throwType(env(), name(k) + " must be a number from 0 to 1");
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

 private:
  Keys& keys_;
  Napi::Object obj_;
  std::string path_;
  PresenceMask present_;
};

template <class T>
using IfInteger = std::enable_if_t<std::is_integral<T>::value && !std::is_same<T, bool>::value>;

// Each reads the property when present (and not undefined) into dst and
// says whether it did; a wrong value throws a TypeError naming it.
template <class T, class = IfInteger<T>>
bool readValue(Reader& r, Key k, kind::IntSpec spec, T& dst) {
  double d;
  if (!r.integer(k, spec.lo, spec.hi, d)) return false;
  dst = static_cast<T>(d);
  return true;
}

bool readValue(Reader& r, Key k, kind::BoolSpec, bool& dst) { return r.boolean(k, dst); }

bool readValue(Reader& r, Key k, kind::StringSpec, std::string& dst) { return r.string(k, dst); }

// Checked here (the engine's own check) so that a bad proxy throws at once
// instead of failing every start.
bool readValue(Reader& r, Key k, kind::ProxySpec, std::string& dst) {
  std::string v;
  if (!r.string(k, v)) return false;
  std::string error;
  if (!checkProxyOption(v, error)) {
    throwType(r.env(), r.name(k) + " must be \"\", \"env\" or \"http://[user:password@]host:port\" (" +
                           error + ")");
  }
  dst = std::move(v);
  return true;
}

bool readValue(Reader& r, Key k, kind::SecondsSpec spec, double& dst) {
  return r.seconds(k, dst, spec.zeroOff);
}

bool readValue(Reader& r, Key k, kind::FractionSpec, double& dst) { return r.fraction(k, dst); }

bool readValue(Reader& r, Key k, kind::TlsVersionSpec, std::string& dst) {
  Napi::Value v;
  if (!r.has(k, v)) return false;
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  if (s != "TLSv1.2" && s != "TLSv1.3") throwType(r.env(), r.name(k) + " must be \"TLSv1.2\" or \"TLSv1.3\"");
  dst = std::move(s);
  return true;
}

bool readValue(Reader& r, Key k, kind::HeadersSpec, Headers& dst) {
  Napi::Object o;
  if (!r.object(k, o)) return false;
  dst = headersArg(o, r.name(k), true);
  return true;
}

// An array of strings, each checked by `ok` (which says what it must be).
// ok(text, the strings before it).
template <class Ok>
bool readStrings(Reader& r, Key k, std::vector<std::string>& dst, const char* what, Ok ok) {
  Napi::Value v;
  if (!r.has(k, v)) return false;
  std::string p = r.name(k);
  if (!v.IsArray()) throwType(r.env(), p + " must be an array of " + what);
  Napi::Array arr = v.As<Napi::Array>();
  std::vector<std::string> next;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value item = arr.Get(i);
    std::string at = p + "[" + std::to_string(i) + "]";
    if (!item.IsString()) throwType(r.env(), at + " must be a string");
    std::string text = item.As<Napi::String>().Utf8Value();
    if (!ok(text, next)) throwType(r.env(), at + " must be " + what + " (got \"" + text + "\")");
    next.push_back(std::move(text));
  }
  dst = std::move(next);
  return true;
}

// Subprotocol names: RFC 7230 tokens (RFC 6455 §4.1), each named once.
bool readValue(Reader& r, Key k, kind::TokensSpec, std::vector<std::string>& dst) {
  return readStrings(r, k, dst, "subprotocol tokens",
                     [](const std::string& s, const std::vector<std::string>& before) {
        if (s.empty()) return false;
        for (char c : s) {
          unsigned char u = static_cast<unsigned char>(c);
          bool tchar = std::isalnum(u) || (u != 0 && std::strchr("!#$%&'*+-.^_`|~", u) != nullptr);
          if (!tchar || u >= 0x80) return false;
        }
        for (const std::string& o : before)
          if (o == s) return false;  // twice
        return true;
      });
}

// Origins as browsers send them ("https://example.com"): anything that
// cannot sit in one header value, or a list separator, is refused.
bool readValue(Reader& r, Key k, kind::OriginsSpec, std::vector<std::string>& dst) {
  return readStrings(r, k, dst, "origins like \"https://example.com\"",
                     [](const std::string& s, const std::vector<std::string>&) {
    return !s.empty() && s.find_first_of(std::string("\r\n,\0 ", 5)) == std::string::npos;
  });
}

// A function, or null for none.
bool readValue(Reader& r, Key k, kind::FunctionSpec, std::shared_ptr<Napi::FunctionReference>& dst) {
  Napi::Value v;
  if (!r.has(k, v)) return false;
  if (v.IsNull()) {
    dst.reset();
    return true;
  }
  if (!v.IsFunction()) throwType(r.env(), r.name(k) + " must be a function or null");
  dst = std::make_shared<Napi::FunctionReference>(Napi::Persistent(v.As<Napi::Function>()));
  return true;
}

// The fields given change, the others stay.
bool readValue(Reader& r, Key k, kind::DeflateSpec, DeflateOptions& dst) {
  Napi::Object o;
  if (!r.object(k, o)) return false;
  Reader nested(r.keys(), o, r.name(k));
  forEachDeflateField(dst, [&nested](Key key, auto spec, auto& field) {
    readValue(nested, key, spec, field);
  });
  return true;
}

// The fields given add to those given before; null forgets them all (TLS off).
bool readValue(Reader& r, Key k, kind::TlsSpec, TlsConfig& tls) {
  Napi::Value v;
  if (!r.has(k, v)) return false;
  if (v.IsNull()) {
    tls = TlsConfig();
    return true;
  }
  // The value already read, not a second read: a getter or a Proxy may
  // answer differently each time (undefined the second time left the nested
  // reader with no object: "Invalid argument" instead of a TypeError).
  Reader nested(r.keys(), r.asObject(k, v), r.name(k));
  tls.given = true;
  forEachTlsField([&nested, &tls](Key key, auto spec, auto member, uint32_t bit) {
    if (readValue(nested, key, spec, tls.opts.*member)) tls.fields |= bit;
  });
  return true;
}

// method must be a function (null clears it); worker/window/process are any
// value. The instance keeps them; this only validates.
void checkMethod(Reader& r) {
  Napi::Value v;
  if (r.has(Key::method, v) && !v.IsFunction() && !v.IsNull()) {
    throwType(r.env(), r.name(Key::method) + " must be a function");
  }
}

template <class Cfg>
void readAll(Keys& keys, const Napi::Object& obj, PresenceMask present, Cfg& cfg,
             const std::string& name) {
  Reader r(keys, obj, name, present);
  Cfg next = cfg;  // cfg changes only when every option present is valid
  checkMethod(r);
  forEachOption(next, [&r](Key key, auto spec, auto& field) { readValue(r, key, spec, field); });
  cfg = std::move(next);
}

// ---- writing ----

template <class T, class = IfInteger<T>>
void writeValue(Keys& k, napi_value out, Key key, kind::IntSpec, const T& v) {
  k.set(out, key, static_cast<double>(v));
}

void writeValue(Keys& k, napi_value out, Key key, kind::BoolSpec, const bool& v) { k.set(out, key, v); }

void writeValue(Keys& k, napi_value out, Key key, kind::StringSpec, const std::string& v) {
  k.set(out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::ProxySpec, const std::string& v) {
  k.set(out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::SecondsSpec, const double& v) {
  k.set(out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::FractionSpec, const double& v) {
  k.set(out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::TlsVersionSpec, const std::string& v) {
  k.set(out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::HeadersSpec, const Headers& headers) {
  Napi::Object o = Napi::Object::New(k.env());
  for (const auto& h : headers) o.Set(h.first, h.second);
  k.set(out, key, o);
}

void writeStrings(Keys& k, napi_value out, Key key, const std::vector<std::string>& list) {
  Napi::Array a = Napi::Array::New(k.env(), list.size());
  for (uint32_t i = 0; i < list.size(); ++i) a.Set(i, list[i]);
  k.set(out, key, a);
}

void writeValue(Keys& k, napi_value out, Key key, kind::TokensSpec, const std::vector<std::string>& v) {
  writeStrings(k, out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::OriginsSpec, const std::vector<std::string>& v) {
  writeStrings(k, out, key, v);
}

void writeValue(Keys& k, napi_value out, Key key, kind::FunctionSpec,
                const std::shared_ptr<Napi::FunctionReference>& fn) {
  if (fn && !fn->IsEmpty()) k.set(out, key, fn->Value());
}

void writeValue(Keys& k, napi_value out, Key key, kind::DeflateSpec, const DeflateOptions& d) {
  Napi::Object o = Napi::Object::New(k.env());
  forEachDeflateField(d, [&k, &o](Key field, auto spec, const auto& v) { writeValue(k, o, field, spec, v); });
  k.set(out, key, o);
}

void writeValue(Keys& k, napi_value out, Key key, kind::TlsSpec, const TlsConfig& tls) {
  if (!tls.given) return;
  Napi::Object o = Napi::Object::New(k.env());
  forEachTlsField([&k, &o, &tls](Key field, auto spec, auto member, uint32_t bit) {
    if (tls.fields & bit) writeValue(k, o, field, spec, tls.opts.*member);
  });
  k.set(out, key, o);
}

template <class Cfg>
void writeAll(Keys& k, const Napi::Object& out, const Cfg& cfg) {
  forEachOption(cfg, [&k, &out](Key key, auto spec, const auto& field) { writeValue(k, out, key, spec, field); });
}

}  // namespace

Headers headersArg(const Napi::Object& o, const std::string& p, bool request) {
  Napi::Array names = o.GetPropertyNames();
  Headers next;
  for (uint32_t i = 0; i < names.Length(); ++i) {
    std::string name = names.Get(i).ToString().Utf8Value();
    Napi::Value value = o.Get(name);
    if (!value.IsString()) throwType(o.Env(), p + "." + name + " must be a string");
    std::string text = value.As<Napi::String>().Utf8Value();
    // A CR or LF would let a header value inject more of the message.
    bool bad = name.empty();
    for (char c : name) bad = bad || c == '\r' || c == '\n' || c == ':' || c == ' ' || c == '\0';
    for (char c : text) bad = bad || c == '\r' || c == '\n' || c == '\0';
    if (bad) throwType(o.Env(), p + "." + name + " must be a header name and value without CR or LF");
    if (engineOwnsHeader(request, name)) {
      const char* hint = strcasecmp(name.c_str(), "Sec-WebSocket-Protocol") == 0
                             ? (request ? ": offer subprotocols with protocols" : ": choose it with protocol")
                         : strcasecmp(name.c_str(), "Sec-WebSocket-Extensions") == 0
                             ? ": permessage-deflate is negotiated from perMessageDeflate"
                             : "";
      throwType(o.Env(), p + "." + name + " is written by ix-websocket itself" + hint);
    }
    next.emplace_back(std::move(name), std::move(text));
  }
  return next;
}

bool inlineByDefault() {
  const char* v = std::getenv("IXWS_INLINE");
  return v != nullptr && (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0);
}

template <class EngineOptions>
EngineOptions Config<EngineOptions>::effective() const {
  EngineOptions o = opts;
  if (disablePerMessageDeflate) o.deflate.enabled = false;
  // The tls fields given, over this side's defaults (opts.tls, never read
  // into: a server asks for client certificates only when told to).
  forEachTlsField([this, &o](Key, auto, auto member, uint32_t bit) {
    if (tls.fields & bit) o.tls.*member = tls.opts.*member;
  });
  // A server serves TLS when tls is given; a client turns it on for wss://.
  o.tls.enabled = std::is_same<EngineOptions, ServerOptions>::value && tls.given;
  if constexpr (std::is_same<EngineOptions, ServerOptions>::value) o.verifyClient = verifyClient != nullptr;
  // Delivery acknowledges each peer's close once the events before it ran
  // (Delivery::deliverEvent), so replies to them precede our close frame.
  o.closeReplyOnAck = true;
  return o;
}
template struct Config<ServerOptions>;
template struct Config<ClientOptions>;

void readOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ServerConfig& cfg,
                 const std::string& name) {
  readAll(keys, obj, present, cfg, name);
}

void readOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ClientConfig& cfg,
                 const std::string& name) {
  readAll(keys, obj, present, cfg, name);
}

void writeOptions(Keys& keys, const Napi::Object& out, const ServerConfig& cfg) {
  writeAll(keys, out, cfg);
}

void writeOptions(Keys& keys, const Napi::Object& out, const ClientConfig& cfg) {
  writeAll(keys, out, cfg);
}

}  // namespace addon
}  // namespace wsengine
