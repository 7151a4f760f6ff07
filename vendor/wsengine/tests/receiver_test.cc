// The Receiver without a socket: bytes in, reports out. The same byte stream
// is fed whole, cut at every position, one byte at a time and in random
// pieces, masked (server role) and unmasked (client role), plain and
// compressed, and must give the same reports every time; each violation
// reports what preceded it and then exactly one failure with the right close
// code; the server's budget of unfinished-message bytes (shared by two
// receivers, fragment copies held until their consumer lets go) is counted
// to the byte; and large payloads read in place (readTarget, as the socket
// read does) arrive intact.
#include <malloc.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "buffer_pool.h"
#include "check.h"
#include "deflate.h"
#include "frame.h"
#include "raw_peer.h"
#include "receiver.h"
#include "utf8.h"

using namespace wsengine;
using rawpeer::encodeFrame;
using Strings = std::vector<std::string>;

namespace {

// Payloads in reports: short ones escaped, long ones by size and hash.
std::string show(const std::string& d) {
  if (d.size() > 48) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : d) h = (h ^ c) * 1099511628211ull;
    return std::to_string(d.size()) + "B#" + std::to_string(h % 1000000007);
  }
  std::string s = "\"";
  for (unsigned char c : d) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      s.push_back(static_cast<char>(c));
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      s += buf;
    }
  }
  return s + "\"";
}

// The reports, one line each, in order.
class Recorder : public ReceiverListener {
 public:
  Strings got;
  const ByteBudget* budget = nullptr;  // when set: its use at each message
  std::vector<uint64_t> usedAtMessage;
  std::vector<std::string> fragments;       // fragment payloads, in order
  std::vector<std::shared_ptr<void>> holds;  // kept when keepHolds
  bool keepHolds = false;
  bool stopAtControl = false;

  void onMessage(std::string&& data, bool binary, uint64_t wireSize) override {
    got.push_back(std::string("message ") + (binary ? "b" : "t") + " wire=" + std::to_string(wireSize) +
                  " " + show(data));
    if (budget != nullptr) usedAtMessage.push_back(budget->used());
    last = std::move(data);
  }
  void onFragment(std::string&& data, bool binary, uint64_t wireSize, std::shared_ptr<void> hold) override {
    got.push_back(std::string("fragment ") + (binary ? "b" : "t") + " wire=" +
                  std::to_string(wireSize) + " " + show(data) + (hold ? " held" : ""));
    fragments.push_back(std::move(data));
    if (keepHolds && hold) holds.push_back(std::move(hold));
  }
  bool onControl(uint8_t opcode, std::string&& payload, bool binary) override {
    got.push_back(std::string(opcode == kPing ? "ping " : opcode == kPong ? "pong " : "control? ") +
                  (binary ? "b " : "t ") + show(payload));
    return !stopAtControl;
  }
  void onClose(int code, std::string&& reason) override {
    got.push_back("close " + std::to_string(code) + " " + show(reason));
  }
  void onFail(int code, const std::string& reason, bool decompressionError) override {
    got.push_back("fail " + std::to_string(code) + " " + reason + (decompressionError ? " (inflate)" : ""));
  }
  std::string last;  // the last message's bytes
};

std::string joined(const Strings& v) {
  std::string s;
  for (auto& x : v) s += "\n  " + x;
  return s;
}

const uint8_t* keyFor(int i) {
  static uint8_t keys[8][4] = {{1, 2, 3, 4},         {0xA5, 0x5A, 0xFF, 0x00}, {0, 0, 0, 0},
                               {0x80, 0x7F, 0x01, 0xFE}, {9, 8, 7, 6},        {0x11, 0x22, 0x33, 0x44},
                               {0xDE, 0xAD, 0xBE, 0xEF}, {0x55, 0x55, 0x55, 0x55}};
  return keys[i % 8];
}

// Frames of one role: the client masks (each frame with another key), the
// server does not.
struct Wire {
  bool masked;
  int n = 0;
  std::string frame(uint8_t op, const std::string& payload, bool fin = true, bool rsv1 = false) {
    return encodeFrame(op, payload, masked ? keyFor(n++) : nullptr, fin, rsv1);
  }
};

struct Setup {
  ConnSettings settings;
  int inflateBits = 0;  // 0: no permessage-deflate
  bool inflateNoCtx = false;
  explicit Setup(bool server) { settings.server = server; }
};

// Receivers freed while idle (feedCut), over the whole test.
size_t idleReleases = 0;

// Feeds `wire` to a fresh receiver in the pieces `cuts` (ascending offsets)
// make, each piece a copy (feed() unmasks in place); returns the reports.
// As the Connection does, a receiver idle() after a piece is destroyed and
// the next piece goes to a new one: the reports must not change.
Strings feedCut(const Setup& su, const std::string& wire, const std::vector<size_t>& cuts,
                Recorder* out = nullptr) {
  Recorder local;
  Recorder& rec = out ? *out : local;
  std::unique_ptr<Receiver> r;
  size_t from = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(wire.size());
  for (size_t end : ends) {
    if (!r) {
      r.reset(new Receiver(su.settings, rec));
      if (su.inflateBits) r->enableInflate(su.inflateBits, su.inflateNoCtx);
    }
    std::string piece = wire.substr(from, end - from);
    r->feed(reinterpret_cast<uint8_t*>(&piece[0]), piece.size());
    from = end;
    if (r->idle()) {
      r.reset();
      ++idleReleases;
    }
  }
  return rec.got;
}

