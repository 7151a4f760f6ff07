// permessage-deflate (RFC 7692) for the load generator. The generator offers
// client_no_context_takeover, so each message it sends compresses alone and
// can be compressed once up front: compressing is then no load-generator cost,
// while the server still inflates every message and compresses every reply
// with its own context.
#pragma once

#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loadgen {

// The offer sent in Sec-WebSocket-Extensions.
extern const char* kPmdOffer;

struct PmdParams {
  bool accepted = false;
  bool serverNoContextTakeover = false;
  int clientMaxWindowBits = 15;
};

// Parses the server's Sec-WebSocket-Extensions response value.
PmdParams parsePmdResponse(const std::string& value);

// Raw deflate of one message with a fresh context, minus the 00 00 ff ff tail.
std::vector<uint8_t> compressAlone(const uint8_t* data, size_t len, int windowBits);

class Inflater {
 public:
  Inflater();
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  // Inflates one whole message into out (replaced). resetAfter: the server
  // does not keep its context, so neither may we. False on a zlib error.
  bool inflateMessage(const uint8_t* in, size_t len, std::vector<uint8_t>& out, bool resetAfter);

 private:
  z_stream zs_{};
  bool ok_ = false;
};

}  // namespace loadgen
