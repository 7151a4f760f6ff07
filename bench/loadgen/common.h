// Shared pieces of the load generator: options, URL, clocks, payloads.
// The generator is a Node addon (loadgen.cc) so that libuv, OpenSSL and zlib
// come from the node binary that loads it, like the ix-websocket addon's do:
// these headers are Node's own (include/node), no system library is needed.
#pragma once

#include <uv.h>

#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

struct Options {
  std::string mode;         // echo | broadcast | latency | idle | flood-server
  std::string dump;         // latency: write "send_offset_us rtt_us" per message here
  std::string url = "ws://127.0.0.1:8080/";
  int conns = 100;
  size_t size = 1024;       // payload bytes per message
  int inflight = 8;         // echo: messages in flight per connection
  double duration = 2.0;    // seconds measured (idle: max hold time)
  double warmup = 0.5;      // seconds run before measuring
  double rate = 5000;       // latency: messages per second, all connections
  int count = 50;           // broadcast: messages the server sends to everyone
  int bursts = 3;           // broadcast: measured bursts (after one warm-up burst)
  bool deflate = false;     // offer permessage-deflate
  bool text = false;        // text frames (compressible ASCII) instead of binary
  int port = 0;             // flood-server: port to listen on (0: any)
  int connectConcurrency = 200;  // handshakes in progress at once
  double timeout = 60.0;    // seconds before giving up on a mode
  int serverPid = 0;        // read this process's CPU time over the measured window
};

bool parseOptions(int argc, char** argv, Options* o, std::string* err);

// The generator's own loop. Never Node's default loop: run() blocks the
// JavaScript thread that called it, and Node's loop must not run re-entered.
uv_loop_t* mainLoop();

struct Url {
  std::string host;
  int port = 80;
  std::string path = "/";
};
bool parseUrl(const std::string& s, Url* out);

inline uint64_t nowNs() { return uv_hrtime(); }
// This process's user+system CPU seconds.
double cpuSeconds();
// Resident set size of this process, bytes.
uint64_t rssBytes();
// CPU seconds used so far by every thread of process `pid` (the server under
// load), from the scheduler's nanosecond run times in /proc/PID/task/*/schedstat
// (ticks of /proc/PID/stat are 10 ms: too coarse for a 50 ms broadcast burst).
// Negative when unreadable or pid is 0.
double processCpuSeconds(int pid);

// The whole machine's CPU time so far, from the first line of /proc/stat, in
// CPU seconds: `busy` is user + nice + system + irq + softirq of every CPU,
// `steal` the time the hypervisor ran something else while a virtual CPU
// wanted to run. ok is false where /proc/stat is unreadable. Tick-based
// (USER_HZ): over a 2 s window of 2 CPUs, resolution ~0.005 of a core.
struct MachineCpu {
  bool ok = false;
  double busy = 0;
  double steal = 0;
};
MachineCpu machineCpu();

// The payload every mode sends: binary bytes in a fixed pattern, or ASCII
// JSON-like lines that compress about 4-6x (for the deflate scenario).
std::vector<uint8_t> makePayload(size_t size, bool text);

// Value at quantile q (0..1) of sorted samples.
double quantile(const std::vector<double>& sorted, double q);

// Adds "key":value pairs to a JSON object being built in `out`.
void jsonNum(std::string& out, const char* key, double v);
void jsonStr(std::string& out, const char* key, const std::string& v);
// Prints {...} on one line of stdout and flushes.
void printJson(const std::string& body);

}  // namespace loadgen