// The same reports however the stream is cut: whole, at every position
// (every `stride`-th one for long streams), one byte at a time, and in
// random pieces.
void checkAllCuts(const char* what, const Setup& su, const std::string& wire, const Strings& want,
                  size_t stride = 1) {
  Strings whole = feedCut(su, wire, {});
  CHECK_EQ(joined(whole), joined(want));
  size_t bad = 0;
  std::string firstBad;
  auto note = [&](const Strings& got, const std::string& how) {
    if (got == want) return;
    if (bad++ == 0) firstBad = how + ":" + joined(got);
  };
  for (size_t p = 0; p <= wire.size(); p += stride) note(feedCut(su, wire, {p}), "cut at " + std::to_string(p));
  if (wire.size() <= 4096) {
    std::vector<size_t> every;
    for (size_t p = 1; p < wire.size(); ++p) every.push_back(p);
    note(feedCut(su, wire, every), "one byte at a time");
  }
  std::mt19937 rng(12345);
  for (int round = 0; round < 50; ++round) {
    std::vector<size_t> cuts;
    size_t p = 0;
    for (;;) {
      p += 1 + rng() % 97;
      if (p >= wire.size()) break;
      cuts.push_back(p);
    }
    note(feedCut(su, wire, cuts), "random pieces, round " + std::to_string(round));
  }
  if (bad) std::fprintf(stderr, "%s: %zu cuts differ; first: %s\n", what, bad, firstBad.c_str());
  CHECK_EQ(bad, size_t(0));
}

std::string binaryBytes(size_t n, int seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 7 + seed * 13 + (i >> 8)) & 0xFF);
  return s;
}

// "héllo €𝄞" cut inside é, € and 𝄞 by its frames.
const char kHello[] = "h\xC3\xA9llo \xE2\x82\xAC\xF0\x9D\x84\x9E";

// A stream of every kind of frame, and what it must report.
void plainStream(bool masked, std::string& wire, Strings& want) {
  Wire w{masked};
  // A text message in four frames, a ping between two of them; fragments
  // carry whole code points only, the final frame raises the message alone.
  wire += w.frame(kText, std::string("h\xC3"), false);
  wire += w.frame(kContinuation, std::string("\xA9llo \xE2\x82"), false);
  wire += w.frame(kPing, "p1");
  wire += w.frame(kContinuation, std::string("\xAC\xF0\x9D"), false);
  wire += w.frame(kContinuation, std::string("\x84\x9E"), true);
  want.push_back("fragment t wire=2 \"h\"");
  want.push_back("fragment t wire=7 \"\\xC3\\xA9llo \"");
  want.push_back("ping t \"p1\"");
  want.push_back("fragment t wire=3 \"\\xE2\\x82\\xAC\"");
  want.push_back("message t wire=14 " + show(kHello));
  // Binary with a 16-bit length, an empty text message, a pong that is not
  // UTF-8, a binary message whose first fragment is empty, an empty ping.
  std::string bin = binaryBytes(300, 1);
  wire += w.frame(kBinary, bin);
  want.push_back("message b wire=300 " + show(bin));
  wire += w.frame(kText, "");
  want.push_back("message t wire=0 \"\"");
  wire += w.frame(kPong, std::string("\xFF\x00\x01", 3));
  want.push_back("pong b \"\\xFF\\x00\\x01\"");
  wire += w.frame(kBinary, "", false);
  wire += w.frame(kContinuation, "xyz", true);
  want.push_back("fragment b wire=0 \"\"");
  want.push_back("message b wire=3 \"xyz\"");
  wire += w.frame(kPing, "");
  want.push_back("ping t \"\"");
  // The close frame ends it: the message behind it is never reported.
  wire += w.frame(kClose, std::string("\x03\xE8" "bye"));
  want.push_back("close 1000 \"bye\"");
  wire += w.frame(kText, "ignored");
}

void testPlainStreams() {
  for (bool server : {true, false}) {
    std::string wire;
    Strings want;
    plainStream(server, wire, want);
    Setup su(server);
    checkAllCuts(server ? "plain, masked (server)" : "plain, unmasked (client)", su, wire, want);
    // The other role refuses the first frame: masking is per direction.
    Setup other(!server);
    Strings got = feedCut(other, wire, {});
    CHECK_EQ(joined(got), joined(Strings{server ? "fail 1002 Masked frame from server"
                                               : "fail 1002 Unmasked frame from client"}));
  }
  // A 64-bit length (70,000 bytes) between two small messages.
  for (bool server : {true, false}) {
    Wire w{server};
    std::string big = binaryBytes(70000, 2);
    std::string wire = w.frame(kText, "a") + w.frame(kBinary, big) + w.frame(kText, "z");
    Strings want{"message t wire=1 \"a\"", "message b wire=70000 " + show(big), "message t wire=1 \"z\""};
    Setup su(server);
    checkAllCuts("64-bit length", su, wire, want, 997);
    for (size_t p = 0; p < 24; ++p) CHECK_EQ(joined(feedCut(su, wire, {p, p + 1})), joined(want));
  }
}

