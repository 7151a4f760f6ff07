// libFuzzer target: the client's proxy parsers (proxy.h).
//
// Input: byte 0 picks what runs; the rest is split at '\n' into fields.
//   0: parseProxyUrl(field 0), then the CONNECT request for it
//   1: noProxyMatches(field 0, host field 1, port from byte 1)
//   2: proxyFromEnv over six fields (https_proxy … NO_PROXY) for field 6
//   3: readConnectReply(rest) with limits from byte 1
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "proxy.h"
#include "url.h"
#include "fuzz_util.h"

using namespace wsengine;

namespace {
std::vector<std::string> fields(const std::string& s, size_t n) {
  std::vector<std::string> out;
  size_t i = 0;
  while (out.size() + 1 < n) {
    size_t j = s.find('\n', i);
    if (j == std::string::npos) break;
    out.push_back(s.substr(i, j - i));
    i = j + 1;
  }
  out.push_back(i <= s.size() ? s.substr(i) : std::string());
  while (out.size() < n) out.emplace_back();
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const int mode = data[0] & 3;
  const std::string rest(reinterpret_cast<const char*>(data + 2), size - 2);
  if (mode == 0) {
    ProxyUrl p;
    std::string err;
    bool ok = parseProxyUrl(rest, p, err);
    FUZZ_ASSERT(ok == err.empty());
    if (ok) {
      FUZZ_ASSERT(!p.host.empty() && p.port >= 1 && p.port <= 65535);
      FUZZ_ASSERT(p.authorization.empty() || p.authorization.compare(0, 6, "Basic ") == 0);
      std::string req = buildConnectRequest(p.host, p.port, p.ipv6, p.authorization);
      // Exactly one blank line, at the end: nothing from the url can add a
      // header or end the request early.
      FUZZ_ASSERT(req.find("\r\n\r\n") == req.size() - 4);
      FUZZ_ASSERT(req.find('\0') == std::string::npos);
      for (size_t i = 0; i < req.size(); ++i) {
        if (req[i] == '\n') FUZZ_ASSERT(i > 0 && req[i - 1] == '\r');
        if (req[i] == '\r') FUZZ_ASSERT(i + 1 < req.size() && req[i + 1] == '\n');
      }
    }
  } else if (mode == 1) {
    auto f = fields(rest, 2);
    int port = 1 + data[1];
    bool m = noProxyMatches(f[0], f[1], port);
    // "*" listed matches everything; an empty list nothing.
    if (noProxyMatches("*," + f[0], f[1], port) != true) __builtin_trap();
    if (f[0].empty()) FUZZ_ASSERT(!m);
    // Adding entries never removes a match.
    if (m) FUZZ_ASSERT(noProxyMatches("x.invalid," + f[0], f[1], port));
  } else if (mode == 2) {
    auto f = fields(rest, 7);
    ProxyEnv env;
    env.httpsProxy = f[0];
    env.httpsProxyUpper = f[1];
    env.httpProxy = f[2];
    env.httpProxyUpper = f[3];
    env.noProxy = f[4];
    env.noProxyUpper = f[5];
    std::string var;
    std::string p = proxyFromEnv(env, data[1] & 1, f[6], 443, var);
    FUZZ_ASSERT(p.empty() == var.empty());
  } else {
    static const size_t kLimits[4] = {0, 64, 512, 4096};
    size_t consumed = 0;
    int status = -1;
    std::string err;
    ConnectReply r = readConnectReply(rest.data(), rest.size(), kLimits[data[1] & 3],
                                      1 + (data[1] >> 2), consumed, status, err);
    if (r == ConnectReply::Established) {
      FUZZ_ASSERT(status >= 200 && status <= 299 && err.empty());
      FUZZ_ASSERT(consumed >= 4 && consumed <= rest.size());
    } else if (r == ConnectReply::Refused) {
      FUZZ_ASSERT(status < 200 || status > 299);
      FUZZ_ASSERT(err.compare(0, 23, "proxy refused CONNECT: ") == 0);
      for (char c : err) FUZZ_ASSERT(c >= 0x20 && c < 0x7F);
    } else if (r == ConnectReply::Bad) {
      FUZZ_ASSERT(!err.empty());
    }
  }
  return 0;
}
