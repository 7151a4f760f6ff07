// Frame header encoding, masking and the incoming frame parser.
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "frame.h"

using namespace wsengine;
using Bytes = std::vector<uint8_t>;

namespace {

const uint8_t kKey[4] = {0x37, 0xFA, 0x21, 0x3D};

Bytes frame(bool fin, uint8_t op, const Bytes& payload, bool masked, bool rsv1 = false) {
  Bytes out(kMaxFrameHeader);
  size_t n = writeFrameHeader(out.data(), fin, rsv1, op, payload.size(), masked ? kKey : nullptr);
  out.resize(n);
  size_t start = out.size();
  out.insert(out.end(), payload.begin(), payload.end());
  if (masked) applyMask(out.data() + start, payload.size(), kKey, 0);
  return out;
}

Bytes text(const std::string& s) { return Bytes(s.begin(), s.end()); }

Bytes concat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

// Records every callback as text so that two runs can be compared.
struct Recorder : FrameHandler {
  std::string log;
  std::vector<FrameHeader> headers;
  std::vector<Bytes> payloads;  // per frame, concatenated
  int errorCode = 0;
  std::string errorReason;
  int errors = 0;
  // Pause (return false) on the Nth call of a kind; -1: never.
  int pauseHeaderAt = -1, pausePayloadAt = -1, pauseEndAt = -1;
  int headerCalls = 0, payloadCalls = 0, endCalls = 0;

  bool onFrameHeader(const FrameHeader& h) override {
    headers.push_back(h);
    payloads.emplace_back();
    log += "H" + std::to_string(h.opcode) + (h.fin ? "F" : "-") + (h.rsv1 ? "R" : "-") +
           (h.masked ? "M" : "-") + std::to_string(h.payloadLen) + ";";
    return headerCalls++ != pauseHeaderAt;
  }
  bool onFramePayload(uint8_t* data, size_t len) override {
    if (payloads.empty()) {
      log += "P-without-header;";
    } else {
      payloads.back().insert(payloads.back().end(), data, data + len);
    }
    return payloadCalls++ != pausePayloadAt;
  }
  bool onFrameEnd() override {
    log += "E" + std::to_string(payloads.empty() ? 0 : payloads.back().size()) + ";";
    return endCalls++ != pauseEndAt;
  }
  void onFrameError(int code, const char* reason) override {
    ++errors;
    errorCode = code;
    errorReason = reason;
    log += "X" + std::to_string(code) + ";";
  }
};

// Feeds `in` in chunks of `chunk` bytes (0: all at once), resuming after
// pauses. Returns the total consumed.
size_t feedAll(FrameParser& p, Bytes in, Recorder& r, size_t chunk = 0) {
  size_t pos = 0;
  int guard = 0;
  while (pos < in.size() && !p.failed() && guard++ < 10000000) {
    size_t n = chunk ? std::min(chunk, in.size() - pos) : in.size() - pos;
    pos += p.feed(in.data() + pos, n, r);
  }
  // Deliver a pending end of a paused zero-length frame.
  if (!p.failed()) p.feed(in.data() + pos, 0, r);
  return pos;
}

void testHeaderEncoding() {
  struct Case {
    uint64_t len;
    size_t hdr;
    uint8_t len7;
  } cases[] = {{0, 2, 0},       {1, 2, 1},       {125, 2, 125},          {126, 4, 126},
               {65535, 4, 126}, {65536, 10, 127}, {(1ull << 32) + 5, 10, 127},
               {0x7FFFFFFFFFFFFFFFull, 10, 127}};
  for (const auto& c : cases) {
    uint8_t out[kMaxFrameHeader];
    size_t n = writeFrameHeader(out, true, false, kBinary, c.len, nullptr);
    CHECK_EQ(n, c.hdr);
    CHECK_EQ(out[0], 0x82);
    CHECK_EQ(out[1], c.len7);
    uint64_t decoded = c.len7;
    if (c.len7 == 126) decoded = (uint64_t(out[2]) << 8) | out[3];
    if (c.len7 == 127) {
      decoded = 0;
      for (int i = 0; i < 8; ++i) decoded = (decoded << 8) | out[2 + i];
    }
    CHECK_EQ(decoded, c.len);

    n = writeFrameHeader(out, false, true, kText, c.len, kKey);
    CHECK_EQ(n, c.hdr + 4);
    CHECK_EQ(out[0], 0x41);
    CHECK_EQ(out[1], 0x80 | c.len7);
    CHECK(std::memcmp(out + c.hdr, kKey, 4) == 0);

    // The parser reads back the same header (server side: masked).
    FrameParser p(true);
    Recorder r;
    writeFrameHeader(out, true, false, kBinary, c.len, kKey);
    CHECK_EQ(p.feed(out, c.hdr + 4, r), c.hdr + 4);
    CHECK_EQ(r.headers.size(), 1u);
    if (!r.headers.empty()) {
      CHECK_EQ(r.headers[0].payloadLen, c.len);
      CHECK(r.headers[0].masked);
      CHECK(std::memcmp(r.headers[0].mask, kKey, 4) == 0);
      CHECK(r.headers[0].fin);
      CHECK_EQ(int(r.headers[0].opcode), int(kBinary));
    }
    CHECK_EQ(r.endCalls, c.len == 0 ? 1 : 0);
  }
  // Exact bytes for one small masked close frame.
  uint8_t out[kMaxFrameHeader];
  CHECK_EQ(writeFrameHeader(out, true, false, kClose, 2, kKey), 6u);
  const uint8_t want[] = {0x88, 0x82, 0x37, 0xFA, 0x21, 0x3D};
  CHECK(std::memcmp(out, want, 6) == 0);
}

void testMask() {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 45; ++len) {
    for (uint64_t off = 0; off < 9; ++off) {
      Bytes data(len);
      for (auto& b : data) b = static_cast<uint8_t>(rng());
      Bytes ref = data;
      for (size_t i = 0; i < len; ++i) ref[i] ^= kKey[(off + i) & 3];
      Bytes got = data;
      applyMask(got.data(), len, kKey, off);
      CHECK(got == ref);
    }
  }
  // Mask at once, unmask in odd pieces at odd offsets (and unaligned pointers).
  Bytes orig(1001);
  for (auto& b : orig) b = static_cast<uint8_t>(rng());
  Bytes buf = orig;
  applyMask(buf.data(), buf.size(), kKey, 0);
  CHECK(buf != orig);
  size_t pos = 0, piece = 1;
  while (pos < buf.size()) {
    size_t n = std::min(piece, buf.size() - pos);
    applyMask(buf.data() + pos, n, kKey, pos);
    pos += n;
    piece = piece * 3 % 37 + 1;
  }
  CHECK(buf == orig);
  // Offsets beyond 32 bits.
  Bytes a = orig, b = orig;
  applyMask(a.data(), 13, kKey, (1ull << 33) + 3);
  applyMask(b.data(), 13, kKey, 3);
  CHECK(a == b);
}

