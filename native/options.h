// Option objects <-> engine option structs, driven by the table in
// option_table.h. Reading validates every property present (a wrong type
// throws a TypeError naming it) and leaves absent or undefined ones as they
// were, so the same code serves creation and the partial updates every
// command accepts.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <memory>
#include <string>

#include "keys.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

// The tls object as given: the fields given (only those are written back
// and reach the engine, over its defaults) and whether it was given at all.
struct TlsConfig {
  bool given = false;
  uint32_t fields = 0;  // bit i: the i-th field of IXWS_TLS_OPTIONS
  TlsOptions opts;      // the values of the fields given
};

// A server's or client's configuration: the engine's options, whose
// defaults are the engine structs' own, plus what only the JavaScript side
// has (the perMessageDeflate object as given, disablePerMessageDeflate, the
// tls fields given).
// Whether inline mode is the default (the IXWS_INLINE environment variable
// is "1" or "true"), read when an object is created.
bool inlineByDefault();

template <class EngineOptions>
struct Config {
  EngineOptions opts;  // opts.tls stays the engine's default (see tls)
  bool disablePerMessageDeflate = false;
  // Inline mode: the engine runs this object's sockets on the JavaScript
  // thread's own loop (the start sets opts.loop, see Instance::embeddedLoop).
  bool inlineLoop = inlineByDefault();
  // Binary payloads are lent to the event: the external Buffer of a large
  // one is detached when the method returns and its memory reused at once
  // (Delivery::deliverEvent).
  bool borrowedPayloads = false;
  TlsConfig tls;
  // Server: verifyClient (null: none). Shared by copies of the Config; JS
  // thread only, like the Config itself.
  std::shared_ptr<Napi::FunctionReference> verifyClient;
  // What the engine gets: disablePerMessageDeflate, tls and verifyClient
  // folded in, and the close reply held for the delivery of the events
  // before a peer's close (delivery.cc acknowledges it).
  EngineOptions effective() const;
};
using ServerConfig = Config<ServerOptions>;
using ClientConfig = Config<ClientOptions>;

// `name` prefixes messages: "options" for the constructors, "server" or
// "client" for commands. Throws Napi::TypeError; cfg is untouched then.
// `present` is keys.presence(obj): keys without their bit are not read.
void readOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ServerConfig& cfg,
                 const std::string& name);
void readOptions(Keys& keys, const Napi::Object& obj, PresenceMask present, ClientConfig& cfg,
                 const std::string& name);

// An object of header names to string values (the `headers` option of a
// client's request, `request`; a verifyClient answer's headers); `path`
// names it in the TypeError. A header the engine writes itself in that
// message (wsengine::engineOwnsHeader) is a TypeError too: it would be a
// second copy, which servers refuse.
Headers headersArg(const Napi::Object& o, const std::string& path, bool request);

// Writes every option of the side with its current value (tls only when
// given, with the fields given).
void writeOptions(Keys& keys, const Napi::Object& out, const ServerConfig& cfg);
void writeOptions(Keys& keys, const Napi::Object& out, const ClientConfig& cfg);

}  // namespace addon
}  // namespace wsengine
