// ix-websocket benchmark load generator. One process, one libuv loop, so its
// own CPU use is easy to read (reported as loadgen_cpu = CPU seconds / wall
// seconds over the measured window: well below 1 means it was not the limit).
//
//   loadgen --mode echo --url ws://127.0.0.1:PORT/ --conns 100 --size 1024 --inflight 8
//           --duration 2 --warmup 0.5 [--deflate] [--text]
//   loadgen --mode broadcast --url ... --conns 1000 --count 50 --size 1024
//   loadgen --mode latency --url ... --conns 10 --rate 5000 --size 64
//   loadgen --mode idle --url ... --conns 10000   (holds until SIGTERM or --duration)
//   loadgen --mode flood-server --port 0 --size 1024 --duration 2
#include <csignal>
#include <cstdio>

#include "common.h"
#include "modes.h"

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  loadgen::Options o;
  std::string err;
  if (!loadgen::parseOptions(argc, argv, &o, &err)) {
    std::fprintf(stderr, "loadgen: %s\n", err.c_str());
    return 64;
  }
  if (o.mode == "echo") return loadgen::runEcho(o);
  if (o.mode == "broadcast") return loadgen::runBroadcast(o);
  if (o.mode == "latency") return loadgen::runLatency(o);
  if (o.mode == "idle") return loadgen::runIdle(o);
  if (o.mode == "flood-server") return loadgen::runFloodServer(o);
  std::fprintf(stderr, "loadgen: unknown mode %s\n", o.mode.c_str());
  return 64;
}
