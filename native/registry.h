// Ref tables: the integers JavaScript sees. Servers are -1, -2, ...; clients
// 1, 2, ...; a server's connections 1, 2, ... The lowest free magnitude is
// always reused first, as the 4D plugin does.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

namespace wsengine {
namespace addon {

template <typename T>
class RefTable {
 public:
  explicit RefTable(int sign) : sign_(sign < 0 ? -1 : 1) {}

  // Stores value under the lowest free ref and returns that ref.
  int add(std::unique_ptr<T> value) {
    int magnitude = 1;
    for (const auto& kv : items_) {
      if (kv.first != magnitude) break;
      ++magnitude;
    }
    items_.emplace(magnitude, std::move(value));
    return sign_ * magnitude;
  }

  // nullptr for a ref of the other sign or one not in use.
  T* find(int ref) const {
    int magnitude = sign_ * ref;
    if (magnitude <= 0) return nullptr;
    auto it = items_.find(magnitude);
    return it == items_.end() ? nullptr : it->second.get();
  }

  // Hands the value back so the caller decides when it is destroyed.
  std::unique_ptr<T> take(int ref) {
    int magnitude = sign_ * ref;
    auto it = items_.find(magnitude);
    if (magnitude <= 0 || it == items_.end()) return nullptr;
    std::unique_ptr<T> value = std::move(it->second);
    items_.erase(it);
    return value;
  }

  // Refs in ascending magnitude.
  std::vector<int> refs() const {
    std::vector<int> out;
    out.reserve(items_.size());
    for (const auto& kv : items_) out.push_back(sign_ * kv.first);
    return out;
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void clear() { items_.clear(); }

 private:
  int sign_;
  std::map<int, std::unique_ptr<T>> items_;  // by magnitude
};

// One server's connection refs, keyed both ways (engine conn id <-> ref).
// Per-connection memory is the reason for the layout: a slot of a vector
// (the conn id of each ref, 8 bytes) and, for the other direction, a slot of
// an open-addressing table of refs (4 bytes, at most half full: 8-16 bytes
// per connection). The table stores refs only; the conn id a slot stands for
// is byRef_[ref - 1], so a lookup hashes the conn id, probes linearly and
// compares byRef_ of each ref it meets. Removal shifts the entries behind the
// removed one back (no tombstones), so a probe always ends at an empty slot.
// The free refs below the highest in use wait in a min-heap so that the
// lowest is reused first.
class ConnRefs {
 public:
  int assign(uint64_t conn) {
    if (int known = refOf(conn)) return known;
    int ref;
    if (!free_.empty()) {
      std::pop_heap(free_.begin(), free_.end(), std::greater<int>());
      ref = free_.back();
      free_.pop_back();
      byRef_[ref - 1] = conn;
    } else {
      byRef_.push_back(conn);
      ref = static_cast<int>(byRef_.size());
    }
    if ((count_ + 1) * 2 > index_.size()) rebuild(index_.empty() ? 16 : index_.size() * 2);
    index_[emptySlot(conn)] = static_cast<uint32_t>(ref);
    ++count_;
    return ref;
  }

  // 0 when the connection has no ref.
  int refOf(uint64_t conn) const {
    size_t at = slotOf(conn);
    return at == kNone ? 0 : static_cast<int>(index_[at]);
  }

  // 0 when the ref is not in use.
  uint64_t connOf(int ref) const {
    if (ref <= 0 || static_cast<size_t>(ref) > byRef_.size()) return 0;
    return byRef_[ref - 1];
  }

  bool has(int ref) const { return connOf(ref) != 0; }