Bytes sampleStream(bool masked) {
  Bytes big(70000), mid(126), edge(65535);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 31 + 7);
  for (size_t i = 0; i < mid.size(); ++i) mid[i] = static_cast<uint8_t>(i);
  for (size_t i = 0; i < edge.size(); ++i) edge[i] = static_cast<uint8_t>(i ^ 0x5A);
  return concat({frame(true, kText, text("Hello"), masked), frame(true, kBinary, {}, masked),
                 frame(false, kText, text("frag"), masked), frame(true, kPing, text("p"), masked),
                 frame(false, kContinuation, {}, masked),
                 frame(true, kContinuation, text("ment"), masked), frame(true, kBinary, mid, masked),
                 frame(true, kPong, {}, masked), frame(true, kBinary, edge, masked),
                 frame(false, kBinary, big, masked), frame(true, kContinuation, mid, masked),
                 frame(true, kClose, Bytes{0x03, 0xE8}, masked)});
}

void testChunkingEquivalence() {
  for (bool server : {true, false}) {
    Bytes in = sampleStream(server);
    FrameParser whole(server);
    Recorder rw;
    CHECK_EQ(feedAll(whole, in, rw), in.size());
    CHECK_EQ(rw.errors, 0);
    CHECK_EQ(rw.headers.size(), 12u);
    CHECK_EQ(rw.endCalls, 12);
    CHECK(!whole.inMessage());
    if (rw.payloads.size() == 12) {
      CHECK(rw.payloads[0] == text("Hello"));
      CHECK(rw.payloads[2] == text("frag"));
      CHECK(rw.payloads[3] == text("p"));
      CHECK(rw.payloads[5] == text("ment"));
      CHECK_EQ(rw.payloads[6].size(), 126u);
      CHECK_EQ(rw.payloads[8].size(), 65535u);
      CHECK_EQ(rw.payloads[9].size(), 70000u);
      CHECK_EQ(int(rw.payloads[9][69999]), int(static_cast<uint8_t>(69999 * 31 + 7)));
      CHECK(rw.payloads[11] == (Bytes{0x03, 0xE8}));
    }
    for (size_t chunk : {1u, 2u, 3u, 7u, 13u, 4096u}) {
      FrameParser p(server);
      Recorder r;
      CHECK_EQ(feedAll(p, in, r, chunk), in.size());
      CHECK_EQ(r.log, rw.log);
      CHECK(r.payloads == rw.payloads);
    }
    // Random chunk sizes.
    std::mt19937 rng(server ? 1 : 2);
    FrameParser p(server);
    Recorder r;
    size_t pos = 0;
    while (pos < in.size()) {
      size_t n = std::min<size_t>(rng() % 300, in.size() - pos);
      CHECK_EQ(p.feed(in.data() + pos, n, r), n);
      pos += n;
    }
    CHECK_EQ(r.log, rw.log);
    CHECK(r.payloads == rw.payloads);
  }
}

