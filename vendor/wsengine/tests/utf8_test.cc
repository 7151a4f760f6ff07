// Incremental UTF-8 validation: RFC 3629 table, fail-fast positions, chunking.
#include <random>
#include <string>
#include <vector>

#include "check.h"
#include "utf8.h"

using namespace wsengine;
using Bytes = std::vector<uint8_t>;

namespace {

Bytes encode(uint32_t cp) {
  if (cp < 0x80) return {uint8_t(cp)};
  if (cp < 0x800) return {uint8_t(0xC0 | cp >> 6), uint8_t(0x80 | (cp & 0x3F))};
  if (cp < 0x10000)
    return {uint8_t(0xE0 | cp >> 12), uint8_t(0x80 | ((cp >> 6) & 0x3F)), uint8_t(0x80 | (cp & 0x3F))};
  return {uint8_t(0xF0 | cp >> 18), uint8_t(0x80 | ((cp >> 12) & 0x3F)),
          uint8_t(0x80 | ((cp >> 6) & 0x3F)), uint8_t(0x80 | (cp & 0x3F))};
}

// Index of the byte at which a byte-at-a-time feed first fails; -1 if none.
int failIndex(const Bytes& b) {
  Utf8Validator v;
  for (size_t i = 0; i < b.size(); ++i)
    if (!v.feed(&b[i], 1)) return int(i);
  return -1;
}

// Reference (deliberately naive): decode whole sequences by their bit
// pattern and check the decoded value.
bool refValid(const Bytes& b) {
  size_t i = 0;
  while (i < b.size()) {
    uint8_t c = b[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      n = 1;
      cp = c;
    } else if ((c & 0xE0) == 0xC0) {
      n = 2;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 3;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n > b.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((b[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (b[i + k] & 0x3F);
    }
    const uint32_t minFor[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < minFor[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
    i += n;
  }
  return true;
}

// Reference fail-fast: can this prefix still be completed into valid UTF-8?
bool refCompletable(const Bytes& prefix) {
  if (refValid(prefix)) return true;
  const uint8_t edges[] = {0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF};
  for (uint8_t a : edges) {
    Bytes p1 = prefix;
    p1.push_back(a);
    if (refValid(p1)) return true;
    for (uint8_t b : edges) {
      Bytes p2 = p1;
      p2.push_back(b);
      if (refValid(p2)) return true;
      for (uint8_t c : edges) {
        Bytes p3 = p2;
        p3.push_back(c);
        if (refValid(p3)) return true;
      }
    }
  }
  return false;
}

int refFailIndex(const Bytes& b) {
  Bytes p;
  for (size_t i = 0; i < b.size(); ++i) {
    p.push_back(b[i]);
    if (!refCompletable(p)) return int(i);
  }
  return -1;
}

void testAllCodePoints() {
  int wrong = 0;
  for (uint32_t cp = 0; cp <= 0x10FFFF; ++cp) {
    Bytes e = encode(cp);
    bool surrogate = cp >= 0xD800 && cp <= 0xDFFF;
    if (isValidUtf8(e.data(), e.size()) == surrogate) ++wrong;
    if (surrogate && failIndex(e) != 1) ++wrong;  // fails at the second byte
  }
  CHECK_EQ(wrong, 0);
  // RFC 3629 §4 table boundaries, each as one byte string.
  const uint32_t edges[] = {0x0,    0x7F,   0x80,    0x7FF,   0x800,   0xFFF,   0x1000,
                            0xCFFF, 0xD000, 0xD7FF,  0xE000,  0xFFFF,  0x10000, 0x3FFFF,
                            0x40000, 0xFFFFF, 0x100000, 0x10FFFF};
  Bytes all;
  for (uint32_t cp : edges) {
    Bytes e = encode(cp);
    all.insert(all.end(), e.begin(), e.end());
  }
  CHECK(isValidUtf8(all.data(), all.size()));
  CHECK_EQ(failIndex(all), -1);
}

void testFailFast() {
  struct Case {
    Bytes in;
    int at;
  } cases[] = {
      {{0xC0}, 0},
      {{0xC1, 0xBF}, 0},
      {{0xF5}, 0},
      {{0xF8, 0x88, 0x80, 0x80, 0x80}, 0},
      {{0xFF}, 0},
      {{0xFE}, 0},
      {{0x80}, 0},
      {{0xBF}, 0},
      {{0x41, 0x80}, 1},
      {{0xC2, 0x41}, 1},
      {{0xE0, 0x80, 0x80}, 1},  // overlong 3-byte
      {{0xE0, 0x9F, 0xBF}, 1},
      {{0xED, 0xA0, 0x80}, 1},  // U+D800
      {{0xED, 0xBF, 0xBF}, 1},  // U+DFFF
      {{0xF0, 0x8F, 0xBF, 0xBF}, 1},  // overlong 4-byte
      {{0xF4, 0x90, 0x80, 0x80}, 1},  // U+110000
      {{0xE2, 0x82, 0x41}, 2},
      {{0xF0, 0x9F, 0x98, 0x41}, 3},
      {{0xF0, 0x9F, 0x98, 0x81, 0x80}, 4},
      // Autobahn 6.4.x: "κόσμε" then an invalid sequence.
      {{0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xF4, 0x90, 0x80, 0x80,
        0x65, 0x64, 0x69, 0x74, 0x65, 0x64},
       12},
      {{0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80, 0x65,
        0x64, 0x69, 0x74, 0x65, 0x64},
       12},
      {{0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0x80, 0x65}, 11},
  };
  for (const auto& c : cases) {
    CHECK_EQ(failIndex(c.in), c.at);
    CHECK_EQ(refFailIndex(c.in), c.at);  // the reference agrees on the case itself
    CHECK(!isValidUtf8(c.in.data(), c.in.size()));
    // Whole-buffer feeding fails too, and the failure sticks.
    Utf8Validator v;
    CHECK(!v.feed(c.in.data(), c.in.size()));
    const uint8_t a = 'a';
    CHECK(!v.feed(&a, 1));
    CHECK(!v.complete());
    // The prefix up to (not including) the failing byte is accepted.
    Utf8Validator w;
    CHECK(w.feed(c.in.data(), size_t(c.at)));
  }
}

void testPending() {
  Utf8Validator v;
  const uint8_t euro[] = {0xE2, 0x82, 0xAC};
  CHECK(v.feed(euro, 1));
  CHECK_EQ(v.pendingBytes(), 1u);
  CHECK(!v.complete());
  CHECK(v.feed(euro + 1, 1));
  CHECK_EQ(v.pendingBytes(), 2u);
  CHECK(v.feed(euro + 2, 1));
  CHECK_EQ(v.pendingBytes(), 0u);
  CHECK(v.complete());
  const uint8_t mixed[] = {'a', 'b', 0xF0, 0x9F, 0x98};
  CHECK(v.feed(mixed, sizeof mixed));
  CHECK_EQ(v.pendingBytes(), 3u);
  const uint8_t last = 0x81;
  CHECK(v.feed(&last, 1));
  CHECK(v.complete());
  CHECK_EQ(v.pendingBytes(), 0u);
  // Truncated input is not valid as a whole buffer.
  CHECK(!isValidUtf8(euro, 2));
  CHECK(isValidUtf8(euro, 0));
  v.reset();
  CHECK(v.feed(euro, 2));
  v.reset();
  CHECK(v.complete());
  CHECK_EQ(v.pendingBytes(), 0u);
}

void testAsciiFastPath() {
  // A bad byte or a multi-byte sequence at every position around the 8-byte
  // words is found.
  for (size_t pos = 0; pos < 40; ++pos) {
    Bytes b(48, 'x');
    b[pos] = 0xFF;
    CHECK_EQ(failIndex(b), int(pos));
    Utf8Validator v;
    CHECK(!v.feed(b.data(), b.size()));

    Bytes g(48, 'y');
    g[pos] = 0xC3;
    g[pos + 1] = 0xA9;
    CHECK(isValidUtf8(g.data(), g.size()));
    g[pos + 1] = 'y';
    CHECK(!isValidUtf8(g.data(), g.size()));
  }
  Bytes longAscii(100000, 'q');
  CHECK(isValidUtf8(longAscii.data(), longAscii.size()));
  longAscii.back() = 0xC3;
  Utf8Validator v;
  CHECK(v.feed(longAscii.data(), longAscii.size()));
  CHECK_EQ(v.pendingBytes(), 1u);
}

void testDifferential() {
  // Random short strings built from interesting bytes: compare with the
  // reference on validity and fail position, whole and byte-at-a-time, and
  // split at random points.
  const uint8_t pool[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1,
                          0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3,
                          0xF4, 0xF5, 0xFF};
  std::mt19937 rng(42);
  int mismatches = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    Bytes b(rng() % 9);
    for (auto& c : b) c = pool[rng() % sizeof pool];
    bool valid = refValid(b);
    if (isValidUtf8(b.data(), b.size()) != valid) ++mismatches;
    if (failIndex(b) != refFailIndex(b)) ++mismatches;
    size_t split = b.empty() ? 0 : rng() % (b.size() + 1);
    Utf8Validator v;
    bool ok = v.feed(b.data(), split) && v.feed(b.data() + split, b.size() - split) && v.complete();
    if (ok != valid) ++mismatches;
  }
  CHECK_EQ(mismatches, 0);
}

}  // namespace

int main() {
  testAllCodePoints();
  testFailFast();
  testPending();
  testAsciiFastPath();
  testDifferential();
  return check::finish();
}
