// native/registry.h's ConnRefs against a plain model (std::map both ways,
// refs handed out lowest free first), through long random sequences of
// assign / release / lookups: many connections opening and closing out of
// order, stale conn ids and refs looked up after release, releases of ids
// never assigned, clear() with refs in use, and tables that grow and shrink
// (the open-addressing index of refs: collisions, removals that shift later
// entries back, wrap-around at the end of the table). Built and run by
// test/registry.test.ts. Prints "N passed, M failed".
#include <cstdio>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "registry.h"

using wsengine::addon::ConnRefs;

static long passed = 0, failed = 0;
#define CHECK(cond, ...)                                           \
  do {                                                             \
    if (cond) {                                                    \
      ++passed;                                                    \
    } else {                                                       \
      if (failed < 20) {                                           \
        std::printf("FAIL %s:%d %s: ", __FILE__, __LINE__, #cond); \
        std::printf(__VA_ARGS__);                                  \
        std::printf("\n");                                         \
      }                                                            \
      ++failed;                                                    \
    }                                                              \
  } while (0)

struct Model {
  std::map<uint64_t, int> byConn;
  std::map<int, uint64_t> byRef;
  int lowestFree() const {
    int r = 1;
    for (auto& kv : byRef) {
      if (kv.first != r) break;
      ++r;
    }
    return r;
  }
};

// Every conn id ever used (live or released) and every ref up to the highest
// ever handed out answer exactly as the model does; the listings match.
static void compare(const ConnRefs& refs, const Model& m, const std::vector<uint64_t>& seen, int maxRef,
                    long step) {
  for (uint64_t c : seen) {
    auto it = m.byConn.find(c);
    int want = it == m.byConn.end() ? 0 : it->second;
    CHECK(refs.refOf(c) == want, "step %ld refOf(%llu) = %d, want %d", step, (unsigned long long)c,
          refs.refOf(c), want);
  }
  for (int r = -1; r <= maxRef + 1; ++r) {
    auto it = m.byRef.find(r);
    uint64_t want = it == m.byRef.end() ? 0 : it->second;
    CHECK(refs.connOf(r) == want, "step %ld connOf(%d) = %llu, want %llu", step, r,
          (unsigned long long)refs.connOf(r), (unsigned long long)want);
  }
  std::vector<int> wantRefs;
  std::vector<uint64_t> wantConns;
  for (auto& kv : m.byRef) {
    wantRefs.push_back(kv.first);
    wantConns.push_back(kv.second);
  }
  CHECK(refs.refs() == wantRefs, "step %ld refs() differs", step);
  CHECK(refs.conns() == wantConns, "step %ld conns() differs", step);
  CHECK(refs.size() == m.byConn.size() && refs.empty() == m.byConn.empty(), "step %ld size %zu, want %zu",
        step, refs.size(), m.byConn.size());
}

static void run(uint32_t seed, int steps, int maxLive, bool sequentialIds) {
  std::mt19937_64 rng(seed);
  ConnRefs refs;
  Model m;
  std::vector<uint64_t> seen;
  uint64_t nextId = 1;
  int maxRef = 0;
  for (long step = 0; step < steps; ++step) {
    unsigned op = rng() % 100;
    if (op < 55 && static_cast<int>(m.byConn.size()) < maxLive) {
      // A new connection opens (engine ids count up; some runs use ids
      // spread over 64 bits, as a stress for the hashing).
      uint64_t c = sequentialIds ? nextId++ : (rng() | 1);
      if (m.byConn.count(c)) continue;
      int want = m.lowestFree();
      int got = refs.assign(c);
      CHECK(got == want, "step %ld assign(%llu) = %d, want the lowest free %d", step,
            (unsigned long long)c, got, want);
      CHECK(refs.assign(c) == got, "step %ld assign twice gives the same ref", step);
      m.byConn[c] = want;
      m.byRef[want] = c;
      seen.push_back(c);
      if (want > maxRef) maxRef = want;
    } else if (op < 95 && !m.byConn.empty()) {
      // One closes: any of them, not the oldest or newest first.
      auto it = m.byConn.begin();
      std::advance(it, static_cast<long>(rng() % m.byConn.size()));
      uint64_t c = it->first;
      m.byRef.erase(it->second);
      m.byConn.erase(it);
      refs.release(c);
      refs.release(c);  // a second release of the same id does nothing
    } else if (op < 97) {
      refs.release(nextId + 1000000);  // never assigned
    } else if (op < 98 && rng() % 8 == 0) {
      refs.clear();  // the server is cleared with connections open
      m = Model();
    }
    if (step % (maxLive > 100 ? 997 : 7) == 0 || m.byConn.size() < 4) compare(refs, m, seen, maxRef, step);
    if (seen.size() > 4096) seen.erase(seen.begin(), seen.begin() + 2048);
  }
  compare(refs, m, seen, maxRef, steps);
}

int main() {
  // Small tables (a handful live: the index's 16 slots, collisions and
  // wrap-around), then growth to thousands and shrinking back.
  for (uint32_t seed = 1; seed <= 40; ++seed) run(seed, 3000, 12, seed % 2 == 0);
  for (uint32_t seed = 100; seed <= 103; ++seed) run(seed, 40000, 3000, seed % 2 == 0);

  // Refs are reused lowest first, whatever order the connections close in.
  {
    ConnRefs refs;
    for (uint64_t c = 1; c <= 10; ++c) CHECK(refs.assign(c) == static_cast<int>(c), "initial ref of %llu", (unsigned long long)c);
    for (uint64_t c : {7, 3, 9, 5}) refs.release(c);
    CHECK(refs.assign(100) == 3, "lowest free after closing 7, 3, 9, 5");
    CHECK(refs.assign(101) == 5, "then 5");
    CHECK(refs.assign(102) == 7, "then 7");
    CHECK(refs.assign(103) == 9, "then 9");
    CHECK(refs.assign(104) == 11, "then a new one");
    CHECK(refs.refOf(3) == 0 && refs.refOf(7) == 0, "stale ids have no ref");
    CHECK(refs.connOf(3) == 100, "ref 3 is the new connection's");
    refs.release(104);
    refs.release(10);
    CHECK(refs.assign(105) == 10, "the highest refs went: 10 is the lowest free");
  }
  std::printf("%ld passed, %ld failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
