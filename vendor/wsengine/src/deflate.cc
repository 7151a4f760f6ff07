// permessage-deflate (RFC 7692): negotiation and zlib-based codec.
#include "deflate.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <vector>

namespace wsengine {

namespace {

const char kExtName[] = "permessage-deflate";
const uint8_t kTail[4] = {0x00, 0x00, 0xff, 0xff};

// ---------------------------------------------------------------------------
// Sec-WebSocket-Extensions parsing (RFC 6455 §9.1, RFC 7230 list syntax).

struct Param {
  std::string name;
  bool hasValue = false;
  std::string value;
};

struct Extension {
  std::string name;
  std::vector<Param> params;
};

bool isTchar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

bool isSpace(char c) { return c == ' ' || c == '\t'; }

bool equalsNoCase(const std::string& a, const char* b) {
  size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

class Parser {
 public:
  explicit Parser(const std::string& s) : s_(s) {}

  // Fills `out`; false with `error` on a syntax error.
  bool parse(std::vector<Extension>& out, std::string& error) {
    while (true) {
      skipSpace();
      if (atEnd()) return true;
      // Empty list elements ("a, , b") are ignored as RFC 7230 §7 requires.
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      Extension ext;
      if (!token(ext.name)) return fail(error, "expected an extension name");
      skipSpace();
      while (!atEnd() && peek() == ';') {
        ++pos_;
        skipSpace();
        Param p;
        if (!token(p.name)) return fail(error, "expected a parameter name in " + ext.name);
        skipSpace();
        if (!atEnd() && peek() == '=') {
          ++pos_;
          skipSpace();
          p.hasValue = true;
          if (!atEnd() && peek() == '"') {
            if (!quoted(p.value, error)) return false;
            // RFC 6455 §9.1: a quoted value must still be a token once unquoted.
            if (p.value.empty() ||
                !std::all_of(p.value.begin(), p.value.end(), isTchar)) {
              return fail(error, "quoted value of " + p.name + " is not a token");
            }
          } else if (!token(p.value)) {
            return fail(error, "expected a value for " + p.name);
          }
          skipSpace();
        }
        ext.params.push_back(std::move(p));
      }
      out.push_back(std::move(ext));
      if (atEnd()) return true;
      if (peek() != ',') return fail(error, "unexpected character in extension list");
      ++pos_;
    }
  }

 private:
  bool atEnd() const { return pos_ >= s_.size(); }
  char peek() const { return s_[pos_]; }
  void skipSpace() {
    while (!atEnd() && isSpace(peek())) ++pos_;
  }
  bool token(std::string& out) {
    size_t start = pos_;
    while (!atEnd() && isTchar(peek())) ++pos_;
    out.assign(s_, start, pos_ - start);
    return pos_ > start;
  }
  bool quoted(std::string& out, std::string& error) {
    ++pos_;  // opening quote
    while (!atEnd()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (atEnd()) break;
        c = s_[pos_++];
      }
      out.push_back(c);
    }
    return fail(error, "unterminated quoted string");
  }
  static bool fail(std::string& error, const std::string& what) {
    error = "invalid Sec-WebSocket-Extensions: " + what;
    return false;
  }

  const std::string& s_;
  size_t pos_ = 0;
};

// Window bits as RFC 7692 writes them: decimal, no leading zero, 8..15.
bool parseWindowBits(const std::string& v, int& bits) {
  if (v.empty() || v.size() > 2 || v[0] == '0') return false;
  int n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  if (n < 8 || n > 15) return false;
  bits = n;
  return true;
}

bool reject(std::string& why, const std::string& what) {
  why = what;
  return false;
}

int clampBits(int bits) { return std::min(15, std::max(8, bits)); }

// One permessage-deflate parameter set, validated for syntax (not policy).
struct Offer {
  bool serverNoContextTakeover = false;
  bool clientNoContextTakeover = false;
  bool hasServerBits = false;
  int serverBits = 15;
  bool hasClientBits = false;
  bool clientBitsValue = false;  // client_max_window_bits carried a value
  int clientBits = 15;
};

// False with a reason on unknown, duplicated or invalid parameters.
// `isResponse`: both window bits must then carry a value.
bool readParams(const Extension& ext, bool isResponse, Offer& o, std::string& why) {
  for (const Param& p : ext.params) {
    if (equalsNoCase(p.name, "server_no_context_takeover") ||
        equalsNoCase(p.name, "client_no_context_takeover")) {
      bool& flag = equalsNoCase(p.name, "server_no_context_takeover") ? o.serverNoContextTakeover
                                                                       : o.clientNoContextTakeover;
      if (flag) return reject(why, "duplicate " + p.name);
      if (p.hasValue) return reject(why, p.name + " takes no value");
      flag = true;
    } else if (equalsNoCase(p.name, "server_max_window_bits")) {
      if (o.hasServerBits) return reject(why, "duplicate " + p.name);
      if (!p.hasValue || !parseWindowBits(p.value, o.serverBits)) {
        return reject(why, "invalid server_max_window_bits");
      }
      o.hasServerBits = true;
    } else if (equalsNoCase(p.name, "client_max_window_bits")) {
      if (o.hasClientBits) return reject(why, "duplicate " + p.name);
      if (p.hasValue) {
        if (!parseWindowBits(p.value, o.clientBits)) {
          return reject(why, "invalid client_max_window_bits");
        }
        o.clientBitsValue = true;
      } else if (isResponse) {
        return reject(why, "client_max_window_bits without a value");
      }
      o.hasClientBits = true;
    } else {
      return reject(why, "unknown parameter " + p.name);
    }
  }
  return true;
}

}  // namespace

// ---------------------------------------------------------------------------
// Negotiation

std::string buildDeflateOffer(const DeflateOptions& opts) {
  if (!opts.enabled) return std::string();
  std::string s = kExtName;
  if (opts.serverNoContextTakeover) s += "; server_no_context_takeover";
  if (opts.clientNoContextTakeover) s += "; client_no_context_takeover";
  int serverBits = clampBits(opts.serverMaxWindowBits);
  if (serverBits < 15) s += "; server_max_window_bits=" + std::to_string(serverBits);
  // Always advertised: without it a server may not restrict our window at all
  // and would have to refuse deflate if it needs a smaller one (§7.1.2.2).
  s += "; client_max_window_bits";
  int clientBits = clampBits(opts.clientMaxWindowBits);
  if (clientBits < 15) s += "=" + std::to_string(clientBits);
  return s;
}

bool negotiateDeflateServer(const std::string& offers, const DeflateOptions& opts,
                            DeflateParams& out, std::string& response, std::string& error) {
  std::vector<Extension> exts;
  if (!Parser(offers).parse(exts, error)) return false;
  if (!opts.enabled) return false;
  const int serverLimit = clampBits(opts.serverMaxWindowBits);
  const int clientLimit = clampBits(opts.clientMaxWindowBits);
  for (const Extension& ext : exts) {
    if (!equalsNoCase(ext.name, kExtName)) continue;
    Offer o;
    std::string why;
    if (!readParams(ext, false, o, why)) continue;  // try the next offer
    // We may only shrink the client's window if it said it can (§7.1.2.2).
    if (!o.hasClientBits && clientLimit < 15) continue;

    DeflateParams p;
    p.serverNoContextTakeover = o.serverNoContextTakeover || opts.serverNoContextTakeover;
    p.clientNoContextTakeover = o.clientNoContextTakeover || opts.clientNoContextTakeover;
    p.serverMaxWindowBits = std::min(o.hasServerBits ? o.serverBits : 15, serverLimit);
    p.clientMaxWindowBits =
        o.hasClientBits ? std::min(o.clientBitsValue ? o.clientBits : 15, clientLimit) : 15;

    std::string r = kExtName;
    if (p.serverNoContextTakeover) r += "; server_no_context_takeover";
    if (p.clientNoContextTakeover) r += "; client_no_context_takeover";
    if (p.serverMaxWindowBits < 15 || o.hasServerBits) {
      r += "; server_max_window_bits=" + std::to_string(p.serverMaxWindowBits);
    }
    if (p.clientMaxWindowBits < 15) {
      r += "; client_max_window_bits=" + std::to_string(p.clientMaxWindowBits);
    }
    out = p;
    response = std::move(r);
    return true;
  }
  return false;
}

bool acceptDeflateResponse(const std::string& response, const DeflateOptions& offered,
                           DeflateParams& out, std::string& error) {
  std::vector<Extension> exts;
  if (!Parser(response).parse(exts, error)) return false;
  const Extension* found = nullptr;
  for (const Extension& ext : exts) {
    // We offer nothing else, so anything else is an answer to no offer (§9.1).
    if (!equalsNoCase(ext.name, kExtName)) {
      error = "server accepted an extension we did not offer: " + ext.name;
      return false;
    }
    if (found) {
      error = "server answered permessage-deflate more than once";
      return false;
    }
    found = &ext;
  }
  if (!found) {
    error = "server response has no permessage-deflate";
    return false;
  }
  if (!offered.enabled) {
    error = "server accepted permessage-deflate we did not offer";
    return false;
  }
  Offer o;
  std::string why;
  if (!readParams(*found, true, o, why)) {
    error = "invalid permessage-deflate response: " + why;
    return false;
  }
  const int askedServer = clampBits(offered.serverMaxWindowBits);
  if (askedServer < 15) {
    // Accepting our server_max_window_bits means echoing it, at most as large.
    if (!o.hasServerBits) {
      error = "server ignored the server_max_window_bits we asked for";
      return false;
    }
    if (o.serverBits > askedServer) {
      error = "server_max_window_bits larger than we asked";
      return false;
    }
  }
  // buildDeflateOffer always offers client_max_window_bits, so the server may
  // send it, but never above a value we gave.
  const int askedClient = clampBits(offered.clientMaxWindowBits);
  if (o.hasClientBits && o.clientBits > askedClient) {
    error = "client_max_window_bits larger than we offered";
    return false;
  }
  DeflateParams p;
  p.serverNoContextTakeover = o.serverNoContextTakeover;
  // Offering client_no_context_takeover is our promise, echoed or not.
  p.clientNoContextTakeover = o.clientNoContextTakeover || offered.clientNoContextTakeover;
  p.serverMaxWindowBits = o.hasServerBits ? o.serverBits : 15;
  p.clientMaxWindowBits = o.hasClientBits ? o.clientBits : askedClient;
  out = p;
  return true;
}

// ---------------------------------------------------------------------------
// Deflater

struct Deflater::Stream {
  z_stream zs{};
  bool noContextTakeover = false;
};

Deflater::~Deflater() {
  if (st_) {
    deflateEnd(&st_->zs);
    delete st_;
  }
}

bool Deflater::init(int windowBits, bool noContextTakeover, int level, int memLevel) {
  if (st_ || windowBits < 8 || windowBits > 15) return false;
  if (level < -1 || level > 9 || memLevel < 1 || memLevel > 9) return false;
  st_ = new Stream();
  int strategy = Z_DEFAULT_STRATEGY;
  if (windowBits == 8) {
    // zlib has no 256-byte raw deflate window (refused since 1.2.9, broken
    // before). Deflating with 9 would rely on an undocumented detail (zlib's
    // matcher stays 6 bytes short of the window) to fit 256 bytes; Z_RLE only
    // emits distance-1 matches, valid for a peer inflating with any window.
    windowBits = 9;
    strategy = Z_RLE;
  }
  if (deflateInit2(&st_->zs, level, Z_DEFLATED, -windowBits, memLevel, strategy) != Z_OK) {
    delete st_;
    st_ = nullptr;
    return false;
  }
  st_->noContextTakeover = noContextTakeover;
  return true;
}

bool Deflater::compress(const uint8_t* data, size_t len, std::string& out) {
  if (!st_) return false;
  z_stream* const zs = &st_->zs;
  if (len == 0) {
    // zlib refuses a second sync flush without input (Z_BUF_ERROR). The
    // stream sits on a byte boundary after each message, so an empty stored
    // block minus its 00 00 ff ff is the single byte 0x00 (§7.2.3.6).
    out.push_back('\0');
    return true;
  }
  const size_t base = out.size();
  // Enough for the whole message in one pass in practice: the bound plus the
  // sync flush marker and a few header bytes.
  const uLong boundIn = static_cast<uLong>(std::min<size_t>(len, ULONG_MAX / 2));
  size_t cap = static_cast<size_t>(deflateBound(zs, boundIn)) + 16;
  out.resize(base + cap);
  size_t produced = 0;
  size_t consumed = 0;
  zs->next_in = const_cast<Bytef*>(data);
  bool ok = true;
  while (true) {
    // avail_in/avail_out are 32-bit: feed big messages in slices.
    size_t inChunk = std::min<size_t>(len - consumed, UINT_MAX);
    zs->avail_in = static_cast<uInt>(inChunk);
    if (produced == cap) {
      cap += cap / 2 + 64;
      out.resize(base + cap);
    }
    size_t outChunk = std::min<size_t>(cap - produced, UINT_MAX);
    zs->next_out = reinterpret_cast<Bytef*>(&out[base + produced]);
    zs->avail_out = static_cast<uInt>(outChunk);
    int flush = (consumed + inChunk == len) ? Z_SYNC_FLUSH : Z_NO_FLUSH;
    int rc = deflate(zs, flush);
    consumed += inChunk - zs->avail_in;
    produced += outChunk - zs->avail_out;
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      ok = false;
      break;
    }
    // Done once the flush ran with room to spare: no output is pending.
    if (flush == Z_SYNC_FLUSH && zs->avail_out != 0) break;
  }
  if (ok && (produced < 4 || std::memcmp(&out[base + produced - 4], kTail, 4) != 0)) ok = false;
  if (!ok) {
    out.resize(base);
    // The stream state is unknown now: start the next message afresh.
    deflateReset(zs);
    return false;
  }
  out.resize(base + produced - 4);
  if (st_->noContextTakeover) deflateReset(zs);
  return true;
}

