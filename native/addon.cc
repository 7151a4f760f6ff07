// Module entry: one Instance per environment (main thread, each worker), the
// IO thread count from IXWS_IO_THREADS, the library pinned in memory, and the
// exports of commands.h.
#include "napi_config.h"

#include <cstdlib>
#include <mutex>

#ifdef _WIN32
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <dlfcn.h>
#endif

#include "commands.h"
#include "instance.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

namespace {

void configureIoThreads() {
  // Process-wide and effective before the engine's first use only, so the
  // first environment that loads the addon decides.
  static std::once_flag once;
  std::call_once(once, [] {
    const char* text = std::getenv("IXWS_IO_THREADS");
    if (text == nullptr || *text == '\0') return;
    char* end = nullptr;
    long n = std::strtol(text, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 64) setIoThreadCount(static_cast<int>(n));
  });
}

// The engine's IO threads are process-wide and never joined, so this library
// must stay mapped for the life of the process: Node unloads an addon when the
// last environment that loaded it ends (e.g. every worker terminated while the
// main thread never required it), and a running IO thread would then execute
// unmapped code. Taking one more, never-released reference pins it.
void pinModule() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef _WIN32
    HMODULE self = nullptr;
    GetModuleHandleExW(GET_MODULE_HANDLE_EX_FLAG_FROM_ADDRESS | GET_MODULE_HANDLE_EX_FLAG_PIN,
                       reinterpret_cast<LPCWSTR>(&pinModule), &self);
#else
    Dl_info info;
    if (dladdr(reinterpret_cast<void*>(&pinModule), &info) != 0 && info.dli_fname != nullptr) {
      dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);  // handle kept forever on purpose
    }
#endif
  });
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  configureIoThreads();
  pinModule();
  // Deleted by Node when the environment goes away; its cleanup hook clears
  // every server and client first.
  env.SetInstanceData(new Instance(env));
  registerServerCommands(env, exports);
  registerClientCommands(env, exports);
  registerExtras(env, exports);
  registerTopicCommands(env, exports);
  registerAttach(env, exports);
  // Whether received payloads of 64 KiB or more alias the engine's bytes
  // (external Buffers) or are copied into V8-owned ones: the Electron profile
  // copies (its V8 refuses external backing stores), which changes how
  // often a large-message stream drives full collections.
#ifdef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  exports.Set("externalBuffers", Napi::Boolean::New(env, false));
#else
  exports.Set("externalBuffers", Napi::Boolean::New(env, true));
#endif
  return exports;
}

}  // namespace addon
}  // namespace wsengine

// The module macro wants an unqualified name.
static Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  return wsengine::addon::Init(env, exports);
}
NODE_API_MODULE(ix_websocket, InitModule)