// Compressed streams: several messages with and without context takeover,
// with windows of 15 and 9 bits, a message compressed across three frames,
// an empty message, and a message under the threshold sent uncompressed.
void testCompressedStreams() {
  struct Variant {
    int bits;
    bool noCtx;
  };
  for (Variant v : {Variant{15, false}, Variant{15, true}, Variant{9, false}}) {
    for (bool server : {true, false}) {
      Deflater d;
      CHECK(d.init(v.bits, v.noCtx, 6, 8));
      auto deflate = [&](const std::string& s) {
        std::string out;
        CHECK(d.compress(reinterpret_cast<const uint8_t*>(s.data()), s.size(), out));
        return out;
      };
      Wire w{server};
      std::string wire;
      Strings want;
      std::string text;
      for (int i = 0; i < 60; ++i) text += "\xE2\x82\xAC" "uro \xC3\xBCn\xC3\xAF" "c\xC3\xB8" "d\xC3\xA9 " + std::to_string(i);
      for (int k = 0; k < 2; ++k) {  // the second one leans on the first's window
        std::string z = deflate(text);
        wire += w.frame(kText, z, true, true);
        want.push_back("message t wire=" + std::to_string(z.size()) + " " + show(text));
      }
      std::string bin = binaryBytes(5000, 3);
      std::string zb = deflate(bin);
      wire += w.frame(kBinary, zb, true, true);
      want.push_back("message b wire=" + std::to_string(zb.size()) + " " + show(bin));
      std::string ze = deflate("");
      wire += w.frame(kText, ze, true, true);
      want.push_back("message t wire=" + std::to_string(ze.size()) + " \"\"");
      wire += w.frame(kText, "raw");  // RSV1 clear: not compressed
      want.push_back("message t wire=3 \"raw\"");
      // One compressed message in three frames (RSV1 on the first only).
      std::string zf = deflate(text);
      size_t a = zf.size() / 3, b = 2 * zf.size() / 3;
      wire += w.frame(kText, zf.substr(0, a), false, true);
      wire += w.frame(kContinuation, zf.substr(a, b - a), false);
      wire += w.frame(kContinuation, zf.substr(b), true);
      wire += w.frame(kPing, "after");
      Setup su(server);
      su.inflateBits = v.bits;
      su.inflateNoCtx = v.noCtx;
      // The fragments' split depends on zlib; what they must be: whole code
      // points whose concatenation starts the message, one per non-final
      // frame with that frame's wire size.
      Recorder rec;
      Strings got = feedCut(su, wire, {}, &rec);
      CHECK_EQ(got.size(), want.size() + 4);
      if (got.size() != want.size() + 4) continue;
      CHECK_EQ(joined(Strings(got.begin(), got.begin() + want.size())), joined(want));
      CHECK_EQ(rec.fragments.size(), size_t(2));
      std::string prefix;
      for (auto& f : rec.fragments) {
        CHECK(isValidUtf8(reinterpret_cast<const uint8_t*>(f.data()), f.size()));
        prefix += f;
      }
      CHECK_EQ(text.compare(0, prefix.size(), prefix), 0);
      std::string first = "fragment t wire=" + std::to_string(a) + " ";
      CHECK_EQ(got[want.size()].compare(0, first.size(), first), 0);
      CHECK_EQ(rec.last, text);
      CHECK_EQ(got[want.size() + 2], "message t wire=" + std::to_string(zf.size()) + " " + show(text));
      CHECK_EQ(got.back(), "ping t \"after\"");
      checkAllCuts("compressed", su, wire, got, wire.size() > 4096 ? 7 : 1);
    }
  }
}

struct Violation {
  const char* what;
  bool server;
  int inflateBits;
  uint64_t maxPayload;
  std::string wire;
  Strings want;  // the reports before the failure, then the failure
};

