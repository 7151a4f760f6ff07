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
// Per-connection memory: a slot of a vector (the conn id of each ref) and one
// hash node (the ref of each conn id); the free refs below the highest in use
// wait in a min-heap so that the lowest is reused first.
class ConnRefs {
 public:
  int assign(uint64_t conn) {
    auto it = byConn_.find(conn);
    if (it != byConn_.end()) return it->second;
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
    byConn_.emplace(conn, ref);
    return ref;
  }

  // 0 when the connection has no ref.
  int refOf(uint64_t conn) const {
    auto it = byConn_.find(conn);
    return it == byConn_.end() ? 0 : it->second;
  }

  // 0 when the ref is not in use.
  uint64_t connOf(int ref) const {
    if (ref <= 0 || static_cast<size_t>(ref) > byRef_.size()) return 0;
    return byRef_[ref - 1];
  }

  bool has(int ref) const { return connOf(ref) != 0; }

  void release(uint64_t conn) {
    auto it = byConn_.find(conn);
    if (it == byConn_.end()) return;
    int ref = it->second;
    byConn_.erase(it);
    if (byConn_.empty()) {
      clear();  // gives the vectors' memory back too
      return;
    }
    byRef_[ref - 1] = 0;
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
    out.reserve(byConn_.size());
    for (size_t i = 0; i < byRef_.size(); ++i)
      if (byRef_[i] != 0) out.push_back(static_cast<int>(i + 1));
    return out;
  }

  // Engine conn ids in ref order.
  std::vector<uint64_t> conns() const {
    std::vector<uint64_t> out;
    out.reserve(byConn_.size());
    for (uint64_t c : byRef_)
      if (c != 0) out.push_back(c);
    return out;
  }

  bool empty() const { return byConn_.empty(); }
  void clear() {
    std::vector<uint64_t>().swap(byRef_);
    std::vector<int>().swap(free_);
    byConn_.clear();
  }

 private:
  std::vector<uint64_t> byRef_;  // [ref - 1]: conn id, 0 when free (engine ids start at 1)
  std::vector<int> free_;        // min-heap of free refs below byRef_.size()
  std::unordered_map<uint64_t, int> byConn_;
};

}  // namespace addon
}  // namespace wsengine
