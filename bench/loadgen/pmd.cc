#include "pmd.h"

#include <cctype>
#include <cstdlib>

namespace loadgen {

const char* kPmdOffer = "permessage-deflate; client_no_context_takeover; client_max_window_bits";

namespace {

std::string trim(const std::string& s) {
  size_t a = 0, b = s.size();
  while (a < b && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  while (b > a && std::isspace(static_cast<unsigned char>(s[b - 1]))) --b;
  return s.substr(a, b - a);
}

}  // namespace

PmdParams parsePmdResponse(const std::string& value) {
  PmdParams p;
  // One accepted extension at most (we offered one); parameters split on ';'.
  size_t start = 0;
  bool first = true;
  while (start <= value.size()) {
    size_t semi = value.find(';', start);
    std::string part = trim(value.substr(start, semi == std::string::npos ? std::string::npos : semi - start));
    if (first) {
      if (part != "permessage-deflate") return p;
      p.accepted = true;
      first = false;
    } else {
      size_t eq = part.find('=');
      std::string key = trim(part.substr(0, eq));
      std::string val = eq == std::string::npos ? "" : trim(part.substr(eq + 1));
      if (!val.empty() && val.front() == '"') val = val.substr(1, val.size() - 2);
      if (key == "server_no_context_takeover") p.serverNoContextTakeover = true;
      if (key == "client_max_window_bits" && !val.empty()) p.clientMaxWindowBits = std::atoi(val.c_str());
    }
    if (semi == std::string::npos) break;
    start = semi + 1;
  }
  // zlib's raw deflate cannot use 8; 9 produces streams valid for an 8-bit window peer.
  if (p.clientMaxWindowBits < 9) p.clientMaxWindowBits = 9;
  return p;
}

std::vector<uint8_t> compressAlone(const uint8_t* data, size_t len, int windowBits) {
  z_stream zs{};
  std::vector<uint8_t> out;
  if (deflateInit2(&zs, 1, Z_DEFLATED, -windowBits, 8, Z_DEFAULT_STRATEGY) != Z_OK) return out;
  out.resize(deflateBound(&zs, len) + 16);
  zs.next_in = const_cast<uint8_t*>(data);
  zs.avail_in = static_cast<uInt>(len);
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_SYNC_FLUSH);
  size_t n = out.size() - zs.avail_out;
  deflateEnd(&zs);
  out.resize(n >= 4 ? n - 4 : n);  // RFC 7692 7.2.1: drop the empty stored block's tail
  return out;
}

Inflater::Inflater() { ok_ = inflateInit2(&zs_, -15) == Z_OK; }
Inflater::~Inflater() {
  if (ok_) inflateEnd(&zs_);
}

bool Inflater::inflateMessage(const uint8_t* in, size_t len, std::vector<uint8_t>& out, bool resetAfter) {
  if (!ok_) return false;
  static const uint8_t tail[4] = {0x00, 0x00, 0xff, 0xff};
  out.resize(len * 4 + 256);
  size_t have = 0;
  for (int part = 0; part < 2; ++part) {
    zs_.next_in = const_cast<uint8_t*>(part == 0 ? in : tail);
    zs_.avail_in = static_cast<uInt>(part == 0 ? len : 4);
    while (zs_.avail_in > 0) {
      if (have == out.size()) out.resize(out.size() * 2);
      zs_.next_out = out.data() + have;
      zs_.avail_out = static_cast<uInt>(out.size() - have);
      int rc = inflate(&zs_, Z_SYNC_FLUSH);
      have = out.size() - zs_.avail_out;
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
      if (rc == Z_BUF_ERROR && zs_.avail_out != 0) return false;  // no progress possible
    }
  }
  // Output may still be pending inside zlib when out filled exactly.
  for (;;) {
    if (have == out.size()) out.resize(out.size() * 2);
    zs_.next_out = out.data() + have;
    zs_.avail_out = static_cast<uInt>(out.size() - have);
    int rc = inflate(&zs_, Z_SYNC_FLUSH);
    have = out.size() - zs_.avail_out;
    if (rc == Z_BUF_ERROR || zs_.avail_out != 0) break;
    if (rc != Z_OK) return false;
  }
  out.resize(have);
  if (resetAfter) inflateReset(&zs_);
  return true;
}

}  // namespace loadgen
