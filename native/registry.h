// Ref tables: the integers JavaScript sees. Servers are -1, -2, ...; clients
// 1, 2, ...; a server's connections 1, 2, ... The lowest free magnitude is
// always reused first, as the 4D plugin does.
#pragma once

#include <cstdint>
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
class ConnRefs {
 public:
  int assign(uint64_t conn) {
    auto it = byConn_.find(conn);
    if (it != byConn_.end()) return it->second;
    int ref = 1;
    for (const auto& kv : byRef_) {
      if (kv.first != ref) break;
      ++ref;
    }
    byRef_.emplace(ref, conn);
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
    auto it = byRef_.find(ref);
    return it == byRef_.end() ? 0 : it->second;
  }

  bool has(int ref) const { return byRef_.count(ref) != 0; }

  void release(uint64_t conn) {
    auto it = byConn_.find(conn);
    if (it == byConn_.end()) return;
    byRef_.erase(it->second);
    byConn_.erase(it);
  }

  // Refs ascending.
  std::vector<int> refs() const {
    std::vector<int> out;
    out.reserve(byRef_.size());
    for (const auto& kv : byRef_) out.push_back(kv.first);
    return out;
  }

  // Engine conn ids in ref order.
  std::vector<uint64_t> conns() const {
    std::vector<uint64_t> out;
    out.reserve(byRef_.size());
    for (const auto& kv : byRef_) out.push_back(kv.second);
    return out;
  }

  bool empty() const { return byRef_.empty(); }
  void clear() {
    byRef_.clear();
    byConn_.clear();
  }

 private:
  std::map<int, uint64_t> byRef_;
  std::unordered_map<uint64_t, int> byConn_;
};

}  // namespace addon
}  // namespace wsengine
