#include "args.h"

#include "convert.h"

#include <cmath>

namespace wsengine {
namespace addon {

namespace {

bool integral(double d) { return std::isfinite(d) && std::trunc(d) == d; }

// RFC 6455 §7.4: the codes an application may put in a close frame. 1004 is
// reserved, 1005 and 1006 stand for "no code" and "no close frame" and must
// never be sent, 1015 stands for a failed TLS handshake, 1016-2999 are kept
// for the protocol and its extensions (1012-1014 are registered with IANA).
bool sendableCloseCode(double d) {
  return (d >= 1000 && d <= 1003) || (d >= 1007 && d <= 1014) || (d >= 3000 && d <= 4999);
}

}  // namespace

void throwType(const Napi::Env& env, const std::string& message) {
  throw Napi::TypeError::New(env, message);
}

bool isInteger(const Napi::Value& v) {
  return v.IsNumber() && integral(v.As<Napi::Number>().DoubleValue());
}

int asRef(double d) { return integral(d) && d >= -kMaxInt32 && d <= kMaxInt32 ? static_cast<int>(d) : 0; }

int asConnRef(double d) { return integral(d) && d >= 1 && d <= kMaxInt32 ? static_cast<int>(d) : 0; }

Napi::Object refObjectArg(Keys& keys, const Napi::Value& v, const char* name, int& ref) {
  if (!v.IsObject()) throwType(v.Env(), std::string(name) + " must be an object with a numeric ref");
  Napi::Object obj = v.As<Napi::Object>();
  Napi::Value r = keys.get(obj, Key::ref);
  if (!r.IsNumber()) throwType(v.Env(), std::string(name) + " must be an object with a numeric ref");
  // Refs are 32-bit integers: any other number is a mistake, not a ref that
  // happens to be unused (which would be reported as "Unknown ... ref 0").
  double d = r.As<Napi::Number>().DoubleValue();
  if (!integral(d) || d < -kMaxInt32 || d > kMaxInt32) {
    throwType(v.Env(), std::string(name) + ".ref must be an integer between -2147483647 and 2147483647");
  }
  ref = asRef(d);
  return obj;
}

int refArg(const Napi::Value& v) {
  if (!isInteger(v)) throwType(v.Env(), "ref must be an integer");
  return asRef(v.As<Napi::Number>().DoubleValue());
}

int connRefArg(const Napi::Value& v) {
  if (!isInteger(v)) throwType(v.Env(), "client must be an integer");
  return asConnRef(v.As<Napi::Number>().DoubleValue());
}

BinaryFlag binaryArg(Keys& keys, const Napi::Object& obj, PresenceMask present, const char* name) {
  if ((present & Keys::bit(Key::binary)) == 0) return BinaryFlag::Unset;
  Napi::Value v = keys.get(obj, Key::binary);
  if (v.IsUndefined()) return BinaryFlag::Unset;
  if (!v.IsBoolean()) throwType(obj.Env(), std::string(name) + ".binary must be a boolean");
  return v.As<Napi::Boolean>().Value() ? BinaryFlag::True : BinaryFlag::False;
}

int closeCodeArg(const Napi::Value& v) {
  if (v.IsUndefined()) return 1000;
  double d = isInteger(v) ? v.As<Napi::Number>().DoubleValue() : 0;
  if (!sendableCloseCode(d)) {
    throwType(v.Env(),
              "code must be an integer in 1000-1003, 1007-1014 or 3000-4999 (1004-1006, 1015 "
              "and 1016-2999 are reserved by RFC 6455 and never sent in a close frame)");
  }
  return static_cast<int>(d);
}

std::string closeReasonArg(const Napi::Value& v) {
  if (v.IsUndefined()) return std::string();
  if (!v.IsString()) throwType(v.Env(), "reason must be a string");
  std::string reason = v.As<Napi::String>().Utf8Value();
  // A close frame's payload is at most 125 bytes, 2 of them the code.
  if (reason.size() > 123) throwType(v.Env(), "reason must be at most 123 bytes of UTF-8");
  return reason;
}

std::string pingDataArg(const Napi::Value& v) {
  if (v.IsUndefined()) return std::string();
  if (!isSendData(v)) throwType(v.Env(), kSendDataError);
  SendData data;
  readSendData(v, data);
  if (data.length > 125)
    throwType(v.Env(), "data must be at most 125 bytes (a ping's payload), got " +
                           std::to_string(data.length));
  return std::string(reinterpret_cast<const char*>(data.bytes), data.length);
}

}  // namespace addon
}  // namespace wsengine