void testUnmaskInPlace() {
  Bytes in = frame(true, kText, text("in place!"), true);
  FrameParser p(true);
  Recorder r;
  CHECK_EQ(p.feed(in.data(), in.size(), r), in.size());
  CHECK(std::memcmp(in.data() + 6, "in place!", 9) == 0);
}

struct ErrorCase {
  const char* name;
  Bytes in;
  int code;
  bool server;
  bool allowRsv1;
  uint64_t max;
  size_t framesBefore;  // complete frames expected before the error
};

void testErrors() {
  const bool S = true, C = false;
  Bytes longLen = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};  // masked, MSB set
  Bytes longLenClient = {0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 1};
  Bytes big126(126);
  std::vector<ErrorCase> cases = {
      {"rsv2", frame(true, kText, text("a"), S) , 1002, S, false, 0, 0},
      {"rsv3", frame(true, kText, text("a"), S), 1002, S, false, 0, 0},
      {"rsv1 not negotiated", frame(true, kText, text("a"), S, true), 1002, S, false, 0, 0},
      {"rsv1 on continuation",
       concat({frame(false, kText, text("a"), S, true), frame(true, kContinuation, text("b"), S, true)}),
       1002, S, true, 0, 1},
      {"rsv1 on ping", frame(true, kPing, {}, S, true), 1002, S, true, 0, 0},
      {"opcode 3", frame(true, 3, {}, S), 1002, S, false, 0, 0},
      {"opcode 7", frame(true, 7, {}, S), 1002, S, false, 0, 0},
      {"opcode B", frame(true, 0xB, {}, S), 1002, S, false, 0, 0},
      {"opcode F", frame(true, 0xF, {}, S), 1002, S, false, 0, 0},
      {"ping 126", frame(true, kPing, big126, S), 1002, S, false, 0, 0},
      {"close 126", frame(true, kClose, big126, C), 1002, C, false, 0, 0},
      {"fragmented ping", frame(false, kPing, {}, S), 1002, S, false, 0, 0},
      {"fragmented close", frame(false, kClose, {}, C), 1002, C, false, 0, 0},
      {"lone continuation", frame(true, kContinuation, text("x"), S), 1002, S, false, 0, 0},
      {"continuation after finished message",
       concat({frame(false, kText, text("a"), S), frame(true, kContinuation, text("b"), S),
               frame(true, kContinuation, text("c"), S)}),
       1002, S, false, 0, 2},
      {"text inside fragmented message",
       concat({frame(false, kText, text("a"), S), frame(true, kText, text("b"), S)}), 1002, S,
       false, 0, 1},
      {"binary inside fragmented message",
       concat({frame(false, kBinary, text("a"), S), frame(true, kPing, {}, S),
               frame(true, kBinary, text("b"), S)}),
       1002, S, false, 0, 2},
      {"64-bit length MSB", longLen, 1002, S, false, 0, 0},
      {"64-bit length MSB client", longLenClient, 1002, C, false, 0, 0},
      {"unmasked from client", frame(true, kText, text("a"), false), 1002, S, false, 0, 0},
      {"masked from server", frame(true, kText, text("a"), true), 1002, C, false, 0, 0},
      {"frame over max", frame(true, kBinary, Bytes(11), S), 1009, S, false, 10, 0},
      {"fragments over max",
       concat({frame(false, kBinary, Bytes(6), S), frame(true, kContinuation, Bytes(5), S)}), 1009,
       S, false, 10, 1},
      {"three fragments over max",
       concat({frame(false, kText, Bytes(4), C), frame(false, kContinuation, Bytes(4), C),
               frame(true, kContinuation, Bytes(3), C)}),
       1009, C, false, 10, 2},
  };
  cases[0].in[0] |= 0x20;
  cases[1].in[0] |= 0x10;

  for (const auto& c : cases) {
    for (size_t chunk : {0u, 1u}) {
      FrameParser p(c.server);
      p.setAllowRsv1(c.allowRsv1);
      p.setMaxMessageSize(c.max);
      Recorder r;
      size_t consumed = feedAll(p, c.in, r, chunk);
      bool ok = r.errors == 1 && r.errorCode == c.code && p.failed() &&
                r.headers.size() == c.framesBefore && size_t(r.endCalls) == c.framesBefore;
      if (!ok) {
        std::fprintf(stderr, "case '%s' chunk %zu: log %s\n", c.name, chunk, r.log.c_str());
      }
      CHECK(ok);
      CHECK(!r.errorReason.empty());
      CHECK(consumed <= c.in.size());
      // Nothing more happens after a failure.
      Bytes more = frame(true, kText, text("z"), c.server);
      CHECK_EQ(p.feed(more.data(), more.size(), r), 0u);
      CHECK_EQ(r.errors, 1);
    }
  }

  // Fail fast: the first byte alone is enough for byte-0 violations.
  {
    FrameParser p(true);
    Recorder r;
    uint8_t b = 0x83;  // FIN + opcode 3
    CHECK_EQ(p.feed(&b, 1, r), 1u);
    CHECK_EQ(r.errorCode, 1002);
  }
  {
    FrameParser p(true);
    Recorder r;
    uint8_t b[2] = {0x81, 0x05};  // unmasked: detected at byte 1
    CHECK_EQ(p.feed(b, 2, r), 2u);
    CHECK_EQ(r.errorCode, 1002);
    CHECK(r.headers.empty());
  }
  // 1009 is reported before any payload byte arrives.
  {
    FrameParser p(false);
    p.setMaxMessageSize(1000);
    Recorder r;
    uint8_t h[kMaxFrameHeader];
    size_t n = writeFrameHeader(h, true, false, kBinary, 1ull << 40, nullptr);
    CHECK_EQ(p.feed(h, n, r), n);
    CHECK_EQ(r.errorCode, 1009);
    CHECK(r.headers.empty());
  }
}

