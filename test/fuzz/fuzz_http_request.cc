// libFuzzer target: the HTTP request head parser with small limits, the
// upgrade validation, and the consistency of incremental parsing.
//
// Input: byte 0 picks the limits, the rest is the received bytes.
#include <cstddef>
#include <cstdint>
#include <string>

#include "http.h"
#include "fuzz_util.h"

using namespace wsengine;

namespace {

bool lineSafe(const std::string& s) { return s.find_first_of("\r\n") == std::string::npos; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  static const size_t kHeadLimits[4] = {0, 64, 512, 4096};
  const size_t maxHeaderSize = kHeadLimits[data[0] & 3];
  const int maxHeaders = (data[0] >> 2) & 15;  // 0: no limit
  const char* buf = reinterpret_cast<const char*>(data + 1);
  const size_t len = size - 1;

  HttpRequest req;
  size_t consumed = 0;
  std::string error;
  HttpParse r = parseHttpRequest(buf, len, maxHeaderSize, maxHeaders, req, consumed, error);
  if (r == HttpParse::Done) {
    FUZZ_ASSERT(consumed >= 4 && consumed <= len);
    if (maxHeaderSize) FUZZ_ASSERT(consumed <= maxHeaderSize);
    FUZZ_ASSERT(std::string(buf + consumed - 4, 4) == "\r\n\r\n");
    FUZZ_ASSERT(error.empty());
    if (maxHeaders > 0) FUZZ_ASSERT(req.headers.size() <= static_cast<size_t>(maxHeaders));
    FUZZ_ASSERT(!req.method.empty() && !req.target.empty() && req.version.size() == 8);
    for (const auto& h : req.headers) {
      FUZZ_ASSERT(!h.first.empty() && lineSafe(h.first) && lineSafe(h.second));
      FUZZ_ASSERT(h.first.find(':') == std::string::npos);
    }
    // The head alone parses the same; bytes after it do not matter.
    HttpRequest again;
    size_t consumed2 = 0;
    std::string error2;
    FUZZ_ASSERT(parseHttpRequest(buf, consumed, maxHeaderSize, maxHeaders, again, consumed2,
                                 error2) == HttpParse::Done);
    FUZZ_ASSERT(consumed2 == consumed && again.headers == req.headers &&
                again.target == req.target && again.method == req.method);

    UpgradeVerdict v = validateUpgradeRequest(req);
    FUZZ_ASSERT(v.status == 0 || v.status == 400 || v.status == 405 || v.status == 426);
    FUZZ_ASSERT((v.status == 0) == v.reason.empty());
    std::string value;
    if (v.status == 0) {
      FUZZ_ASSERT(req.method == "GET");
      FUZZ_ASSERT(req.get("Sec-WebSocket-Key", value) && value.size() == 24);
      FUZZ_ASSERT(computeAcceptKey(value).size() == 28);
      // What we would answer stays a well-formed head.
      std::string resp = buildUpgradeResponse(computeAcceptKey(value), "permessage-deflate");
      HttpResponse res;
      size_t rc = 0;
      FUZZ_ASSERT(parseHttpResponse(resp.data(), resp.size(), 0, 0, res, rc, error2) ==
                  HttpParse::Done);
      FUZZ_ASSERT(validateUpgradeResponse(res, computeAcceptKey(value), error2));
    } else {
      std::string err = buildErrorResponse(v.status, v.reason);
      FUZZ_ASSERT(err.compare(0, 9, "HTTP/1.1 ") == 0);
    }
  } else if (r == HttpParse::Incomplete) {
    // More data was wanted: no CRLFCRLF yet and within the limit.
    FUZZ_ASSERT(maxHeaderSize == 0 || len < maxHeaderSize);
    FUZZ_ASSERT(std::string(buf, len).find("\r\n\r\n") == std::string::npos);
  } else {
    FUZZ_ASSERT(!error.empty());
  }

  // Arriving byte by byte (cut at a few prefix lengths) never yields Done
  // earlier or a different head.
  for (size_t cut = 0; cut < len; cut += 1 + cut / 2) {
    HttpRequest part;
    size_t pc = 0;
    std::string pe;
    HttpParse pr = parseHttpRequest(buf, cut, maxHeaderSize, maxHeaders, part, pc, pe);
    if (r == HttpParse::Done && cut < consumed) FUZZ_ASSERT(pr != HttpParse::Done);
    if (pr == HttpParse::Done) FUZZ_ASSERT(r == HttpParse::Done && pc == consumed);
  }
  return 0;
}
