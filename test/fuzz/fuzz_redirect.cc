// libFuzzer target: following redirects (redirect.h).
//
// Input: byte 0: the number of redirects already followed (low nibble),
// whether a Location is present (bit 4) and whether the chain already left
// the original host (bit 5); the rest is "base\nlocation".
#include <cstddef>
#include <cstdint>
#include <string>

#include "redirect.h"
#include "url.h"
#include "fuzz_util.h"

using namespace wsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string in(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t nl = in.find('\n');
  std::string base = in.substr(0, nl);
  std::string location = nl == std::string::npos ? std::string() : in.substr(nl + 1);
  int followed = data[0] & 15;
  bool hasLocation = (data[0] & 16) == 0;

  std::string resolved, err;
  if (resolveLocation(base, location, resolved, err)) {
    FUZZ_ASSERT(err.empty());
  } else {
    FUZZ_ASSERT(!err.empty());
  }

  WsUrl cur;
  if (!parseWsUrl(base, cur, err)) return 0;
  std::string next;
  WsUrl np;
  bool ok = nextRedirect(base, cur, hasLocation, location, followed, 10, next, np, err);
  FUZZ_ASSERT(ok == err.empty());
  if (!ok) return 0;
  FUZZ_ASSERT(followed < 10 && hasLocation);
  FUZZ_ASSERT(!(cur.secure && !np.secure));
  // The hop's url is one the client accepts, as it was parsed.
  WsUrl again;
  FUZZ_ASSERT(parseWsUrl(next, again, err));
  FUZZ_ASSERT(again.host == np.host && again.port == np.port && again.target == np.target);
  FUZZ_ASSERT(!np.host.empty() && !np.target.empty() && np.target[0] == '/');
  Headers given = {{"Authorization", "Bearer t"}, {"Cookie", "c"}, {"X", "y"}};
  // Bit 5: an earlier hop of the chain left the original host.
  bool left = (data[0] & 32) != 0;
  Headers h = hopHeaders(given, cur, np, left);
  for (const auto& kv : h) {
    FUZZ_ASSERT(kv.second.find_first_of("\r\n") == std::string::npos);
    if (left || !sameHost(cur, np)) FUZZ_ASSERT(kv.second != "Bearer t" && kv.second != "c");
  }
  return 0;
}