void testViolations() {
  std::vector<Violation> cases;
  auto add = [&](const char* what, bool server, std::string wire, Strings want, int inflateBits = 0,
                 uint64_t maxPayload = 0) {
    cases.push_back(Violation{what, server, inflateBits, maxPayload, std::move(wire), std::move(want)});
  };
  Wire s{true};   // what a client sends (the server reads it)
  Wire c{false};  // what a server sends
  std::string ok = s.frame(kText, "ok");
  Strings okRep{"message t wire=2 \"ok\""};
  auto with = [&](Strings v, const std::string& fail) {
    v.push_back(fail);
    return v;
  };
  add("unmasked client frame", true, ok + c.frame(kText, "x"), with(okRep, "fail 1002 Unmasked frame from client"));
  add("masked server frame", false, c.frame(kText, "ok") + s.frame(kText, "x"),
      with(okRep, "fail 1002 Masked frame from server"));
  add("reserved opcode", true, ok + s.frame(0x3, "x"), with(okRep, "fail 1002 Reserved opcode"));
  add("reserved control opcode", true, ok + s.frame(0xB, ""), with(okRep, "fail 1002 Reserved opcode"));
  add("RSV1 without deflate", true, ok + s.frame(kText, "x", true, true),
      with(okRep, "fail 1002 RSV1 set without a negotiated extension"));
  {
    std::string f = s.frame(kText, "x");
    f[0] = static_cast<char>(f[0] | 0x20);
    add("RSV2", true, ok + f, with(okRep, "fail 1002 RSV2/RSV3 bits set"));
  }
  add("ping over 125 bytes", true, ok + s.frame(kPing, std::string(126, 'p')),
      with(okRep, "fail 1002 Control frame payload longer than 125 bytes"));
  add("fragmented ping", true, ok + s.frame(kPing, "p", false), with(okRep, "fail 1002 Fragmented control frame"));
  add("continuation without a start", true, ok + s.frame(kContinuation, "x"),
      with(okRep, "fail 1002 Continuation frame without a fragmented message"));
  add("new message inside a fragmented one", true, ok + s.frame(kText, "a", false) + s.frame(kBinary, "b"),
      with(with(okRep, "fragment t wire=1 \"a\""), "fail 1002 New data frame inside a fragmented message"));
  add("invalid UTF-8", true, ok + s.frame(kText, std::string("ab\xC3\x28")),
      with(okRep, "fail 1007 Invalid UTF-8 in text message"));
  add("invalid UTF-8 across fragments", true,
      ok + s.frame(kText, std::string("a\xC3"), false) + s.frame(kContinuation, std::string("\x28")),
      with(with(okRep, "fragment t wire=2 \"a\""), "fail 1007 Invalid UTF-8 in text message"));
  add("UTF-8 cut by the end of the message", true, ok + s.frame(kText, std::string("\xE2\x82")),
      with(okRep, "fail 1007 Invalid UTF-8 in text message"));
  add("surrogate in UTF-8", true, ok + s.frame(kText, std::string("\xED\xA0\x80")),
      with(okRep, "fail 1007 Invalid UTF-8 in text message"));
  add("close payload of one byte", true, ok + s.frame(kClose, std::string("\x03", 1)),
      with(okRep, "fail 1002 Invalid close frame payload"));
  for (int code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    add("reserved close code", true, ok + s.frame(kClose, p), with(okRep, "fail 1002 Invalid close code"));
  }
  add("close reason not UTF-8", true, ok + s.frame(kClose, std::string("\x03\xE8\xFF", 3)),
      with(okRep, "fail 1007 Invalid UTF-8 in close reason"));
  add("frame over maxPayload", true, ok + s.frame(kBinary, std::string(101, 'x')),
      with(okRep, "fail 1009 Frame exceeds the maximum message size"), 0, 100);
  add("fragments over maxPayload", true,
      ok + s.frame(kBinary, std::string(60, 'x'), false) + s.frame(kContinuation, std::string(41, 'y')),
      with(with(okRep, "fragment b wire=60 " + show(std::string(60, 'x'))),
           "fail 1009 Message exceeds the maximum message size"),
      0, 100);
  {
    Deflater d;
    CHECK(d.init(15, false, 6, 8));
    std::string zeros(1 << 20, '\0'), z;
    CHECK(d.compress(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size(), z));
    add("inflated over maxPayload", true, ok + s.frame(kBinary, z, true, true),
        with(okRep, "fail 1009 Message too big"), 15, 100000);
  }
  add("corrupt compressed data", true, ok + s.frame(kText, std::string("\xFF\xFF\xFF\xFF", 4), true, true),
      with(okRep, "fail 1007 Invalid compressed data (inflate)"), 15);
  add("RSV1 on a continuation", true,
      ok + s.frame(kBinary, std::string("\x00", 1), false, true) + s.frame(kContinuation, "x", true, true),
      with(with(okRep, "fragment b wire=1 \"\""), "fail 1002 RSV1 set on a continuation frame"), 15);
  add("RSV1 on a control frame", true, ok + s.frame(kPing, "", true, true),
      with(okRep, "fail 1002 RSV1 set on a control frame"), 15);

  for (auto& v : cases) {
    Setup su(v.server);
    su.inflateBits = v.inflateBits;
    if (v.maxPayload) su.settings.limits.maxPayload = v.maxPayload;
    // A valid message after the violation is never reported.
    Wire more{v.server};
    std::string wire = v.wire + more.frame(kText, "after");
    checkAllCuts(v.what, su, wire, v.want, wire.size() > 4096 ? 13 : 1);
  }
}

// Control frames: a false from onControl stops the read at once.
void testStopAtControl() {
  Wire w{true};
  std::string wire = w.frame(kText, "a") + w.frame(kPing, "p") + w.frame(kText, "b");
  Setup su(true);
  Recorder rec;
  rec.stopAtControl = true;
  feedCut(su, wire, {}, &rec);
  CHECK_EQ(joined(rec.got), joined(Strings{"message t wire=1 \"a\"", "ping t \"p\""}));
}