void testLimitsAndRsv1() {
  // Exactly at the limit across fragments, with control frames between that
  // do not count; then a new message starts from zero.
  {
    FrameParser p(true);
    p.setMaxMessageSize(10);
    Recorder r;
    Bytes in = concat({frame(false, kText, Bytes(4, 'a'), true), frame(true, kPing, Bytes(100), true),
                       frame(false, kContinuation, Bytes(3, 'b'), true),
                       frame(true, kContinuation, Bytes(3, 'c'), true),
                       frame(true, kBinary, Bytes(10), true)});
    CHECK_EQ(feedAll(p, in, r), in.size());
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.endCalls, 5);
  }
  // A control frame larger than a tiny limit is still fine (it is <= 125).
  {
    FrameParser p(false);
    p.setMaxMessageSize(2);
    Recorder r;
    Bytes in = frame(true, kPing, Bytes(125), false);
    CHECK_EQ(feedAll(p, in, r), in.size());
    CHECK_EQ(r.errors, 0);
  }
  // RSV1 on the first data frame when negotiated.
  {
    FrameParser p(false);
    p.setAllowRsv1(true);
    Recorder r;
    Bytes in = concat({frame(true, kText, text("x"), false, true), frame(false, kBinary, text("y"), false, true),
                       frame(true, kContinuation, text("z"), false)});
    CHECK_EQ(feedAll(p, in, r), in.size());
    CHECK_EQ(r.errors, 0);
    CHECK_EQ(r.headers.size(), 3u);
    if (r.headers.size() == 3) {
      CHECK(r.headers[0].rsv1);
      CHECK(r.headers[1].rsv1);
      CHECK(!r.headers[2].rsv1);
    }
  }
  // inMessage() follows fragmented data messages only.
  {
    FrameParser p(true);
    Recorder r;
    Bytes a = frame(false, kBinary, text("ab"), true);
    Bytes ping = frame(true, kPing, {}, true);
    Bytes c = frame(true, kContinuation, text("c"), true);
    CHECK(!p.inMessage());
    p.feed(a.data(), a.size(), r);
    CHECK(p.inMessage());
    p.feed(ping.data(), ping.size(), r);
    CHECK(p.inMessage());
    p.feed(c.data(), c.size(), r);
    CHECK(!p.inMessage());
    CHECK_EQ(r.errors, 0);
  }
}