  void release(uint64_t conn) {
    size_t at = slotOf(conn);
    if (at == kNone) return;
    int ref = static_cast<int>(index_[at]);
    if (--count_ == 0) {
      clear();  // gives the vectors' memory back too
      return;
    }
    removeSlot(at);  // before byRef_ changes: the entries it moves are hashed through byRef_
    byRef_[ref - 1] = 0;
    if (count_ * 8 < index_.size() && index_.size() > 16) rebuild(index_.size() / 2);
    if (static_cast<size_t>(ref) == byRef_.size()) {
      // The highest ref: shrink instead of remembering it (and any free refs
      // now at the end, which leave the heap).
      while (!byRef_.empty() && byRef_.back() == 0) byRef_.pop_back();
      if (!free_.empty()) {
        int size = static_cast<int>(byRef_.size());
        free_.erase(std::remove_if(free_.begin(), free_.end(), [size](int r) { return r > size; }),
                    free_.end());
        std::make_heap(free_.begin(), free_.end(), std::greater<int>());
      }
      return;
    }
    free_.push_back(ref);
    std::push_heap(free_.begin(), free_.end(), std::greater<int>());
  }

  // Refs ascending.
  std::vector<int> refs() const {
    std::vector<int> out;
    out.reserve(count_);
    for (size_t i = 0; i < byRef_.size(); ++i)
      if (byRef_[i] != 0) out.push_back(static_cast<int>(i + 1));
    return out;
  }

  // Engine conn ids in ref order.
  std::vector<uint64_t> conns() const {
    std::vector<uint64_t> out;
    out.reserve(count_);
    for (uint64_t c : byRef_)
      if (c != 0) out.push_back(c);
    return out;
  }

  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }
  void clear() {
    std::vector<uint64_t>().swap(byRef_);
    std::vector<int>().swap(free_);
    std::vector<uint32_t>().swap(index_);
    count_ = 0;
  }

 private:
  static constexpr size_t kNone = ~size_t(0);

  // Fibonacci hashing: consecutive conn ids (the engine counts them up) go
  // to slots far apart. index_.size() is a power of two.
  size_t home(uint64_t conn) const {
    return static_cast<size_t>((conn * 0x9E3779B97F4A7C15ull) >> 32) & (index_.size() - 1);
  }

  size_t slotOf(uint64_t conn) const {
    if (index_.empty() || conn == 0) return kNone;
    const size_t mask = index_.size() - 1;
    for (size_t i = home(conn);; i = (i + 1) & mask) {
      uint32_t ref = index_[i];
      if (ref == 0) return kNone;
      if (byRef_[ref - 1] == conn) return i;
    }
  }

  size_t emptySlot(uint64_t conn) const {
    const size_t mask = index_.size() - 1;
    size_t i = home(conn);
    while (index_[i] != 0) i = (i + 1) & mask;
    return i;
  }

  // Empties slot `at` and moves back each later entry of the run whose home
  // is not between the gap and itself (cyclically), so that every entry stays
  // reachable from its home without crossing an empty slot.
  void removeSlot(size_t at) {
    const size_t mask = index_.size() - 1;
    size_t gap = at;
    for (size_t j = (at + 1) & mask; index_[j] != 0; j = (j + 1) & mask) {
      size_t h = home(byRef_[index_[j] - 1]);
      bool stays = gap <= j ? (gap < h && h <= j) : (gap < h || h <= j);
      if (stays) continue;
      index_[gap] = index_[j];
      gap = j;
    }
    index_[gap] = 0;
  }

  void rebuild(size_t slots) {
    index_.assign(slots, 0);
    for (size_t i = 0; i < byRef_.size(); ++i)
      if (byRef_[i] != 0) index_[emptySlot(byRef_[i])] = static_cast<uint32_t>(i + 1);
  }

  std::vector<uint64_t> byRef_;  // [ref - 1]: conn id, 0 when free (engine ids start at 1)
  std::vector<int> free_;        // min-heap of free refs below byRef_.size()
  std::vector<uint32_t> index_;  // open addressing: refs by conn id, 0 when empty
  size_t count_ = 0;             // refs in use
};

}  // namespace addon
}  // namespace wsengine