// The server's budget, shared by two receivers: frames of 100 KiB count
// once as the message being assembled and once more as each fragment's copy
// until its consumer lets go of it; the receiver whose frame would exceed
// the budget fails with 1009 and gives back its message at once; a small
// message of another receiver passes whatever the budget holds.
void testBudget() {
  const uint64_t K = 1024;
  Setup su(true);
  su.settings.limits.maxPayload = 64 * 1024 * 1024;
  su.settings.unfinished = std::make_shared<ByteBudget>(300 * K);
  ByteBudget& budget = *su.settings.unfinished;
  Wire w{true};
  std::string part = binaryBytes(100 * K, 4);
  Recorder ra, rb;
  ra.keepHolds = true;
  {
    Receiver a(su.settings, ra), b(su.settings, rb);
    auto feed = [](Receiver& r, std::string bytes) { r.feed(reinterpret_cast<uint8_t*>(&bytes[0]), bytes.size()); };
    feed(a, w.frame(kBinary, part, false));
    CHECK_EQ(ra.got.size(), size_t(1));
    CHECK_EQ(budget.used(), 200 * K);  // the message so far + the fragment's copy
    // Another connection's small message: counted while it is assembled, then gone.
    feed(b, w.frame(kText, std::string(1000, 'b')));
    CHECK_EQ(joined(rb.got), joined(Strings{"message t wire=1000 " + show(std::string(1000, 'b'))}));
    CHECK_EQ(budget.used(), 200 * K);
    // The second frame: its message charge fits (300 KiB), its copy does not.
    feed(a, w.frame(kContinuation, part, false));
    CHECK_EQ(ra.got.back(), std::string("fail 1009 Unfinished messages exceed the server's maxUnfinishedBytes"));
    CHECK_EQ(ra.got.size(), size_t(2));
    CHECK(a.done());
    CHECK_EQ(budget.used(), 100 * K);  // only the first fragment's copy, still held
    // While that copy is held, b's small message is still served (never refused).
    feed(b, w.frame(kText, std::string(70 * K, 'c'), false));
    // 70 KiB of message; its fragment's copy was charged too, and given
    // back as soon as rb let go of it.
    CHECK_EQ(budget.used(), 100 * K + 70 * K);
    feed(b, w.frame(kContinuation, "!", true));
    CHECK_EQ(rb.got.size(), size_t(3));
    CHECK_EQ(budget.used(), 100 * K);  // b's message is out
    feed(a, w.frame(kContinuation, "late", true));  // a failed: nothing more
    CHECK_EQ(ra.got.size(), size_t(2));
    ra.holds.clear();  // the consumer lets go of the fragment
    CHECK_EQ(budget.used(), uint64_t(0));
    // A receiver destroyed in the middle of a message gives its charge back.
    feed(b, w.frame(kBinary, part, false));
    CHECK_EQ(budget.used(), 100 * K);
  }
  CHECK_EQ(budget.used(), uint64_t(0));

  // Charges up to 64 KiB reach the budget when the read ends; a finished
  // large message leaves it at once, before its event, even in mid-read
  // (one read here: a 100 KiB message, then a 1 KiB one).
  {
    Recorder rc;
    rc.budget = &budget;
    Receiver c(su.settings, rc);
    std::string both = w.frame(kBinary, part) + w.frame(kBinary, std::string(1000, 'd'));
    c.feed(reinterpret_cast<uint8_t*>(&both[0]), both.size());
    CHECK_EQ(rc.got.size(), size_t(2));
    CHECK_EQ(rc.usedAtMessage.size(), size_t(2));
    CHECK_EQ(rc.usedAtMessage[0], uint64_t(0));
    CHECK_EQ(rc.usedAtMessage[1], uint64_t(0));
    CHECK_EQ(budget.used(), uint64_t(0));
    // A small message left unfinished is on the budget once the read ends.
    std::string open = w.frame(kBinary, std::string(2000, 'e'), false);
    c.feed(reinterpret_cast<uint8_t*>(&open[0]), open.size());
    CHECK_EQ(budget.used(), uint64_t(2000));  // the fragment's copy was let go of at once
  }

  // Inflating stops at the budget's room instead of allocating past it.
  Setup sz(true);
  sz.inflateBits = 15;
  sz.settings.limits.maxPayload = 64 * 1024 * 1024;
  sz.settings.unfinished = std::make_shared<ByteBudget>(200 * K);
  Deflater d;
  CHECK(d.init(15, false, 6, 8));
  std::string zeros(1 << 20, '\0'), z;
  CHECK(d.compress(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size(), z));
  Strings got = feedCut(sz, Wire{true}.frame(kBinary, z, true, true), {});
  CHECK_EQ(joined(got), joined(Strings{"fail 1009 Unfinished messages exceed the server's maxUnfinishedBytes"}));
  CHECK_EQ(sz.settings.unfinished->used(), uint64_t(0));
  // Without the budget the same message is 1 MiB and passes.
  sz.settings.unfinished.reset();
  got = feedCut(sz, Wire{true}.frame(kBinary, z, true, true), {});
  CHECK_EQ(joined(got), joined(Strings{"message b wire=" + std::to_string(z.size()) + " " + show(zeros)}));
}

// A stream of frames that knows where each payload lies.
struct Stream {
  std::string wire;
  std::vector<std::pair<size_t, size_t>> payloads;  // [begin, end) of each frame's payload
  void add(const std::string& frame, size_t payloadLen) {
    payloads.emplace_back(wire.size() + frame.size() - payloadLen, wire.size() + frame.size());
    wire += frame;
  }
  // The end of the payload holding offset `pos`, or 0 when pos is in a header.
  size_t payloadEnd(size_t pos) const {
    for (auto& p : payloads)
      if (pos >= p.first && pos < p.second) return p.second;
    return 0;
  }
};

