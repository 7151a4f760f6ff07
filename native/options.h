// Option objects <-> engine option structs. Reading validates every property
// present (a wrong type throws a TypeError naming it) and leaves absent or
// undefined ones as they were, so the same code serves creation and the
// partial updates every command accepts.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>

#include "keys.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

// Which TLS properties the user gave: only those are written back.
struct TlsConfig {
  bool given = false;
  uint32_t fields = 0;
  TlsOptions opts;
};

struct ServerConfig {
  ServerConfig();
  ServerOptions opts;  // opts.deflate is the perMessageDeflate object as given
  bool disablePerMessageDeflate = false;
  TlsConfig tls;
  // What the engine gets: disablePerMessageDeflate and tls folded in.
  ServerOptions effective() const;
};

struct ClientConfig {
  ClientOptions opts;
  bool disablePerMessageDeflate = false;
  TlsConfig tls;
  ClientOptions effective() const;
};

// `name` prefixes messages: "options" for the constructors, "server" or
// "client" for commands. Throws Napi::TypeError; cfg is untouched then.
// `present` is keys.presence(obj): keys without their bit are not read.
void readServerOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ServerConfig& cfg,
                       const std::string& name);
void readClientOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ClientConfig& cfg,
                       const std::string& name);

// Writes every option with its current value (tls only when given).
void writeServerOptions(Keys& keys, const Napi::Object& out, const ServerConfig& cfg);
void writeClientOptions(Keys& keys, const Napi::Object& out, const ClientConfig& cfg);

}  // namespace addon
}  // namespace wsengine
