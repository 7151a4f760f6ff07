// permessage-deflate: offer building, server negotiation, response checks,
// and the zlib codec (round trips, window sizes, context takeover, bombs,
// corrupted input).
#include <zlib.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "deflate.h"

using namespace wsengine;

namespace {

// ---------------------------------------------------------------------------
// Negotiation helpers

struct Negotiated {
  bool ok = false;
  DeflateParams params;
  std::string response;
  std::string error;
};

Negotiated negotiate(const std::string& offers, const DeflateOptions& opts = DeflateOptions()) {
  Negotiated n;
  n.ok = negotiateDeflateServer(offers, opts, n.params, n.response, n.error);
  return n;
}

struct Accepted {
  bool ok = false;
  DeflateParams params;
  std::string error;
};

Accepted accept(const std::string& response, const DeflateOptions& offered = DeflateOptions()) {
  Accepted a;
  a.ok = acceptDeflateResponse(response, offered, a.params, a.error);
  return a;
}

void testOffer() {
  DeflateOptions o;
  CHECK_EQ(buildDeflateOffer(o), std::string("permessage-deflate; client_max_window_bits"));
  o.clientNoContextTakeover = true;
  CHECK_EQ(buildDeflateOffer(o),
           std::string("permessage-deflate; client_no_context_takeover; client_max_window_bits"));
  o = DeflateOptions();
  o.serverNoContextTakeover = true;
  CHECK_EQ(buildDeflateOffer(o),
           std::string("permessage-deflate; server_no_context_takeover; client_max_window_bits"));
  o = DeflateOptions();
  o.serverMaxWindowBits = 10;
  CHECK_EQ(buildDeflateOffer(o),
           std::string("permessage-deflate; server_max_window_bits=10; client_max_window_bits"));
  o = DeflateOptions();
  o.clientMaxWindowBits = 8;
  CHECK_EQ(buildDeflateOffer(o), std::string("permessage-deflate; client_max_window_bits=8"));
  o = DeflateOptions();
  o.clientNoContextTakeover = o.serverNoContextTakeover = true;
  o.serverMaxWindowBits = 9;
  o.clientMaxWindowBits = 12;
  CHECK_EQ(buildDeflateOffer(o),
           std::string("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                       " server_max_window_bits=9; client_max_window_bits=12"));
  o.enabled = false;
  CHECK_EQ(buildDeflateOffer(o), std::string());
}

// Every combination of the four offer params against several server policies;
// the expectation is spelled out from RFC 7692 §7.1 independently of the code.
void testNegotiateCombinations() {
  const int kAbsent = -1, kNoValue = 0;
  const std::vector<int> serverBitsChoices = {kAbsent, 8, 11, 15};
  const std::vector<int> clientBitsChoices = {kAbsent, kNoValue, 8, 11, 15};
  std::vector<DeflateOptions> policies(5);
  policies[1].serverMaxWindowBits = 10;
  policies[2].clientMaxWindowBits = 10;
  policies[3].serverNoContextTakeover = policies[3].clientNoContextTakeover = true;
  policies[4].serverMaxWindowBits = 9;
  policies[4].clientMaxWindowBits = 9;
  policies[4].clientNoContextTakeover = true;
  int cases = 0;
  for (const DeflateOptions& pol : policies)
    for (int snct = 0; snct < 2; ++snct)
      for (int cnct = 0; cnct < 2; ++cnct)
        for (int sb : serverBitsChoices)
          for (int cb : clientBitsChoices) {
            std::string offer = "permessage-deflate";
            if (snct) offer += "; server_no_context_takeover";
            if (cnct) offer += "; client_no_context_takeover";
            if (sb != kAbsent) offer += "; server_max_window_bits=" + std::to_string(sb);
            if (cb == kNoValue) offer += "; client_max_window_bits";
            if (cb > 0) offer += "; client_max_window_bits=" + std::to_string(cb);
            Negotiated n = negotiate(offer, pol);
            CHECK(n.error.empty());
            bool acceptable = !(cb == kAbsent && pol.clientMaxWindowBits < 15);
            CHECK_EQ(n.ok, acceptable);
            ++cases;
            if (!acceptable || !n.ok) continue;
            bool eSnct = snct || pol.serverNoContextTakeover;
            bool eCnct = cnct || pol.clientNoContextTakeover;
            int eSb = std::min(sb == kAbsent ? 15 : sb, pol.serverMaxWindowBits);
            int eCb = cb == kAbsent ? 15 : std::min(cb == kNoValue ? 15 : cb,
                                                    pol.clientMaxWindowBits);
            CHECK_EQ(n.params.serverNoContextTakeover, eSnct);
            CHECK_EQ(n.params.clientNoContextTakeover, eCnct);
            CHECK_EQ(n.params.serverMaxWindowBits, eSb);
            CHECK_EQ(n.params.clientMaxWindowBits, eCb);
            std::string eResp = "permessage-deflate";
            if (eSnct) eResp += "; server_no_context_takeover";
            if (eCnct) eResp += "; client_no_context_takeover";
            if (eSb < 15 || sb != kAbsent) eResp += "; server_max_window_bits=" + std::to_string(eSb);
            if (eCb < 15) eResp += "; client_max_window_bits=" + std::to_string(eCb);
            CHECK_EQ(n.response, eResp);

            // The client that made this offer agrees on the same parameters.
            if (cb == kAbsent) continue;  // our own offers always carry it
            DeflateOptions client;
            client.serverNoContextTakeover = snct;
            client.clientNoContextTakeover = cnct;
            client.serverMaxWindowBits = sb == kAbsent ? 15 : sb;
            client.clientMaxWindowBits = cb > 0 ? cb : 15;
            Accepted a = accept(n.response, client);
            CHECK(a.ok);
            CHECK_EQ(a.error, std::string());
            CHECK_EQ(a.params.serverNoContextTakeover, eSnct);
            CHECK_EQ(a.params.clientNoContextTakeover, eCnct);
            CHECK_EQ(a.params.serverMaxWindowBits, eSb);
            CHECK_EQ(a.params.clientMaxWindowBits, eCb);
          }
  CHECK_EQ(cases, 5 * 2 * 2 * 4 * 5);
}

void testNegotiateOffers() {
  // Our own offer, end to end.
  DeflateOptions client;
  client.serverMaxWindowBits = 12;
  client.clientNoContextTakeover = true;
  Negotiated n = negotiate(buildDeflateOffer(client));
  CHECK(n.ok);
  CHECK_EQ(n.response, std::string("permessage-deflate; client_no_context_takeover;"
                                   " server_max_window_bits=12"));

  // First offer unacceptable (unknown param), second taken.
  n = negotiate("permessage-deflate; foo=1, permessage-deflate; server_max_window_bits=10");
  CHECK(n.ok);
  CHECK_EQ(n.params.serverMaxWindowBits, 10);
  CHECK_EQ(n.response, std::string("permessage-deflate; server_max_window_bits=10"));
  // First has a duplicate, second a value out of range, third fine.
  n = negotiate(
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover,"
      "permessage-deflate; client_max_window_bits=16,"
      "permessage-deflate; client_max_window_bits=9");
  CHECK(n.ok);
  CHECK_EQ(n.params.clientMaxWindowBits, 9);
  CHECK_EQ(n.params.serverNoContextTakeover, false);
  // Server needs a smaller client window: the offer without
  // client_max_window_bits is skipped for the one that has it.
  DeflateOptions small;
  small.clientMaxWindowBits = 11;
  n = negotiate("permessage-deflate, permessage-deflate; client_max_window_bits", small);
  CHECK(n.ok);
  CHECK_EQ(n.params.clientMaxWindowBits, 11);
  CHECK_EQ(n.response, std::string("permessage-deflate; client_max_window_bits=11"));
  n = negotiate("permessage-deflate", small);
  CHECK(!n.ok);
  CHECK(n.error.empty());
  // Other extensions are skipped, names compare case-insensitively.
  n = negotiate("x-webkit-deflate-frame; no_context_takeover, Permessage-Deflate");
  CHECK(n.ok);
  CHECK_EQ(n.response, std::string("permessage-deflate"));
  n = negotiate("x-webkit-deflate-frame, foo; bar=\"baz\"");
  CHECK(!n.ok);
  CHECK(n.error.empty());
  // Whitespace and quoted values are tolerated.
  n = negotiate("  permessage-deflate ;\tserver_max_window_bits = \"10\" ;"
                " client_max_window_bits=\"9\"  ");
  CHECK(n.ok);
  CHECK_EQ(n.params.serverMaxWindowBits, 10);
  CHECK_EQ(n.params.clientMaxWindowBits, 9);
  // Empty list elements are ignored (RFC 7230 §7), an empty header is no offer.
  n = negotiate(" , permessage-deflate ,,");
  CHECK(n.ok);
  n = negotiate("");
  CHECK(!n.ok);
  CHECK(n.error.empty());
  // Disabled: never accepted.
  DeflateOptions off;
  off.enabled = false;
  n = negotiate("permessage-deflate", off);
  CHECK(!n.ok);
  CHECK(n.error.empty());
}

void testNegotiateRejectedParams() {
  const char* bad[] = {
      "permessage-deflate; foo",
      "permessage-deflate; foo=1",
      "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
      "permessage-deflate; client_no_context_takeover; client_no_context_takeover",
      "permessage-deflate; server_max_window_bits=10; server_max_window_bits=10",
      "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
      "permessage-deflate; server_no_context_takeover=1",
      "permessage-deflate; client_no_context_takeover=\"x\"",
      "permessage-deflate; server_max_window_bits",
      "permessage-deflate; server_max_window_bits=7",
      "permessage-deflate; server_max_window_bits=16",
      "permessage-deflate; server_max_window_bits=0",
      "permessage-deflate; server_max_window_bits=08",
      "permessage-deflate; server_max_window_bits=abc",
      "permessage-deflate; server_max_window_bits=100",
      "permessage-deflate; client_max_window_bits=7",
      "permessage-deflate; client_max_window_bits=16",
      "permessage-deflate; client_max_window_bits=-9",
      "permessage-deflate; client_max_window_bits=\"x\"",
  };
  for (const char* h : bad) {
    Negotiated n = negotiate(h);
    if (n.ok) std::fprintf(stderr, "accepted: %s\n", h);
    CHECK(!n.ok);
    CHECK(n.error.empty());
    // The same offer followed by a good one: the good one wins.
    n = negotiate(std::string(h) + ", permessage-deflate; server_max_window_bits=13");
    CHECK(n.ok);
    CHECK_EQ(n.params.serverMaxWindowBits, 13);
  }
}

void testMalformed() {
  const char* broken[] = {
      "permessage-deflate; server_max_window_bits=\"10",
      "permessage-deflate; a=\"b\\",
      "; server_max_window_bits=10",
      "permessage-deflate, ; foo",
      "permessage-deflate;",
      "permessage-deflate; ; server_no_context_takeover",
      "permessage-deflate; =10",
      "permessage-deflate; server_max_window_bits=",
      "permessage-deflate server_max_window_bits",
      "permessage-deflate; x=\"a b\"",
      "permessage-deflate; x=\"\"",
      "permessage-deflate; x=1=2",
      "perm@ssage-deflate",
      "permessage-deflate; server_max_window_bits=10 11",
  };
  for (const char* h : broken) {
    Negotiated n = negotiate(h);
    if (n.ok || n.error.empty()) std::fprintf(stderr, "not rejected: %s\n", h);
    CHECK(!n.ok);
    CHECK(!n.error.empty());
    Accepted a = accept(h);
    CHECK(!a.ok);
    CHECK(!a.error.empty());
  }
}

void testAcceptResponse() {
  DeflateOptions def;
  Accepted a = accept("permessage-deflate", def);
  CHECK(a.ok);
  CHECK_EQ(a.params.serverMaxWindowBits, 15);
  CHECK_EQ(a.params.clientMaxWindowBits, 15);
  CHECK(!a.params.serverNoContextTakeover && !a.params.clientNoContextTakeover);

  a = accept("permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
             " server_max_window_bits=9; client_max_window_bits=10", def);
  CHECK(a.ok);
  CHECK(a.params.serverNoContextTakeover && a.params.clientNoContextTakeover);
  CHECK_EQ(a.params.serverMaxWindowBits, 9);
  CHECK_EQ(a.params.clientMaxWindowBits, 10);

  // Our client_no_context_takeover offer binds us even if not echoed.
  DeflateOptions cnct;
  cnct.clientNoContextTakeover = true;
  a = accept("permessage-deflate", cnct);
  CHECK(a.ok);
  CHECK(a.params.clientNoContextTakeover);
  // Our client_max_window_bits value binds us even if not echoed.
  DeflateOptions cb;
  cb.clientMaxWindowBits = 11;
  a = accept("permessage-deflate", cb);
  CHECK(a.ok);
  CHECK_EQ(a.params.clientMaxWindowBits, 11);
  a = accept("permessage-deflate; client_max_window_bits=9", cb);
  CHECK(a.ok);
  CHECK_EQ(a.params.clientMaxWindowBits, 9);
  a = accept("permessage-deflate; client_max_window_bits=12", cb);
  CHECK(!a.ok);
  CHECK(!a.error.empty());

  DeflateOptions sb;
  sb.serverMaxWindowBits = 10;
  a = accept("permessage-deflate; server_max_window_bits=10", sb);
  CHECK(a.ok);
  CHECK_EQ(a.params.serverMaxWindowBits, 10);
  a = accept("permessage-deflate; server_max_window_bits=8", sb);
  CHECK(a.ok);
  CHECK_EQ(a.params.serverMaxWindowBits, 8);
  const std::pair<const char*, DeflateOptions> bad[] = {
      {"permessage-deflate; server_max_window_bits=11", sb},  // larger than asked
      {"permessage-deflate", sb},                             // ignored what we asked
      {"", def},
      {"x-webkit-deflate-frame", def},
      {"permessage-deflate, permessage-deflate", def},
      {"permessage-deflate, foo", def},
      {"permessage-deflate; foo", def},
      {"permessage-deflate; client_max_window_bits", def},  // must carry a value
      {"permessage-deflate; server_max_window_bits", def},
      {"permessage-deflate; server_max_window_bits=7", def},
      {"permessage-deflate; client_max_window_bits=16", def},
      {"permessage-deflate; server_no_context_takeover; server_no_context_takeover", def},
      {"permessage-deflate; client_max_window_bits=9; client_max_window_bits=9", def},
      {"permessage-deflate; client_no_context_takeover=1", def},
  };
  for (const auto& b : bad) {
    a = accept(b.first, b.second);
    if (a.ok) std::fprintf(stderr, "accepted response: %s\n", b.first);
    CHECK(!a.ok);
    CHECK(!a.error.empty());
  }
  DeflateOptions off;
  off.enabled = false;
  a = accept("permessage-deflate", off);
  CHECK(!a.ok);
  CHECK(!a.error.empty());
}

// ---------------------------------------------------------------------------
// Codec helpers

// A plain zlib raw inflater with exactly the given window: checks that our
// output respects the negotiated window size.
class RawInflate {
 public:
  RawInflate(int bits, bool reset) : reset_(reset) {
    std::memset(&zs_, 0, sizeof zs_);
    ok_ = inflateInit2(&zs_, -bits) == Z_OK;
  }
  ~RawInflate() { inflateEnd(&zs_); }
  bool ok() const { return ok_; }
  // One message, the tail appended.
  bool message(std::string in, std::string& out) {
    in.append("\x00\x00\xff\xff", 4);
    out.clear();
    zs_.next_in = reinterpret_cast<Bytef*>(&in[0]);
    zs_.avail_in = static_cast<uInt>(in.size());
    char buf[4096];
    do {
      zs_.next_out = reinterpret_cast<Bytef*>(buf);
      zs_.avail_out = sizeof buf;
      int rc = inflate(&zs_, Z_SYNC_FLUSH);
      if (rc != Z_OK && rc != Z_BUF_ERROR) return false;
      out.append(buf, sizeof buf - zs_.avail_out);
    } while (zs_.avail_in > 0 || zs_.avail_out == 0);
    if (reset_) inflateReset(&zs_);
    return true;
  }

 private:
  z_stream zs_;
  bool ok_ = false;
  bool reset_;
};

std::string makeMessage(std::mt19937& rng, size_t n, int kind) {
  std::string s(n, '\0');
  static const char* words[] = {"alpha ", "beta ", "gamma ", "delta ", "{\"id\":", "42, ",
                                "websocket ", "frame "};
  if (kind == 0) {  // text-like, compressible
    s.clear();
    while (s.size() < n) s += words[rng() % 8];
    s.resize(n);
  } else if (kind == 1) {  // incompressible
    for (char& c : s) c = static_cast<char>(rng());
  } else if (kind == 2) {  // long runs
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + (i / 300) % 3);
  } else {  // a random block repeated: matches only at its length's distance
    size_t period = (rng() % 2) ? 600 : 5000;
    for (size_t i = 0; i < n; ++i) s[i] = i < period ? static_cast<char>(rng()) : s[i - period];
  }
  return s;
}

const uint64_t kNoLimit = 1ull << 40;

// Inflates `in` fed in pieces of random size, as frames would arrive.
Inflater::Result inflateInPieces(Inflater& inf, const std::string& in, std::string& out,
                                 std::mt19937& rng, uint64_t maxSize = kNoLimit) {
  size_t pos = 0;
  while (pos < in.size()) {
    size_t piece = std::min<size_t>(in.size() - pos, 1 + rng() % 5000);
    Inflater::Result r = inf.feed(reinterpret_cast<const uint8_t*>(in.data()) + pos, piece, out,
                                  maxSize);
    if (r != Inflater::kOk) return r;
    pos += piece;
  }
  return inf.finish(out, maxSize);
}

bool compressStr(Deflater& d, const std::string& in, std::string& out) {
  out.clear();
  return d.compress(reinterpret_cast<const uint8_t*>(in.data()), in.size(), out);
}

void testRoundTrips() {
  std::mt19937 rng(1234);
  for (int bits = 8; bits <= 15; ++bits) {
    for (int nct = 0; nct < 2; ++nct) {
      Deflater d;
      Inflater inf;
      CHECK(d.init(bits, nct, 6, 8));
      CHECK(inf.init(bits, nct));
      RawInflate raw(bits, nct);
      CHECK(raw.ok());
      bool allOk = true, rawOk = true;
      for (int i = 0; i < 40; ++i) {
        size_t n = i == 0 ? 0 : (i % 7 == 0 ? 70000 + rng() % 60000 : rng() % 3000);
        std::string msg = makeMessage(rng, n, i % 4);
        std::string z, back, viaRaw;
        if (!compressStr(d, msg, z)) allOk = false;
        if (inflateInPieces(inf, z, back, rng) != Inflater::kOk || back != msg) allOk = false;
        if (!raw.message(z, viaRaw) || viaRaw != msg) rawOk = false;
      }
      if (!allOk || !rawOk) std::fprintf(stderr, "bits %d nct %d\n", bits, nct);
      CHECK(allOk);
      CHECK(rawOk);
    }
  }
  // An empty message compresses to the single byte 0x00 (RFC 7692 §7.2.3.6),
  // and an empty compressed payload inflates to nothing.
  for (int nct = 0; nct < 2; ++nct) {
    Deflater e;
    CHECK(e.init(15, nct, 1, 8));
    std::string z;
    CHECK(compressStr(e, "some context first", z));
    CHECK(compressStr(e, "", z));
    CHECK_EQ(z, std::string(1, '\0'));
    // Tolerated: a zero-length compressed payload, between real messages.
    Inflater ei;
    CHECK(ei.init(15, nct));
    std::string z1, back = "keep";
    CHECK(compressStr(e, "after the empty one", z1));
    CHECK_EQ(ei.finish(back, kNoLimit), Inflater::kOk);
    CHECK_EQ(back, std::string("keep"));
    back.clear();
    CHECK_EQ(ei.feed(reinterpret_cast<const uint8_t*>(z.data()), z.size(), back, kNoLimit),
             Inflater::kOk);
    CHECK_EQ(ei.finish(back, kNoLimit), Inflater::kOk);
    CHECK_EQ(back, std::string());
    CHECK_EQ(ei.finish(back, kNoLimit), Inflater::kOk);
    CHECK_EQ(ei.feed(reinterpret_cast<const uint8_t*>(z1.data()), z1.size(), back, kNoLimit),
             Inflater::kOk);
    CHECK_EQ(ei.finish(back, kNoLimit), Inflater::kOk);
    CHECK_EQ(back, std::string("after the empty one"));
  }
  // Appending to a non-empty output keeps what was there.
  Deflater d;
  CHECK(d.init(15, false, 1, 8));
  std::string out = "xy";
  const uint8_t msg[] = "hello hello hello";
  CHECK(d.compress(msg, sizeof msg - 1, out));
  CHECK(out.size() > 2 && out.compare(0, 2, "xy") == 0);
  // Invalid settings are refused.
  Deflater bad;
  CHECK(!bad.init(7, false, 1, 8));
  CHECK(!bad.init(16, false, 1, 8));
  CHECK(!bad.init(15, false, 10, 8));
  CHECK(!bad.init(15, false, 1, 0));
  Inflater badInf;
  CHECK(!badInf.init(7, false));
  CHECK(!badInf.init(16, false));
  Inflater uninit;
  std::string o;
  CHECK_EQ(uninit.feed(msg, 3, o, kNoLimit), Inflater::kError);
}

void testContextTakeover() {
  std::mt19937 rng(99);
  std::string msg = makeMessage(rng, 4000, 1);  // random: only history helps
  for (int bits = 13; bits <= 15; ++bits) {
    Deflater keep, fresh;
    CHECK(keep.init(bits, false, 6, 8));
    CHECK(fresh.init(bits, true, 6, 8));
    std::string k1, k2, f1, f2;
    CHECK(compressStr(keep, msg, k1));
    CHECK(compressStr(keep, msg, k2));
    CHECK(compressStr(fresh, msg, f1));
    CHECK(compressStr(fresh, msg, f2));
    CHECK(k2.size() * 10 < k1.size());  // a back reference to the first copy
    CHECK_EQ(f1, f2);                    // no history: identical output
    CHECK_EQ(k1, f1);
    // The peer's inflater must keep its window too.
    Inflater inf;
    CHECK(inf.init(bits, false));
    std::string b1, b2;
    CHECK_EQ(inflateInPieces(inf, k1, b1, rng), Inflater::kOk);
    CHECK_EQ(inflateInPieces(inf, k2, b2, rng), Inflater::kOk);
    CHECK(b1 == msg && b2 == msg);
    // A no-context inflater cannot resolve the second message.
    Inflater noCtx;
    CHECK(noCtx.init(bits, true));
    b1.clear();
    b2.clear();
    CHECK_EQ(inflateInPieces(noCtx, k1, b1, rng), Inflater::kOk);
    CHECK_EQ(inflateInPieces(noCtx, k2, b2, rng), Inflater::kError);
  }
}

// Compresses `total` zero bytes as one message without holding them.
std::string zeroBomb(size_t total) {
  z_stream zs;
  std::memset(&zs, 0, sizeof zs);
  deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY);
  std::vector<uint8_t> zeros(1 << 20, 0);
  std::string out;
  std::vector<uint8_t> buf(1 << 16);
  for (size_t done = 0; done < total; done += zeros.size()) {
    zs.next_in = zeros.data();
    zs.avail_in = static_cast<uInt>(std::min(zeros.size(), total - done));
    bool last = done + zeros.size() >= total;
    do {
      zs.next_out = buf.data();
      zs.avail_out = static_cast<uInt>(buf.size());
      deflate(&zs, last ? Z_SYNC_FLUSH : Z_NO_FLUSH);
      out.append(reinterpret_cast<char*>(buf.data()), buf.size() - zs.avail_out);
    } while (zs.avail_out == 0);
  }
  deflateEnd(&zs);
  out.resize(out.size() - 4);  // the sync marker, as a sender strips it
  return out;
}

void testBomb() {
  const uint64_t kMax = 1 << 20;
  std::string bomb = zeroBomb(100u << 20);
  CHECK(bomb.size() < 200 * 1024);
  Inflater inf;
  CHECK(inf.init(15, false));
  std::string out;
  Inflater::Result r = Inflater::kOk;
  size_t pos = 0, maxCap = 0;
  while (pos < bomb.size() && r == Inflater::kOk) {
    size_t piece = std::min<size_t>(bomb.size() - pos, 1024);
    r = inf.feed(reinterpret_cast<const uint8_t*>(bomb.data()) + pos, piece, out, kMax);
    maxCap = std::max(maxCap, out.capacity());
    pos += piece;
  }
  if (r == Inflater::kOk) r = inf.finish(out, kMax);
  CHECK_EQ(r, Inflater::kTooBig);
  CHECK(pos < bomb.size() / 10);  // stopped early, not after inflating it all
  CHECK_EQ(out.size(), size_t(kMax));  // filled up to the limit, not beyond
  CHECK(maxCap <= kMax + 64 * 1024);
  CHECK(out.find_first_not_of('\0') == std::string::npos);
  // The inflater stays failed.
  CHECK_EQ(inf.feed(reinterpret_cast<const uint8_t*>(bomb.data()), 10, out, kMax),
           Inflater::kError);

  // Exactly at the limit is fine, one byte more is not, across frames.
  std::mt19937 rng(5);
  std::string msg = makeMessage(rng, 300000, 0);
  Deflater d;
  CHECK(d.init(15, true, 1, 8));
  std::string z;
  CHECK(compressStr(d, msg, z));
  Inflater a, b;
  CHECK(a.init(15, true));
  CHECK(b.init(15, true));
  std::string outA, outB;
  CHECK_EQ(inflateInPieces(a, z, outA, rng, msg.size()), Inflater::kOk);
  CHECK(outA == msg);
  CHECK_EQ(inflateInPieces(b, z, outB, rng, msg.size() - 1), Inflater::kTooBig);
  CHECK(outB.size() <= msg.size() - 1);
}

void testCorrupted() {
  std::mt19937 rng(7);
  const uint8_t badType[] = {0xff, 0xff, 0xff, 0x00};  // block type 3 is reserved
  Inflater inf;
  CHECK(inf.init(15, false));
  std::string out;
  CHECK_EQ(inf.feed(badType, sizeof badType, out, kNoLimit), Inflater::kError);
  CHECK_EQ(inf.finish(out, kNoLimit), Inflater::kError);  // unusable afterwards
  const uint8_t ok[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};  // "Hello" (RFC 7692 §7.2.3.1)
  CHECK_EQ(inf.feed(ok, sizeof ok, out, kNoLimit), Inflater::kError);

  // The RFC example itself inflates.
  Inflater good;
  CHECK(good.init(15, false));
  out.clear();
  CHECK_EQ(good.feed(ok, sizeof ok, out, kNoLimit), Inflater::kOk);
  CHECK_EQ(good.finish(out, kNoLimit), Inflater::kOk);
  CHECK_EQ(out, std::string("Hello"));

  // A distance beyond anything produced so far.
  Deflater d;
  CHECK(d.init(15, false, 6, 8));
  std::string msg = makeMessage(rng, 5000, 0), z1, z2;
  CHECK(compressStr(d, msg, z1));
  CHECK(compressStr(d, msg, z2));  // refers back into the first message
  Inflater fresh;
  CHECK(fresh.init(15, false));
  out.clear();
  CHECK_EQ(inflateInPieces(fresh, z2, out, rng), Inflater::kError);

  // A truncated message does not end on a block boundary.
  std::string cut = z1.substr(0, z1.size() / 2);
  Inflater t;
  CHECK(t.init(15, false));
  out.clear();
  CHECK_EQ(inflateInPieces(t, cut, out, rng), Inflater::kError);

  // Random garbage: always an error or a clean result, never a crash; most
  // inputs are errors.
  int errors = 0;
  for (int i = 0; i < 200; ++i) {
    std::string junk = makeMessage(rng, 1 + rng() % 200, 1);
    Inflater j;
    CHECK(j.init(15, false));
    out.clear();
    if (inflateInPieces(j, junk, out, rng, 1 << 20) == Inflater::kError) ++errors;
  }
  CHECK(errors > 150);
}

// A peer may end a message with a final block (RFC 7692 §7.2.3.3) and start a
// new deflate stream for the next one, still referring to the old window.
void testFinalBlock() {
  std::string m1 = "final block message, final block message, the end";
  std::string m2 = "final block message, again";
  auto rawDeflate = [](const std::string& in, const std::string& dict) {
    z_stream zs;
    std::memset(&zs, 0, sizeof zs);
    deflateInit2(&zs, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (!dict.empty())
      deflateSetDictionary(&zs, reinterpret_cast<const Bytef*>(dict.data()),
                           static_cast<uInt>(dict.size()));
    std::string out(deflateBound(&zs, in.size()) + 16, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    zs.avail_in = static_cast<uInt>(in.size());
    zs.next_out = reinterpret_cast<Bytef*>(&out[0]);
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(out.size() - zs.avail_out);
    deflateEnd(&zs);
    return out;
  };
  std::string z1 = rawDeflate(m1, ""), z2 = rawDeflate(m2, m1);
  std::mt19937 rng(3);
  Inflater inf;
  CHECK(inf.init(15, false));
  std::string o1, o2;
  CHECK_EQ(inflateInPieces(inf, z1, o1, rng), Inflater::kOk);
  CHECK_EQ(inflateInPieces(inf, z2, o2, rng), Inflater::kOk);
  CHECK_EQ(o1, m1);
  CHECK_EQ(o2, m2);
  // Data after the final block is an error.
  Inflater tail;
  CHECK(tail.init(15, false));
  std::string extra = z1 + "\x01\x02", o3;
  CHECK_EQ(tail.feed(reinterpret_cast<const uint8_t*>(extra.data()), extra.size(), o3, kNoLimit),
           Inflater::kError);
}

}  // namespace

int main() {
  testOffer();
  testNegotiateCombinations();
  testNegotiateOffers();
  testNegotiateRejectedParams();
  testMalformed();
  testAcceptResponse();
  testRoundTrips();
  testContextTakeover();
  testBomb();
  testCorrupted();
  testFinalBlock();
  return check::finish();
}
