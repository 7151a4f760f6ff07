// libFuzzer target: permessage-deflate negotiation on arbitrary
// Sec-WebSocket-Extensions values. Whatever the server side accepts must be
// accepted by a client that offered defaults, with the same parameters; and
// an offer we build, negotiated by a server with any options, must be
// understood identically by both sides.
//
// Input: bytes 0-1 pick server/client options, the rest is the header value.
#include <cstddef>
#include <cstdint>
#include <string>

#include "deflate.h"
#include "fuzz_util.h"

using namespace wsengine;

namespace {

DeflateOptions optionsFrom(uint8_t b) {
  DeflateOptions o;
  o.enabled = (b & 0x80) == 0 || (b & 0x40) != 0;  // mostly enabled
  o.serverNoContextTakeover = (b & 1) != 0;
  o.clientNoContextTakeover = (b & 2) != 0;
  o.serverMaxWindowBits = 8 + ((b >> 2) & 7);
  o.clientMaxWindowBits = 8 + (((b >> 5) ^ (b >> 2)) & 7);
  if (b & 0x10) o.clientMaxWindowBits = 15;
  return o;
}

bool inRange(const DeflateParams& p) {
  return p.serverMaxWindowBits >= 8 && p.serverMaxWindowBits <= 15 &&
         p.clientMaxWindowBits >= 8 && p.clientMaxWindowBits <= 15;
}

bool same(const DeflateParams& a, const DeflateParams& b) {
  return a.serverNoContextTakeover == b.serverNoContextTakeover &&
         a.clientNoContextTakeover == b.clientNoContextTakeover &&
         a.serverMaxWindowBits == b.serverMaxWindowBits &&
         a.clientMaxWindowBits == b.clientMaxWindowBits;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const DeflateOptions serverOpts = optionsFrom(data[0]);
  const DeflateOptions clientOpts = optionsFrom(data[1]);
  const std::string header(reinterpret_cast<const char*>(data + 2), size - 2);

  // 1. Server side on an arbitrary offer.
  DeflateParams sp;
  std::string response, error;
  if (negotiateDeflateServer(header, serverOpts, sp, response, error)) {
    FUZZ_ASSERT(serverOpts.enabled && error.empty() && inRange(sp));
    FUZZ_ASSERT(response.compare(0, 18, "permessage-deflate") == 0);
    FUZZ_ASSERT(response.find_first_of("\r\n") == std::string::npos);
    // Never a window larger than the server allows.
    FUZZ_ASSERT(sp.serverMaxWindowBits <= serverOpts.serverMaxWindowBits);
    FUZZ_ASSERT(sp.clientMaxWindowBits <= 15);
    DeflateOptions defaults;
    DeflateParams cp;
    std::string cerr;
    FUZZ_ASSERT(acceptDeflateResponse(response, defaults, cp, cerr));
    FUZZ_ASSERT(same(sp, cp));
  }

  // 2. Client side on an arbitrary response.
  DeflateParams cp;
  std::string cerr;
  if (acceptDeflateResponse(header, clientOpts, cp, cerr)) {
    FUZZ_ASSERT(clientOpts.enabled && inRange(cp));
    FUZZ_ASSERT(cp.clientMaxWindowBits <= clientOpts.clientMaxWindowBits);
    if (clientOpts.serverMaxWindowBits < 15)
      FUZZ_ASSERT(cp.serverMaxWindowBits <= clientOpts.serverMaxWindowBits);
    if (clientOpts.clientNoContextTakeover) FUZZ_ASSERT(cp.clientNoContextTakeover);
  } else {
    FUZZ_ASSERT(!cerr.empty());
  }

  // 3. Our own offer against a server with arbitrary options: both ends agree.
  const std::string offer = buildDeflateOffer(clientOpts);
  DeflateParams sp2, cp2;
  std::string resp2, err2;
  if (negotiateDeflateServer(offer, serverOpts, sp2, resp2, err2)) {
    FUZZ_ASSERT(clientOpts.enabled);
    FUZZ_ASSERT(acceptDeflateResponse(resp2, clientOpts, cp2, err2));
    FUZZ_ASSERT(same(sp2, cp2));
  } else {
    FUZZ_ASSERT(err2.empty());  // our offer is never malformed
  }
  return 0;
}
