// permessage-deflate (RFC 7692): extension negotiation and the per-connection
// compressor / decompressor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "wsengine/wsengine.h"

struct z_stream_s;

namespace wsengine {

// What both sides agreed on for one connection.
struct DeflateParams {
  bool serverNoContextTakeover = false;
  bool clientNoContextTakeover = false;
  int serverMaxWindowBits = 15;
  int clientMaxWindowBits = 15;
};

// Client: the Sec-WebSocket-Extensions value offering what `opts` asks for.
std::string buildDeflateOffer(const DeflateOptions& opts);

// Server: reads the client's Sec-WebSocket-Extensions value (maybe several
// offers, comma separated, possibly other extensions) and picks the first
// permessage-deflate offer it can accept under `opts`. Returns true with the
// agreed params and the response header value; false when no offer is
// acceptable (or there is none): answer without the extension. A malformed
// header sets `error` (answer 400).
bool negotiateDeflateServer(const std::string& offers, const DeflateOptions& opts,
                            DeflateParams& out, std::string& response, std::string& error);

// Client: checks the server's response against what we offered. False with a
// readable error when the server answered something we did not offer or an
// invalid parameter (the client must fail the connection, §5).
bool acceptDeflateResponse(const std::string& response, const DeflateOptions& offered,
                           DeflateParams& out, std::string& error);

// Compresses whole messages (raw deflate, the trailing 00 00 ff ff removed).
class Deflater {
 public:
  Deflater() = default;
  ~Deflater();
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  // windowBits 8..15 (8 is honoured without zlib's 8-bit raw mode: see .cc).
  bool init(int windowBits, bool noContextTakeover, int level, int memLevel);
  // Appends the compressed message to out. False on a zlib failure.
  bool compress(const uint8_t* data, size_t len, std::string& out);

 private:
  // zlib's stream and the context takeover flag in one allocation, made by
  // init(): a Deflater is one pointer in every connection's Outbox, and
  // most connections never compress (the flag beside the pointer padded the
  // Outbox to a size that cost each connection 16 more bytes of heap).
  struct Stream;
  Stream* st_ = nullptr;
};

// Decompresses messages, streaming, frame by frame.
class Inflater {
 public:
  enum Result { kOk, kError, kTooBig };
  Inflater() = default;
  ~Inflater();
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;
  bool init(int windowBits, bool noContextTakeover);
  // Feeds compressed bytes of the current message; appends output to out.
  // kTooBig as soon as out would grow beyond maxSize (nothing beyond is
  // allocated: a decompression bomb stops at the limit).
  Result feed(const uint8_t* data, size_t len, std::string& out, uint64_t maxSize);
  // Ends the message (feeds 00 00 ff ff); resets the window when no context
  // takeover was agreed. After kError or kTooBig the Inflater stays failed.
  Result finish(std::string& out, uint64_t maxSize);

 private:
  Result run(const uint8_t* data, size_t len, std::string& out, uint64_t maxSize);
  bool resetKeepingWindow();

  z_stream_s* zs_ = nullptr;
  bool noContextTakeover_ = false;
  bool failed_ = false;
  bool ended_ = false;   // the peer's stream hit a final block in this message
  bool fedAny_ = false;  // this message had compressed bytes
};

}  // namespace wsengine
