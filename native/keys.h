// Property names as JS strings, created once per environment and kept in
// one array, so that a property is read or written by a string V8 already
// has (a C string name would be turned into a JS string on every access);
// and which top-level keys an object carries, found by one JS call.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>

#include "option_table.h"

namespace wsengine {
namespace addon {

// The names that are not options (option_table.h declares those): the
// commands' own keys (ref; clients and binary on a send), the values handed
// back to `method`, statuses, event contexts and event types. `headers` is
// an option and also a context and status key; it is declared as an option.
#define IXWS_OTHER_KEYS(X)                                                                    \
  X(ref) X(method) X(worker) X(window) X(process) X(clients) X(binary) X(success) X(message)  \
  X(compressionError) X(payloadSize) X(wireSize) X(bufferedAmount) X(client) X(http_status)   \
  X(errorStr) X(uri) X(data) X(decompressionError) X(reason) X(wait_time) X(retries) X(code)  \
  X(remote) X(open) X(close) X(error) X(fragment) X(ping) X(pong) X(protocol) X(extensions)  \
  X(remoteAddress) X(remotePort) X(origin) X(secure) X(accept) X(status) X(topic)             \
  X(subscribers) X(sent) X(failed) X(redirects) X(cipher) X(resumed) X(peerCertificate)

// Every key once, in Key's order: OPTION(name, ...) for the options and
// their nested fields, OTHER(name) for the rest.
#define IXWS_FOR_EACH_KEY(OPTION, OTHER)                                                    \
  IXWS_OPTIONS(OPTION) IXWS_DEFLATE_OPTIONS(OPTION) IXWS_TLS_OPTIONS(OPTION) IXWS_OTHER_KEYS(OTHER)

// Presence bits of the top-level keys (Keys::presence): up to 53, as the JS
// side computes them in a double.
using PresenceMask = uint64_t;

enum class Key : uint16_t {
#define IXWS_KEY_ENUM(name) name,
#define IXWS_OPTION_KEY_ENUM(name, ...) name,
  IXWS_FOR_EACH_KEY(IXWS_OPTION_KEY_ENUM, IXWS_KEY_ENUM)
#undef IXWS_OPTION_KEY_ENUM
#undef IXWS_KEY_ENUM
  kCount
};

const char* keyName(Key k);

// Per environment: the array holding every key string, and a small JS
// function telling which top-level option keys an object carries.
class KeyStore {
 public:
  void init(Napi::Env env);
  napi_value array(napi_env env) const;
  napi_value presence(napi_env env) const;
  // (o) => whether o has a top-level key other than ref, clients, binary.
  napi_value hasConfigKeys(napi_env env) const;

 private:
  Napi::ObjectReference array_;
  Napi::FunctionReference presence_;
  Napi::FunctionReference hasConfig_;
};

// Per native call (or per event): fetches keys from the store on first use.
// The napi_values live in the current handle scope: do not keep a Keys
// beyond the scope it was made in.
class Keys {
 public:
  explicit Keys(Napi::Env env);
  napi_value operator[](Key k);
  // Fetches every key now, in the current handle scope, so that the Keys can
  // be used from nested scopes (a lazily fetched one would die with the
  // nested scope it was first used in).
  void fetchAll();
  Napi::Env env() const { return Napi::Env(env_); }

  // Bit per top-level key (ref, the options, clients, binary) that obj has
  // with a value other than undefined: one JS call whose property loads are
  // inline-cached, where asking Node-API key by key costs a runtime call
  // each. A `{ ref }` argument then reads one property instead of thirty.
  PresenceMask presence(napi_value obj);
  // The key's presence bit; 0 for nested keys (never skipped).
  static PresenceMask bit(Key k);
  // Bits of ref, clients and binary: keys that are not configuration.
  static PresenceMask commandBits() { return bit(Key::ref) | bit(Key::clients) | bit(Key::binary); }

  Napi::Value get(napi_value obj, Key k);
  void set(napi_value obj, Key k, napi_value v);
  void set(napi_value obj, Key k, bool v);
  void set(napi_value obj, Key k, double v);
  void set(napi_value obj, Key k, int v) { set(obj, k, static_cast<double>(v)); }
  void set(napi_value obj, Key k, const std::string& v);

 private:
  napi_env env_;
  napi_value array_;
  napi_value cache_[static_cast<size_t>(Key::kCount)] = {};
};

}  // namespace addon
}  // namespace wsengine
