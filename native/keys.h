// Property names as JS strings, interned once per environment. Looking a
// property up by a C string interns that string on every access; commands
// get whole configuration objects (some 30 properties) on every call and
// events build a context per message, so that cost dominated both.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>

namespace wsengine {
namespace addon {

#define IXWS_KEYS(X)                                                                        \
  X(ref) X(method) X(worker) X(window) X(process) X(port) X(host) X(backlog)                \
  X(maxConnections) X(handshakeTimeout) X(pingInterval) X(pingTimeout) X(enablePong)        \
  X(perMessageDeflate) X(enabled) X(clientNoContextTakeover) X(serverNoContextTakeover)     \
  X(serverMaxWindowBits) X(clientMaxWindowBits) X(threshold) X(disablePerMessageDeflate)    \
  X(maxPayload) X(maxHeaderSize) X(maxHeaders) X(sendHighWaterMark) X(tls) X(cert) X(key)   \
  X(maxHandshakes) X(firstByteTimeout) X(maxConnectionsPerAddress) X(maxUnfinishedBytes)    \
  X(ca) X(certFile) X(keyFile) X(caFile) X(ciphers) X(servername) X(verifyPeer)             \
  X(disableHostnameValidation) X(url) X(headers) X(enableAutomaticReconnection)             \
  X(minWaitBetweenReconnectionRetries) X(maxWaitBetweenReconnectionRetries) X(timeout)      \
  X(clients) X(binary) X(success) X(message) X(compressionError) X(payloadSize) X(wireSize) \
  X(bufferedAmount) X(client) X(http_status) X(errorStr) X(uri) X(data)                     \
  X(decompressionError) X(reason) X(wait_time) X(retries) X(code) X(remote) X(open)         \
  X(close) X(error) X(fragment) X(ping) X(pong)

// Presence bits of the top-level keys (Keys::presence): up to 53, as the JS
// side computes them in a double.
using PresenceMask = uint64_t;

enum class Key : uint16_t {
#define IXWS_KEY_ENUM(name) name,
  IXWS_KEYS(IXWS_KEY_ENUM)
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

 private:
  Napi::ObjectReference array_;
  Napi::FunctionReference presence_;
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
