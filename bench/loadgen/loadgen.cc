// ix-websocket benchmark load generator. One single-threaded loop, so its own
// CPU use is easy to read (reported as loadgen_cpu = CPU seconds / wall
// seconds over the measured window: well below 1 means it was not the limit).
//
// It is a Node addon run by bench/loadgen/loadgen.js in a process of its own:
// libuv, OpenSSL (SHA-1, base64) and zlib are then the ones the node binary
// exports, compiled against the headers Node ships (include/node), so building
// it needs what `npm install` needs and no system library. run() blocks the
// calling JavaScript thread until the mode ends: nothing else runs in that
// process.
//
//   loadgen --mode echo --url ws://127.0.0.1:PORT/ --conns 100 --size 1024 --inflight 8
//           --duration 2 --warmup 0.5 [--deflate] [--text] [--server-pid PID]
//   loadgen --mode broadcast --url ... --conns 1000 --count 50 --size 1024 [--bursts 3] [--server-pid PID]
//   loadgen --mode latency --url ... --conns 10 --rate 5000 --size 64 [--server-pid PID]
//   loadgen --mode idle --url ... --conns 10000   (holds until SIGTERM or --duration)
//   loadgen --mode flood-server --port 0 --size 1024 --duration 2
#include <node_api.h>

#include <csignal>
#include <cstdio>
#include <string>
#include <vector>

#include "common.h"
#include "modes.h"

namespace {

int runMain(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  loadgen::Options o;
  std::string err;
  if (!loadgen::parseOptions(argc, argv, &o, &err)) {
    std::fprintf(stderr, "loadgen: %s\n", err.c_str());
    return 64;
  }
  if (!loadgen::mainLoop()) {
    std::fprintf(stderr, "loadgen: cannot create an event loop\n");
    return 70;
  }
  if (o.mode == "echo") return loadgen::runEcho(o);
  if (o.mode == "broadcast") return loadgen::runBroadcast(o);
  if (o.mode == "latency") return loadgen::runLatency(o);
  if (o.mode == "idle") return loadgen::runIdle(o);
  if (o.mode == "flood-server") return loadgen::runFloodServer(o);
  std::fprintf(stderr, "loadgen: unknown mode %s\n", o.mode.c_str());
  return 64;
}

bool gRan = false;

// run(args: string[]): number, the exit code. Once per process: a mode leaves
// its loop with handles it never closes (the process ends right after).
napi_value Run(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr) != napi_ok) return nullptr;
  bool isArray = false;
  if (argc < 1 || napi_is_array(env, argv[0], &isArray) != napi_ok || !isArray) {
    napi_throw_type_error(env, nullptr, "run(args): args must be an array of strings");
    return nullptr;
  }
  if (gRan) {
    napi_throw_error(env, nullptr, "run() may be called once per process");
    return nullptr;
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[0], &n);
  std::vector<std::string> args{"loadgen"};
  for (uint32_t i = 0; i < n; ++i) {
    napi_value v;
    napi_valuetype t;
    if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok ||
        t != napi_string) {
      napi_throw_type_error(env, nullptr, "run(args): every element of args must be a string");
      return nullptr;
    }
    size_t len = 0;
    napi_get_value_string_utf8(env, v, nullptr, 0, &len);
    std::string s(len, '\0');
    napi_get_value_string_utf8(env, v, &s[0], len + 1, &len);
    args.push_back(std::move(s));
  }
  std::vector<char*> cargs;
  for (auto& s : args) cargs.push_back(&s[0]);
  cargs.push_back(nullptr);
  gRan = true;
  int rc = runMain(static_cast<int>(args.size()), cargs.data());
  napi_value out;
  napi_create_int32(env, rc, &out);
  return out;
}

}  // namespace

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "run", NAPI_AUTO_LENGTH, Run, nullptr, &fn) != napi_ok) return nullptr;
  napi_set_named_property(env, exports, "run", fn);
  return exports;
}