// ---------------------------------------------------------------------------
// Inflater

namespace {
// Output slice per inflate() call: bounds how far past the need we allocate.
constexpr size_t kInflateChunk = 64 * 1024;
// The first slice of a message, before anything says it will be large.
// std::string::resize zero-fills the slice, and a message string whose
// capacity reached the buffer pool's threshold is zero-filled to capacity
// again when it is recycled: slicing every message by 64 KiB cost a 1 KiB
// compressed echo ~128 KiB of memset (43 % of the server's CPU samples).
constexpr size_t kInflateFirstChunk = 4 * 1024;

// Slices grow with what the message has already produced (doubling) and
// with the compressed input in hand (text often inflates 4-10x).
size_t inflateSlice(size_t produced, size_t input) {
  size_t want = std::max({kInflateFirstChunk, produced, input * 4});
  return std::min(want, kInflateChunk);
}
}  // namespace

Inflater::~Inflater() {
  if (zs_) {
    inflateEnd(zs_);
    delete zs_;
  }
}

bool Inflater::init(int windowBits, bool noContextTakeover) {
  if (zs_ || windowBits < 8 || windowBits > 15) return false;
  // For 8 we inflate with 15: a larger window decodes anything a smaller one
  // does, and zlib before 1.2.9 silently compressed "8" with a 512-byte
  // window, so peers built on it send distances an 8-bit inflater rejects.
  if (windowBits == 8) windowBits = 15;
  zs_ = new z_stream();
  if (inflateInit2(zs_, -windowBits) != Z_OK) {
    delete zs_;
    zs_ = nullptr;
    return false;
  }
  noContextTakeover_ = noContextTakeover;
  return true;
}