// A socket read loop: each read goes where readTarget() says, else into a
// scratch buffer, at most `chunk` bytes of the stream at a time. A place
// offered for bytes past the payload being read (the next header would land
// in the message) counts as an overreach.
struct SocketFeed {
  size_t placed = 0;  // bytes read in place
  size_t overreach = 0;
  void run(Receiver& r, const Stream& st, size_t chunk) {
    std::string scratch;
    const std::string& wire = st.wire;
    for (size_t pos = 0; pos < wire.size();) {
      size_t n = std::min(chunk, wire.size() - pos);
      char* base;
      size_t len;
      if (r.readTarget(&base, &len)) {
        size_t end = st.payloadEnd(pos);
        if (end == 0 || pos + len > end) ++overreach;
        n = std::min(n, len);
        std::memcpy(base, wire.data() + pos, n);
        r.feed(reinterpret_cast<uint8_t*>(base), n);
        placed += n;
      } else {
        scratch.assign(wire, pos, n);
        r.feed(reinterpret_cast<uint8_t*>(&scratch[0]), n);
      }
      pos += n;
    }
  }
};

void testReadInPlace() {
  for (bool server : {true, false}) {
    for (bool recycled : {false, true}) {
      // A recycled buffer comes with stale bytes up to its capacity; this one
      // is taken for the 300 KiB message (a quarter of it or more).
      if (recycled) recycleBuffer(std::string(1 << 20, 'Z'));
      Wire w{server};
      std::string big = binaryBytes(300 * 1024, 5);
      std::string text;
      while (text.size() < 200 * 1024) text += "\xE2\x82\xAC\xF0\x9D\x84\x9E" "abc";
      Stream st;
      st.add(w.frame(kBinary, big), big.size());
      st.add(w.frame(kText, "after"), 5);
      st.add(w.frame(kText, text), text.size());
      st.add(w.frame(kBinary, big.substr(0, 40000), false), 40000);
      st.add(w.frame(kContinuation, big.substr(40000), true), big.size() - 40000);
      Setup su(server);
      su.settings.unfinished = std::make_shared<ByteBudget>(16 << 20);
      // Reads of a socket buffer's size, small reads, reads that start frames
      // in the middle of the buffer.
      for (size_t chunk : {size_t(65536), size_t(1000), size_t(100003)}) {
        Recorder rec;
        SocketFeed sf;
        {
          Receiver r(su.settings, rec);
          sf.run(r, st, chunk);
        }
        Strings want{"message b wire=" + std::to_string(big.size()) + " " + show(big),
                     "message t wire=5 \"after\"",
                     "message t wire=" + std::to_string(text.size()) + " " + show(text),
                     "fragment b wire=40000 " + show(big.substr(0, 40000)) + " held",
                     "message b wire=" + std::to_string(big.size()) + " " + show(big)};
        CHECK_EQ(joined(rec.got), joined(want));
        CHECK(sf.placed > 0);
        CHECK_EQ(sf.overreach, size_t(0));
        CHECK_EQ(su.settings.unfinished->used(), uint64_t(0));
      }
    }
  }
  // No room in the budget for a region: nothing is read in place, the read
  // goes to the scratch buffer and the frame fails with 1009; nothing stays
  // charged.
  Setup su(true);
  su.settings.unfinished = std::make_shared<ByteBudget>(100 * 1024);
  Recorder rec;
  SocketFeed sf;
  {
    Receiver r(su.settings, rec);
    Stream st;
    st.add(Wire{true}.frame(kBinary, binaryBytes(300 * 1024, 6)), 300 * 1024);
    sf.run(r, st, 65536);
    CHECK(r.done());
  }
  CHECK_EQ(sf.placed, size_t(0));
  CHECK_EQ(joined(rec.got), joined(Strings{"fail 1009 Unfinished messages exceed the server's maxUnfinishedBytes"}));
  CHECK_EQ(su.settings.unfinished->used(), uint64_t(0));
}

// Stale bytes of a recycled buffer never reach a message: a 40,000-byte
// first frame is assembled in a recycled 64 KiB buffer (stale up to 64 KiB),
// and the 30,000 bytes of the next frame, which do not fit what is left of
// it, must follow the first frame's bytes, not the stale ones. Runs first:
// the pool then holds only this buffer.
void testRecycledStaleBytes() {
  std::string stale;
  stale.reserve(64 * 1024);
  stale.assign(stale.capacity(), 'Z');
  recycleBuffer(std::move(stale));
  Wire w{true};
  std::string a = binaryBytes(40000, 7), b = binaryBytes(30000, 8);
  std::string wire = w.frame(kBinary, a, false) + w.frame(kContinuation, b, true);
  Setup su(true);
  Strings got = feedCut(su, wire, {});
  CHECK_EQ(joined(got), joined(Strings{"fragment b wire=40000 " + show(a), "message b wire=70000 " + show(a + b)}));
}

