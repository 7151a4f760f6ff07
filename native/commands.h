// The exported functions, grouped by file.
#pragma once

#include "napi_config.h"

namespace wsengine {
namespace addon {

// server_wrap.cc: websocketServer*, websocketServerCloseClient
void registerServerCommands(Napi::Env env, Napi::Object exports);
// client_wrap.cc: websocketClient*
void registerClientCommands(Napi::Env env, Napi::Object exports);

}  // namespace addon
}  // namespace wsengine