Inflater::Result Inflater::run(const uint8_t* data, size_t len, std::string& out,
                               uint64_t maxSize) {
  if (!zs_ || failed_) return kError;
  if (ended_) {
    // Only the appended 00 00 ff ff may follow a final block (§7.2.3.3).
    if (len == 0) return kOk;
    failed_ = true;
    return kError;
  }
  size_t consumed = 0;
  zs_->next_in = const_cast<Bytef*>(data);
  while (true) {
    size_t inChunk = std::min<size_t>(len - consumed, UINT_MAX);
    zs_->avail_in = static_cast<uInt>(inChunk);
    uint64_t size = out.size();
    uint64_t room = size < maxSize ? maxSize - size : 0;
    uint8_t probe;
    size_t outChunk;
    if (room == 0) {
      // At the limit: inflate into one spare byte; any output means too big.
      zs_->next_out = &probe;
      outChunk = 1;
    } else {
      outChunk = static_cast<size_t>(std::min<uint64_t>(room, inflateSlice(size, inChunk)));
      size_t need = out.size() + outChunk;
      if (need > out.capacity()) {
        // Geometric growth, never past maxSize: a bomb cannot make us reserve
        // more than the limit.
        uint64_t grown = std::max<uint64_t>(need, uint64_t(out.capacity()) * 2);
        out.reserve(static_cast<size_t>(std::min<uint64_t>(grown, maxSize)));
      }
      out.resize(need);
      zs_->next_out = reinterpret_cast<Bytef*>(&out[size]);
    }
    zs_->avail_out = static_cast<uInt>(outChunk);
    int rc = inflate(zs_, Z_SYNC_FLUSH);
    size_t got = outChunk - zs_->avail_out;
    consumed += inChunk - zs_->avail_in;
    if (room == 0) {
      if (got > 0) {
        failed_ = true;
        return kTooBig;
      }
    } else {
      out.resize(size + got);
    }
    if (rc == Z_STREAM_END) {
      ended_ = true;
      if (consumed < len) {
        failed_ = true;
        return kError;
      }
      return kOk;
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      failed_ = true;
      return kError;
    }
    // Finished when all input is in and inflate had room left (nothing pending).
    if (consumed == len && zs_->avail_out != 0) return kOk;
    if (got == 0 && zs_->avail_in == inChunk && inChunk != 0) {
      // No progress with input and room available: zlib is stuck.
      failed_ = true;
      return kError;
    }
  }
}