// A peer that announces large frames and stalls pins no more than the
// server's budget of unfinished bytes. Recycled buffers are memory already
// made: a receiver that takes one for a frame announced at 16 MiB holds all
// of it while it waits for the payload, so it is charged whole, and left in
// the pool when the budget has no room. (It used to be taken uncharged: four
// stalled peers held 64 MiB of pool buffers against a 1 MiB budget.) Without
// a recycled buffer, the receiver sets aside a first region only, not the
// announced length.
void testAnnouncedNotPinned() {
  const size_t M = 1 << 20;
  // Header of a masked 16 MiB binary frame and the first payload byte.
  const std::string header("\x82\xFF\x00\x00\x00\x00\x01\x00\x00\x00\x01\x02\x03\x04\x55", 15);
  auto stall = [&](Setup& su, Recorder& rec, std::vector<std::unique_ptr<Receiver>>& rs, int n) {
    for (int i = 0; i < n; ++i) {
      rs.emplace_back(new Receiver(su.settings, rec));
      std::string piece = header;
      rs.back()->feed(reinterpret_cast<uint8_t*>(&piece[0]), piece.size());
      CHECK(!rs.back()->done());
    }
  };
  for (int i = 0; i < 4; ++i) recycleBuffer(std::string(16 * M, 'x'));
  const size_t pooled = bufferPoolStats().pooled;
  {
    // No room for a 16 MiB buffer in a 1 MiB budget: all four stay pooled.
    Setup su(true);
    su.settings.limits.maxPayload = 100 * M;
    su.settings.unfinished = std::make_shared<ByteBudget>(1 * M);
    Recorder rec;
    std::vector<std::unique_ptr<Receiver>> rs;
    stall(su, rec, rs, 4);
    CHECK_EQ(bufferPoolStats().pooled, pooled);
    CHECK(su.settings.unfinished->used() <= 1 * M);
    CHECK_EQ(joined(rec.got), joined(Strings{}));
  }
  {
    // Room for two of them in 40 MiB: two are taken and charged whole, the
    // third and fourth receivers find no room and leave theirs in the pool.
    Setup su(true);
    su.settings.limits.maxPayload = 100 * M;
    su.settings.unfinished = std::make_shared<ByteBudget>(40 * M);
    Recorder rec;
    std::vector<std::unique_ptr<Receiver>> rs;
    stall(su, rec, rs, 4);
    CHECK_EQ(bufferPoolStats().pooled, pooled - 2);
    CHECK(su.settings.unfinished->used() >= 32 * M);
    CHECK(su.settings.unfinished->used() <= 40 * M);
    rs.clear();
    CHECK_EQ(su.settings.unfinished->used(), uint64_t(0));
  }
  {
    // Nothing pooled that fits a 64 MiB frame: what the stalled receivers
    // set aside is a first region each, not 64 MiB (mapped memory, counted
    // by malloc).
    const std::string big("\x82\xFF\x00\x00\x00\x00\x04\x00\x00\x00\x01\x02\x03\x04\x55", 15);
    Setup su(true);
    su.settings.limits.maxPayload = 100 * M;
    Recorder rec;
    std::vector<std::unique_ptr<Receiver>> rs;
    size_t before = mallinfo2().hblkhd;
    for (int i = 0; i < 4; ++i) {
      rs.emplace_back(new Receiver(su.settings, rec));
      std::string piece = big;
      rs.back()->feed(reinterpret_cast<uint8_t*>(&piece[0]), piece.size());
    }
    size_t grown = mallinfo2().hblkhd - before;
    CHECK(grown <= 8 * M);
  }
}

// Spare strings (takeSpare): a message, or a fragment's copy, of at most
// kSpareCapacity starts in a string from this thread's stash; given back
// dirty (a sink that forgot to clear them: full of 'Z' up to their
// capacity), each still holds exactly its own bytes, plain or compressed.
void testSpareStrings() {
  std::vector<std::string>& stash = spareStash();
  stash.clear();
  std::vector<const char*> mem;
  for (size_t cap : {size_t(16384), size_t(4096), size_t(1000), size_t(64)}) {
    std::string s(cap, 'Z');
    mem.push_back(s.data());
    stash.push_back(std::move(s));
  }
  Wire w{true};
  std::string a = binaryBytes(900, 11), b = binaryBytes(30, 12), c = binaryBytes(3000, 13);
  // a: the 1000 one (the latest that fits); "short": no spare (fits in the
  // string itself); b: the 64 one; c: the 4096 one, its fragment's copy the
  // 16384 one; c + a (3900 bytes) stays in the 4096 one.
  std::string wire = w.frame(kBinary, a) + w.frame(kText, "short") + w.frame(kBinary, b) +
                     w.frame(kBinary, c, false) + w.frame(kContinuation, a, true);
  Setup su(true);
  Recorder rec;
  Strings got = feedCut(su, wire, {}, &rec);
  CHECK_EQ(joined(got), joined(Strings{"message b wire=900 " + show(a), "message t wire=5 \"short\"",
                                       "message b wire=30 " + show(b),
                                       "fragment b wire=3000 " + show(c),
                                       "message b wire=3900 " + show(c + a)}));
  CHECK_EQ(stash.size(), size_t(0));
  CHECK(rec.last.data() == mem[1]);                                 // assembled in a spare
  CHECK(!rec.fragments.empty() && rec.fragments[0].data() == mem[0]);

  // Compressed: the first frame's length is the hint; the inflater grows it.
  Deflater d;
  CHECK(d.init(15, false, 6, 8));
  std::string text;
  for (int i = 0; i < 200; ++i) text += "spare " + std::to_string(i) + " ";
  std::string z;
  CHECK(d.compress(reinterpret_cast<const uint8_t*>(text.data()), text.size(), z));
  std::string dirty(2048, 'Z');
  stash.push_back(std::move(dirty));
  Setup sz(true);
  sz.inflateBits = 15;
  Strings gotZ = feedCut(sz, w.frame(kText, z, true, true), {});
  CHECK_EQ(joined(gotZ), joined(Strings{"message t wire=" + std::to_string(z.size()) + " " + show(text)}));
  CHECK_EQ(stash.size(), size_t(0));
}

