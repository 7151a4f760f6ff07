#include "common.h"

#include <dirent.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace loadgen {

bool parseOptions(int argc, char** argv, Options* o, std::string* err) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        *err = "missing value for " + a;
        return nullptr;
      }
      return argv[++i];
    };
    const char* v = nullptr;
    if (a == "--deflate") { o->deflate = true; continue; }
    if (a == "--text") { o->text = true; continue; }
    if (!(v = next())) return false;
    if (a == "--mode") o->mode = v;
    else if (a == "--url") o->url = v;
    else if (a == "--conns") o->conns = std::atoi(v);
    else if (a == "--size") o->size = std::strtoull(v, nullptr, 10);
    else if (a == "--inflight") o->inflight = std::atoi(v);
    else if (a == "--duration") o->duration = std::atof(v);
    else if (a == "--warmup") o->warmup = std::atof(v);
    else if (a == "--rate") o->rate = std::atof(v);
    else if (a == "--dump") o->dump = v;
    else if (a == "--count") o->count = std::atoi(v);
    else if (a == "--bursts") o->bursts = std::atoi(v);
    else if (a == "--port") o->port = std::atoi(v);
    else if (a == "--connect-concurrency") o->connectConcurrency = std::atoi(v);
    else if (a == "--timeout") o->timeout = std::atof(v);
    else if (a == "--server-pid") o->serverPid = std::atoi(v);
    else {
      *err = "unknown option " + a;
      return false;
    }
  }
  if (o->mode.empty()) {
    *err = "--mode is required";
    return false;
  }
  if (o->conns < 1 || o->inflight < 1 || o->connectConcurrency < 1 || o->bursts < 1) {
    *err = "--conns, --inflight, --connect-concurrency and --bursts must be >= 1";
    return false;
  }
  return true;
}

bool parseUrl(const std::string& s, Url* out) {
  const std::string scheme = "ws://";
  if (s.compare(0, scheme.size(), scheme) != 0) return false;
  std::string rest = s.substr(scheme.size());
  size_t slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  out->path = slash == std::string::npos ? "/" : rest.substr(slash);
  size_t colon = hostport.rfind(':');
  if (colon == std::string::npos) {
    out->host = hostport;
    out->port = 80;
  } else {
    out->host = hostport.substr(0, colon);
    out->port = std::atoi(hostport.c_str() + colon + 1);
  }
  if (!out->host.empty() && out->host.front() == '[') out->host = out->host.substr(1, out->host.size() - 2);
  return !out->host.empty() && out->port > 0 && out->port < 65536;
}

uv_loop_t* mainLoop() {
  static uv_loop_t loop;
  static bool ready = uv_loop_init(&loop) == 0;
  return ready ? &loop : nullptr;
}

double processCpuSeconds(int pid) {
  if (pid <= 0) return -1;
  std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = opendir(dir.c_str());
  if (!d) return -1;
  uint64_t ns = 0;
  int threads = 0;
  while (struct dirent* e = readdir(d)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    std::string path = dir + "/" + e->d_name + "/schedstat";
    FILE* f = std::fopen(path.c_str(), "r");
    if (!f) continue;  // the thread just ended
    unsigned long long runNs = 0;
    if (std::fscanf(f, "%llu", &runNs) == 1) {
      ns += runNs;
      ++threads;
    }
    std::fclose(f);
  }
  closedir(d);
  return threads ? ns / 1e9 : -1;
}

double cpuSeconds() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
         ru.ru_stime.tv_usec / 1e6;
}

MachineCpu machineCpu() {
  MachineCpu m;
  FILE* f = std::fopen("/proc/stat", "r");
  if (!f) return m;
  unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  // cpu  user nice system idle iowait irq softirq steal ...
  int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                      &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  long hz = sysconf(_SC_CLK_TCK);
  if (n < 8 || hz <= 0) return m;
  m.ok = true;
  m.busy = static_cast<double>(v[0] + v[1] + v[2] + v[5] + v[6]) / hz;
  m.steal = static_cast<double>(v[7]) / hz;
  return m;
}

uint64_t rssBytes() {
  size_t rss = 0;
  uv_resident_set_memory(&rss);
  return rss;
}

std::vector<uint8_t> makePayload(size_t size, bool text) {
  std::vector<uint8_t> p(size);
  if (!text) {
    // Not constant, so an accidental offset or truncation shows in the check.
    for (size_t i = 0; i < size; ++i) p[i] = static_cast<uint8_t>((i * 131 + 7) % 251);
    return p;
  }
  static const char* names[] = {"alpha", "bravo", "charlie", "delta", "echo", "foxtrot"};
  std::string s;
  s.reserve(size + 128);
  uint32_t x = 12345;
  while (s.size() < size) {
    x = x * 1103515245u + 12345u;  // varied numbers so it is not one repeated line
    char line[160];
    std::snprintf(line, sizeof line,
                  "{\"id\":%u,\"user\":\"%s\",\"score\":%u,\"active\":%s,\"tags\":[\"%s\",\"%s\"]}\n",
                  (x >> 8) % 100000, names[(x >> 3) % 6], (x >> 12) % 1000,
                  (x & 1) ? "true" : "false", names[(x >> 5) % 6], names[(x >> 7) % 6]);
    s += line;
  }
  std::memcpy(p.data(), s.data(), size);
  return p;
}

double quantile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  double pos = q * (sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, sorted.size() - 1);
  double f = pos - lo;
  return sorted[lo] * (1 - f) + sorted[hi] * f;
}

void jsonNum(std::string& out, const char* key, double v) {
  char buf[96];
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.0f", out.empty() ? "" : ",", key, v);
  else if (std::isfinite(v))
    std::snprintf(buf, sizeof buf, "%s\"%s\":%.6g", out.empty() ? "" : ",", key, v);
  else
    std::snprintf(buf, sizeof buf, "%s\"%s\":null", out.empty() ? "" : ",", key);
  out += buf;
}

void jsonStr(std::string& out, const char* key, const std::string& v) {
  if (!out.empty()) out += ',';
  out += '"';
  out += key;
  out += "\":\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    out += c;
  }
  out += '"';
}

void printJson(const std::string& body) {
  // write(2) on fd 1 directly: the hosting node may have made its stdout
  // non-blocking, where stdio would drop what does not fit the pipe at once.
  std::string line = "{" + body + "}\n";
  size_t off = 0;
  while (off < line.size()) {
    ssize_t n = ::write(1, line.data() + off, line.size() - off);
    if (n > 0) {
      off += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {1, POLLOUT, 0};
      ::poll(&p, 1, 100);
    } else {
      return;  // the reader went away
    }
  }
}

}  // namespace loadgen