Inflater::Result Inflater::feed(const uint8_t* data, size_t len, std::string& out,
                                uint64_t maxSize) {
  if (len == 0) return (!zs_ || failed_) ? kError : kOk;
  fedAny_ = true;
  return run(data, len, out, maxSize);
}

Inflater::Result Inflater::finish(std::string& out, uint64_t maxSize) {
  if (!zs_ || failed_) return kError;
  if (!fedAny_) {
    // An empty compressed payload is no DEFLATE data at all (the empty message
    // is 0x00); accept it as an empty message without touching the stream,
    // which 00 00 ff ff alone would leave mid-header.
    return kOk;
  }
  fedAny_ = false;
  Result r = run(kTail, ended_ ? 0 : sizeof kTail, out, maxSize);
  if (r != kOk) return r;
  if (ended_) {
    // The peer closed its deflate stream with a final block: the next message
    // starts a new stream; keep the window unless context is not taken over.
    ended_ = false;
    if (!resetKeepingWindow()) {
      failed_ = true;
      return kError;
    }
    return kOk;
  }
  // After the appended empty stored block inflate must sit at a block
  // boundary (bit 7 of data_type); otherwise the message was truncated.
  if ((zs_->data_type & 128) == 0) {
    failed_ = true;
    return kError;
  }
  if (noContextTakeover_ && inflateReset(zs_) != Z_OK) {
    failed_ = true;
    return kError;
  }
  return kOk;
}

bool Inflater::resetKeepingWindow() {
  if (noContextTakeover_) return inflateReset(zs_) == Z_OK;
  std::string dict(32768, '\0');
  uInt dictLen = 0;
  if (inflateGetDictionary(zs_, reinterpret_cast<Bytef*>(&dict[0]), &dictLen) != Z_OK) {
    return false;
  }
  if (inflateReset(zs_) != Z_OK) return false;
  return dictLen == 0 ||
         inflateSetDictionary(zs_, reinterpret_cast<const Bytef*>(dict.data()), dictLen) == Z_OK;
}

}  // namespace wsengine
