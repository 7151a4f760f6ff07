// The commands' own arguments, read in one place: the object with its `ref`,
// bare refs and connection refs, a send's `binary` flag, a close code and
// reason. Each throws a TypeError naming the argument for a wrong type; a
// number that cannot be a ref in use reads as 0 (refs are never 0), so the
// command answers "unknown ref" as for any other ref not in use.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>

#include "keys.h"

namespace wsengine {
namespace addon {

// Refs are ints: -2^31+1 .. 2^31-1.
constexpr double kMaxInt32 = 2147483647.0;
constexpr double kMaxUint32 = 4294967295.0;
// The largest integer a double holds exactly (2^53 - 1).
constexpr double kMaxSafeInteger = 9007199254740991.0;

[[noreturn]] void throwType(const Napi::Env& env, const std::string& message);
// A number with no fractional part (not NaN or infinite).
bool isInteger(const Napi::Value& v);

// A number as a server or client ref; 0 unless it is an integer in int range.
int asRef(double d);
// A number as a server connection's ref; 0 unless it is an integer >= 1.
int asConnRef(double d);

// The object a command takes. Throws TypeError "<name> must be an object
// with a numeric ref"; a ref that is not an integer in int range reads as 0.
Napi::Object refObjectArg(Keys& keys, const Napi::Value& v, const char* name, int& ref);
// A bare ref (setKeepAlive, bufferedAmount). Throws "ref must be an integer".
int refArg(const Napi::Value& v);
// A server connection's ref. Throws "client must be an integer".
int connRefArg(const Napi::Value& v);

// A send's `binary` property, read when `present` has its bit. Throws
// "<name>.binary must be a boolean".
enum class BinaryFlag : uint8_t { Unset, False, True };
BinaryFlag binaryArg(Keys& keys, const Napi::Object& obj, PresenceMask present, const char* name);
// The frame a send makes: a string goes as text unless binary is true, bytes
// go as binary unless binary is false.
inline bool sendsBinary(BinaryFlag flag, bool isString) {
  return isString ? flag == BinaryFlag::True : flag != BinaryFlag::False;
}

// websocketServerCloseClient's code (default 1000) and reason (default "").
// A code must be one RFC 6455 lets an application send; a reason fits a
// close frame (at most 123 bytes of UTF-8).
int closeCodeArg(const Napi::Value& v);
std::string closeReasonArg(const Napi::Value& v);

// A ping's payload (RFC 6455 §5.5: at most 125 bytes): undefined for none,
// else send data. Throws "data must be at most 125 bytes ..." beyond it.
std::string pingDataArg(const Napi::Value& v);

}  // namespace addon
}  // namespace wsengine
