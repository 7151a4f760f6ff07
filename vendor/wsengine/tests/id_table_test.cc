// IdTable (id_table.h), the server's socket table: random inserts and erases
// against std::map as the oracle (consecutive ids as a server hands them out,
// and scattered ones), every entry found with its own record after the
// entries around it moved (erase shifts runs back, growth rehashes), absent
// ids not found, ownership released on erase, and the table grown and shrunk
// within its load bounds.
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <vector>

#include "check.h"
#include "id_table.h"

using namespace wsengine;

namespace {

struct Item {
  explicit Item(uint64_t id) : id_(id) {}
  uint64_t id() const { return id_; }
  uint64_t id_;
};

struct Meta {
  uint8_t kind = 0;
  bool open = false;
};

using Table = IdTable<std::shared_ptr<Item>, Meta>;

// Everything the table holds agrees with the oracle, both ways.
bool agrees(const Table& t, const std::map<uint64_t, Meta>& oracle) {
  if (t.size() != oracle.size()) return false;
  for (const auto& kv : oracle) {
    size_t i = t.find(kv.first);
    if (i == Table::npos) return false;
    if (t.ptr(i)->id() != kv.first) return false;
    if (t.meta(i).kind != kv.second.kind || t.meta(i).open != kv.second.open) return false;
  }
  size_t seen = 0;
  bool foreign = false;
  t.forEach([&](const std::shared_ptr<Item>& p, const Meta&) {
    ++seen;
    if (!oracle.count(p->id())) foreign = true;
  });
  return seen == oracle.size() && !foreign;
}

void randomOps(bool consecutive, unsigned seed) {
  std::mt19937_64 rng(seed);
  Table t;
  std::map<uint64_t, Meta> oracle;
  uint64_t nextId = 1;
  int mismatches = 0, ghosts = 0, loadViolations = 0;
  for (int step = 0; step < 200000; ++step) {
    // Phases: grow to a few thousand, drain to a few, grow again.
    int phase = (step / 20000) % 2;
    bool doInsert = oracle.empty() || (rng() % 100) < (phase == 0 ? 70u : 30u);
    if (doInsert) {
      uint64_t id = consecutive ? nextId++ : rng();
      if (id == 0 || oracle.count(id)) continue;
      Meta m;
      m.kind = static_cast<uint8_t>(rng() % 4);
      m.open = (rng() & 1) != 0;
      t.insert(std::make_shared<Item>(id), m);
      oracle[id] = m;
    } else {
      // Erase a present id (picked through the oracle) or an absent one.
      if (rng() % 10 == 0) {
        uint64_t absent = consecutive ? nextId + 1000 + rng() % 1000 : rng();
        if (!oracle.count(absent) && t.erase(absent)) ++ghosts;
        continue;
      }
      auto it = oracle.begin();
      std::advance(it, static_cast<long>(rng() % oracle.size()));
      size_t i = t.find(it->first);
      if (i == Table::npos) {
        ++mismatches;
        continue;
      }
      t.eraseAt(i);
      oracle.erase(it);
    }
    // Change a record in place now and then: it must move with its entry.
    if (!oracle.empty() && rng() % 7 == 0) {
      auto it = oracle.begin();
      std::advance(it, static_cast<long>(rng() % oracle.size()));
      size_t i = t.find(it->first);
      if (i != Table::npos) {
        t.meta(i).open = !t.meta(i).open;
        it->second.open = !it->second.open;
      }
    }
    if (t.capacity() && t.size() * 4 > t.capacity() * 3) ++loadViolations;
    if (step % 997 == 0 && !agrees(t, oracle)) ++mismatches;
  }
  CHECK(agrees(t, oracle));
  CHECK_EQ(mismatches, 0);
  CHECK_EQ(ghosts, 0);
  CHECK_EQ(loadViolations, 0);
}

void ownershipAndBounds() {
  Table t;
  std::vector<std::weak_ptr<Item>> weak;
  for (uint64_t id = 1; id <= 10000; ++id) {
    auto p = std::make_shared<Item>(id);
    weak.push_back(p);
    t.insert(std::move(p));
  }
  CHECK_EQ(t.size(), 10000u);
  // 10,000 entries in 16,384 slots: the table is the next power of two that
  // keeps it at most 3/4 full.
  CHECK_EQ(t.capacity(), 16384u);
  CHECK(t.find(0) == Table::npos);
  CHECK(t.find(10001) == Table::npos);
  // The table owns its entries: erasing drops the last reference.
  int notErased = 0;
  for (uint64_t id = 1; id <= 9990; ++id) notErased += !t.erase(id);
  CHECK_EQ(notErased, 0);
  int alive = 0;
  for (auto& w : weak) alive += !w.expired();
  CHECK_EQ(alive, 10);
  // Shrunk with the entries, not kept at its peak.
  CHECK(t.capacity() <= 128u);
  int lost = 0;
  for (uint64_t id = 9991; id <= 10000; ++id) lost += t.find(id) == Table::npos;
  CHECK_EQ(lost, 0);
  CHECK(!t.erase(5));
  for (uint64_t id = 9991; id <= 10000; ++id) lost += !t.erase(id);
  CHECK_EQ(lost, 0);
  CHECK_EQ(t.size(), 0u);
  CHECK(t.find(9995) == Table::npos);
  alive = 0;
  for (auto& w : weak) alive += !w.expired();
  CHECK_EQ(alive, 0);
}

// Ids that share a home slot (a long run) and one that wraps around the end
// of the array: erasing from the middle of the run keeps the rest findable.
void collidingRun() {
  Table t;
  t.insert(std::make_shared<Item>(1));  // capacity 16, shift 60
  // Find ids whose home slot is 15 (the last): their run wraps to slot 0.
  std::vector<uint64_t> same;
  for (uint64_t id = 2; same.size() < 5 && id < 1000000; ++id)
    if (((id * 0x9E3779B97F4A7C15ull) >> 60) == 15) same.push_back(id);
  CHECK_EQ(same.size(), 5u);
  for (uint64_t id : same) t.insert(std::make_shared<Item>(id));
  for (uint64_t id : same) CHECK(t.find(id) != Table::npos);
  CHECK(t.erase(same[1]));
  CHECK(t.erase(same[3]));
  CHECK(t.find(same[1]) == Table::npos);
  CHECK(t.find(same[3]) == Table::npos);
  CHECK(t.find(same[0]) != Table::npos);
  CHECK(t.find(same[2]) != Table::npos);
  CHECK(t.find(same[4]) != Table::npos);
  CHECK(t.find(1) != Table::npos);
  CHECK_EQ(t.size(), 4u);
}

}  // namespace

int main() {
  randomOps(true, 1);
  randomOps(true, 2);
  randomOps(false, 3);
  ownershipAndBounds();
  collidingRun();
  return check::finish();
}