void testPause() {
  Bytes in = concat({frame(true, kText, text("abcdef"), true), frame(true, kPing, {}, true),
                     frame(true, kBinary, text("xyz"), true)});
  const size_t f1 = 6 + 6;  // header + payload of the first frame

  // Pause on the first header: consumed = header only; resume goes on.
  {
    FrameParser p(true);
    Recorder r;
    r.pauseHeaderAt = 0;
    CHECK_EQ(p.feed(in.data(), in.size(), r), 6u);
    CHECK_EQ(r.log, "H1F-M6;");
    size_t n = p.feed(in.data() + 6, in.size() - 6, r);
    CHECK_EQ(n, in.size() - 6);
    CHECK_EQ(r.headers.size(), 3u);
    CHECK(r.payloads[0] == text("abcdef"));
  }
  // Pause on a payload piece that completes the frame: the end comes later.
  {
    FrameParser p(true);
    Recorder r;
    r.pausePayloadAt = 0;
    CHECK_EQ(p.feed(in.data(), in.size(), r), f1);
    CHECK_EQ(r.endCalls, 0);
    CHECK_EQ(p.feed(in.data() + f1, 0, r), 0u);  // no input: still ends the frame
    CHECK_EQ(r.endCalls, 1);
    CHECK_EQ(p.feed(in.data() + f1, in.size() - f1, r), in.size() - f1);
    CHECK_EQ(r.endCalls, 3);
  }
  // Pause mid-payload with partial input.
  {
    FrameParser p(true);
    Recorder r;
    r.pausePayloadAt = 0;
    CHECK_EQ(p.feed(in.data(), 8, r), 8u);  // header + 2 payload bytes
    CHECK(r.payloads[0] == text("ab"));
    CHECK_EQ(p.feed(in.data() + 8, in.size() - 8, r), in.size() - 8);
    CHECK(r.payloads[0] == text("abcdef"));
    CHECK_EQ(r.log, "H1F-M6;E6;H9F-M0;E0;H2F-M3;E3;");
  }
  // Pause on the header of an empty frame, then on its end.
  {
    FrameParser p(true);
    Recorder r;
    r.pauseHeaderAt = 1;
    r.pauseEndAt = 1;
    size_t a = p.feed(in.data(), in.size(), r);
    CHECK_EQ(a, f1 + 6);
    CHECK_EQ(r.endCalls, 1);
    size_t b = p.feed(in.data() + a, in.size() - a, r);
    CHECK_EQ(b, 0u);  // the ping's end paused before any new byte
    CHECK_EQ(r.endCalls, 2);
    size_t c = p.feed(in.data() + a, in.size() - a, r);
    CHECK_EQ(c, in.size() - a);
    CHECK_EQ(r.log, "H1F-M6;E6;H9F-M0;E0;H2F-M3;E3;");
  }
  // Pausing on every callback, one byte at a time, gives the same log.
  {
    struct AlwaysPause : Recorder {
      bool onFrameHeader(const FrameHeader& h) override {
        Recorder::onFrameHeader(h);
        return false;
      }
      bool onFramePayload(uint8_t* d, size_t n) override {
        Recorder::onFramePayload(d, n);
        return false;
      }
      bool onFrameEnd() override {
        Recorder::onFrameEnd();
        return false;
      }
    };
    FrameParser p(true);
    AlwaysPause r;
    size_t pos = 0;
    int guard = 0;
    while (guard++ < 1000 && (pos < in.size() || r.endCalls < 3)) {
      pos += p.feed(in.data() + pos, pos < in.size() ? 1 : 0, r);
    }
    CHECK_EQ(pos, in.size());
    CHECK_EQ(r.log, "H1F-M6;E6;H9F-M0;E0;H2F-M3;E3;");
  }
}

}  // namespace

int main() {
  testHeaderEncoding();
  testMask();
  testChunkingEquivalence();
  testUnmaskInPlace();
  testErrors();
  testLimitsAndRsv1();
  testPause();
  return check::finish();
}
