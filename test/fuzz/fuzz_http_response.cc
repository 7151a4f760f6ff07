// libFuzzer target: the HTTP response head parser with small limits and the
// client's check of the upgrade response.
//
// Input: byte 0 picks the limits, the rest is the received bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http.h"
#include "fuzz_util.h"

using namespace wsengine;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const size_t kHeadLimits[4] = {0, 64, 512, 4096};
  const size_t maxHeaderSize = kHeadLimits[data[0] & 3];
  const int maxHeaders = (data[0] >> 2) & 15;
  const char* buf = reinterpret_cast<const char*>(data + 1);
  const size_t len = size - 1;
  // The accept value for the RFC 6455 sample key, which seeds use.
  static const std::string kAccept = computeAcceptKey("dGhlIHNhbXBsZSBub25jZQ==");
  FUZZ_ASSERT(kAccept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");

  HttpResponse res;
  size_t consumed = 0;
  std::string error;
  HttpParse r = parseHttpResponse(buf, len, maxHeaderSize, maxHeaders, res, consumed, error);
  if (r == HttpParse::Done) {
    FUZZ_ASSERT(consumed >= 4 && consumed <= len);
    if (maxHeaderSize) FUZZ_ASSERT(consumed <= maxHeaderSize);
    FUZZ_ASSERT(std::string(buf + consumed - 4, 4) == "\r\n\r\n");
    FUZZ_ASSERT(res.status >= 0 && res.status <= 999);
    FUZZ_ASSERT(res.version.size() == 8);
    if (maxHeaders > 0) FUZZ_ASSERT(res.headers.size() <= static_cast<size_t>(maxHeaders));
    for (const auto& h : res.headers) {
      FUZZ_ASSERT(!h.first.empty());
      FUZZ_ASSERT(h.second.find_first_of("\r\n") == std::string::npos);
    }
    std::string why;
    bool ok = validateUpgradeResponse(res, kAccept, why);
    FUZZ_ASSERT(ok == why.empty());
    if (ok) {
      std::string v;
      FUZZ_ASSERT(res.status == 101 && res.get("Sec-WebSocket-Accept", v) && v == kAccept);
    }
  } else if (r == HttpParse::Incomplete) {
    FUZZ_ASSERT(maxHeaderSize == 0 || len < maxHeaderSize);
    FUZZ_ASSERT(std::string(buf, len).find("\r\n\r\n") == std::string::npos);
  } else {
    FUZZ_ASSERT(!error.empty());
  }
  return 0;
}
