// A server's sockets by id, with one small record each: open addressing
// (linear probing) over an array of owning pointers whose pointee carries its
// own id, and a parallel array of records. That is 16 + sizeof(Meta) bytes
// per slot and no allocation per entry, where a std::unordered_map costs a
// node (a 48-byte malloc chunk for a 24-byte value) plus a bucket per socket:
// idle memory per connection is what this is for (bench/PROFILE.md).
//
// Not thread-safe: the server holds its lock around every call. An index
// from find() is valid until the next insert or erase (both may move
// entries: growth rehashes, erase shifts the following run back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace wsengine {

template <class Ptr, class Meta>
class IdTable {
 public:
  static constexpr size_t npos = ~size_t(0);

  size_t size() const { return size_; }
  size_t capacity() const { return ptrs_.size(); }

  // The slot holding `id`, or npos.
  size_t find(uint64_t id) const {
    if (size_ == 0) return npos;
    const size_t mask = ptrs_.size() - 1;
    for (size_t i = home(id);; i = (i + 1) & mask) {
      if (!ptrs_[i]) return npos;  // a run ends at an empty slot
      if (ptrs_[i]->id() == id) return i;
    }
  }

  Ptr& ptr(size_t i) { return ptrs_[i]; }
  const Ptr& ptr(size_t i) const { return ptrs_[i]; }
  Meta& meta(size_t i) { return meta_[i]; }
  const Meta& meta(size_t i) const { return meta_[i]; }

  // Adds p, whose id() must not be in the table yet; p must not be null.
  void insert(Ptr p, Meta m = Meta()) {
    // At most 3/4 full: runs stay short with linear probing.
    if ((size_ + 1) * 4 > ptrs_.size() * 3) rehash(ptrs_.empty() ? kMinCapacity : ptrs_.size() * 2);
    place(std::move(p), m);
    ++size_;
  }

  // Removes slot i (from find()). The entries after it in its run move back
  // into the gap, so that every lookup still finds its entry before an
  // empty slot (no tombstones). A table under 1/8 full halves itself: a
  // server that held 100,000 sockets does not keep their slots forever.
  void eraseAt(size_t i) {
    const size_t mask = ptrs_.size() - 1;
    ptrs_[i] = Ptr();
    meta_[i] = Meta();
    size_t hole = i;
    for (size_t j = (i + 1) & mask; ptrs_[j]; j = (j + 1) & mask) {
      // The entry at j may fill the hole if the hole lies on its probe path
      // (between its home slot and j, cyclically).
      const size_t h = home(ptrs_[j]->id());
      if (((j - h) & mask) >= ((j - hole) & mask)) {
        ptrs_[hole] = std::move(ptrs_[j]);
        meta_[hole] = meta_[j];
        ptrs_[j] = Ptr();
        meta_[j] = Meta();
        hole = j;
      }
    }
    --size_;
    if (ptrs_.size() > kMinCapacity && size_ * 8 < ptrs_.size()) rehash(ptrs_.size() / 2);
  }

  bool erase(uint64_t id) {
    size_t i = find(id);
    if (i == npos) return false;
    eraseAt(i);
    return true;
  }

  // f(const Ptr&, const Meta&) for every entry, in no particular order.
  template <class F>
  void forEach(F&& f) const {
    for (size_t i = 0; i < ptrs_.size(); ++i)
      if (ptrs_[i]) f(ptrs_[i], meta_[i]);
  }

 private:
  static constexpr size_t kMinCapacity = 16;

  // Fibonacci hashing: the server's ids are consecutive, and the top bits of
  // id * 2^64/phi spread consecutive ids over the whole table.
  size_t home(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void place(Ptr p, const Meta& m) {
    const size_t mask = ptrs_.size() - 1;
    size_t i = home(p->id());
    while (ptrs_[i]) i = (i + 1) & mask;
    ptrs_[i] = std::move(p);
    meta_[i] = m;
  }

  void rehash(size_t capacity) {  // a power of two, >= kMinCapacity
    std::vector<Ptr> oldPtrs(capacity);
    std::vector<Meta> oldMeta(capacity);
    oldPtrs.swap(ptrs_);
    oldMeta.swap(meta_);
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1) --shift_;
    for (size_t i = 0; i < oldPtrs.size(); ++i)
      if (oldPtrs[i]) place(std::move(oldPtrs[i]), oldMeta[i]);
  }

  std::vector<Ptr> ptrs_;
  std::vector<Meta> meta_;
  size_t size_ = 0;
  unsigned shift_ = 64;
};

}  // namespace wsengine
