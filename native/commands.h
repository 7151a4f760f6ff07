// The exported functions, grouped by file.
#pragma once

#include "napi_config.h"

namespace wsengine {
namespace addon {

// server_commands.cc: websocketServer*, websocketServerCloseClient
void registerServerCommands(Napi::Env env, Napi::Object exports);
// client_commands.cc: websocketClient*
void registerClientCommands(Napi::Env env, Napi::Object exports);
// extras.cc: setKeepAlive, bufferedAmount, ioThreads, bufferPoolStats,
// parseClientUrl
void registerExtras(Napi::Env env, Napi::Object exports);

}  // namespace addon
}  // namespace wsengine