// A compressed message that inflates to (almost) nothing is delivered in a
// string of at most a spare's capacity, not in the inflater's slice: 3000
// empty stored blocks and a last byte (15 KB on the wire) inflate to one
// byte, and the 60 KiB slice reserved for them used to travel with it into
// the event queue (which counted one byte: a flood held 2.8 GiB under its
// 64 MiB budget; it counts capacity now).
void testCompressedCapacity() {
  std::string stored;
  for (int i = 0; i < 3000; ++i) stored += std::string("\x00\x00\x00\xff\xff", 5);
  // As a sender's flush ends a message: the last empty block's header byte,
  // its 00 00 ff ff left for the receiver to append (RFC 7692 §7.2.1).
  std::string blocks = stored + std::string(1, '\0');
  // A final stored block holding one byte: BFINAL=1, LEN=1, NLEN=~1, 'x'.
  std::string oneByte = stored + std::string("\x01\x01\x00\xfe\xff" "x", 6);
  for (bool server : {true, false}) {
    Wire w{server};
    Setup su(server);
    su.inflateBits = 15;
    Recorder rec;
    Strings got = feedCut(su, w.frame(kBinary, blocks, true, true) + w.frame(kBinary, oneByte, true, true), {}, &rec);
    CHECK_EQ(joined(got), joined(Strings{"message b wire=" + std::to_string(blocks.size()) + " \"\"",
                                         "message b wire=" + std::to_string(oneByte.size()) + " \"x\""}));
    CHECK_EQ(rec.last, std::string("x"));
    CHECK(rec.last.capacity() <= kSpareCapacity);
    if (rec.last.capacity() > kSpareCapacity)
      std::fprintf(stderr, "delivered capacity %zu for %zu bytes\n", rec.last.capacity(), rec.last.size());
  }
}

}  // namespace

// idle(): true exactly when a new Receiver could take over (the Connection
// frees an idle one between reads): not inside a frame header or payload, a
// fragmented message, after a compressed message (the inflater's window), a
// close or a failure.
void testIdle() {
  Setup su(true);
  Recorder rec;
  Wire w{true};
  auto feedStr = [](Receiver& r, std::string s) { r.feed(reinterpret_cast<uint8_t*>(&s[0]), s.size()); };
  {
    Receiver r(su.settings, rec);
    CHECK(r.idle());
    std::string f = w.frame(kText, "hi");
    for (size_t i = 0; i + 1 < f.size(); ++i) {
      feedStr(r, f.substr(i, 1));
      CHECK(!r.idle());  // a header or payload byte pending
    }
    feedStr(r, f.substr(f.size() - 1));
    CHECK(r.idle());
    std::string big = w.frame(kBinary, std::string(300, 'b'));
    feedStr(r, big.substr(0, 4));  // header with a 16-bit length done, no payload yet
    CHECK(!r.idle());
    feedStr(r, big.substr(4));
    CHECK(r.idle());
    feedStr(r, w.frame(kText, "a", false));
    CHECK(!r.idle());  // a fragmented message is open
    feedStr(r, w.frame(kPing, "p"));
    CHECK(!r.idle());
    feedStr(r, w.frame(kContinuation, "b", true));
    CHECK(r.idle());
    feedStr(r, w.frame(kClose, std::string("\x03\xE8", 2)));
    CHECK(!r.idle());  // done: what follows is ignored, a new receiver would not
  }
  {
    Receiver r(su.settings, rec);
    feedStr(r, w.frame(kText, "\xFF"));
    CHECK(!r.idle());  // failed
  }
  {
    Receiver r(su.settings, rec);
    r.enableInflate(15, false);
    feedStr(r, w.frame(kText, "plain"));
    CHECK(r.idle());  // no inflater yet
    Deflater d;
    CHECK(d.init(15, false, 6, 8));
    std::string z;
    CHECK(d.compress(reinterpret_cast<const uint8_t*>("zzzz"), 4, z));
    feedStr(r, w.frame(kText, z, true, true));
    CHECK_EQ(rec.last, std::string("zzzz"));
    CHECK(!r.idle());  // the next message may refer to this one's window
  }
  {
    Setup budget(true);
    budget.settings.unfinished = std::make_shared<ByteBudget>(1 << 20);
    Receiver r(budget.settings, rec);
    std::string f = w.frame(kBinary, std::string(1000, 'x'));
    feedStr(r, f.substr(0, 500));
    CHECK(!r.idle());
    CHECK(budget.settings.unfinished->used() > 0);
    feedStr(r, f.substr(500));
    CHECK(r.idle());
    CHECK_EQ(budget.settings.unfinished->used(), uint64_t(0));
  }
}

int main() {
  testRecycledStaleBytes();
  testIdle();
  testPlainStreams();
  // The cuts above freed idle receivers between pieces (and the reports
  // stayed the same): one byte at a time frees one after every message.
  CHECK(idleReleases > 100);
  testCompressedStreams();
  testViolations();
  testStopAtControl();
  testBudget();
  testReadInPlace();
  testSpareStrings();
  testAnnouncedNotPinned();
  testCompressedCapacity();
  return check::finish();
}
