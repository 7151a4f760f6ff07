#include "buffer_pool.h"

#include <uv.h>

#include <iterator>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include "io_loop.h"

namespace wsengine {

namespace {

// Enough for the buffers a busy process has in flight between two garbage
// collections of the JavaScript side (which return them), small next to the
// traffic that fills it.
constexpr size_t kMaxBytes = 64u << 20;
constexpr size_t kMaxCount = 4096;
// A buffer nobody took for this long goes back to the system.
constexpr uint64_t kIdleMs = 2000;

struct Entry {
  std::string buf;
  uint64_t since = 0;  // uv_hrtime() / 1e6 when recycled
};

struct Pool {
  std::mutex mu;
  // By capacity: a take is a lower_bound, not a scan of thousands.
  std::multimap<size_t, Entry> entries;
  size_t bytes = 0;
  size_t hits = 0, misses = 0;
  bool trimArmed = false;  // the idle-trim timer is running (on an IO loop)
  uv_timer_t* timer = nullptr;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: IO threads may outlive statics
  return *p;
}

uint64_t nowMs() { return uv_hrtime() / 1000000; }

// With mu held: moves buffers idle since before `cutoff` into `out`.
void collectIdle(Pool& p, uint64_t cutoff, std::vector<std::string>& out) {
  for (auto it = p.entries.begin(); it != p.entries.end();) {
    if (it->second.since < cutoff) {
      p.bytes -= it->first;
      out.push_back(std::move(it->second.buf));
      it = p.entries.erase(it);
    } else {
      ++it;
    }
  }
}

void onTrimTimer(uv_timer_t* t) {
  Pool& p = pool();
  std::vector<std::string> freed;  // released outside the lock
  bool again;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    collectIdle(p, nowMs() - kIdleMs, freed);
    again = !p.entries.empty();
    p.trimArmed = again;
  }
  if (!again) uv_timer_stop(t);
}

// Runs the trim timer on the first IO loop while the pool holds buffers, so
// an idle process returns them without any call from the application.
void armTrim() {
  IoLoop& loop = firstLoop();
  loop.post([&loop] {
    Pool& p = pool();
    if (p.timer == nullptr) {
      p.timer = new uv_timer_t;
      uv_timer_init(loop.loop(), p.timer);
      uv_unref(reinterpret_cast<uv_handle_t*>(p.timer));
    }
    if (!uv_is_active(reinterpret_cast<uv_handle_t*>(p.timer)))
      uv_timer_start(p.timer, &onTrimTimer, kIdleMs, kIdleMs);
  });
}

}  // namespace

std::string takePooled(size_t capacity) {
  Pool& p = pool();
  std::string out;
  std::lock_guard<std::mutex> lock(p.mu);
  // Best fit, and never one so large that a small message would pin it;
  // among equals the latest recycled (its pages are the warmest).
  auto it = p.entries.lower_bound(capacity);
  if (it != p.entries.end() && it->first / 4 <= capacity) {
    it = std::prev(p.entries.upper_bound(it->first));
    p.bytes -= it->first;
    out = std::move(it->second.buf);
    p.entries.erase(it);
    ++p.hits;
    return out;
  }
  ++p.misses;
  return out;
}

std::string takeBuffer(size_t capacity) {
  std::string out = takePooled(capacity);
  if (out.capacity() < capacity) out.reserve(capacity);
  return out;
}

void recycleBuffer(std::string&& s) {
  size_t cap = s.capacity();
  if (cap < kPooledMin) {
    std::string().swap(s);
    return;
  }
  // Usually a no-op (payloads fill their reservation): the next user can
  // read into all of it without zero-filling.
  if (s.size() < cap) s.resize(cap);
  Pool& p = pool();
  bool arm = false;
  {
    std::lock_guard<std::mutex> lock(p.mu);
    if (p.bytes + cap <= kMaxBytes && p.entries.size() < kMaxCount) {
      p.entries.emplace(cap, Entry{std::move(s), nowMs()});
      p.bytes += cap;
      if (!p.trimArmed) p.trimArmed = arm = true;
    }
  }
  std::string().swap(s);  // refused: freed here
  if (arm) armTrim();
}

std::vector<std::string>& spareStash() {
  // Freed with the thread (IO threads live as long as the process).
  thread_local std::vector<std::string> stash;
  return stash;
}

std::string takeSpare(size_t want) {
  std::vector<std::string>& stash = spareStash();
  for (size_t i = stash.size(); i-- > 0;) {
    if (stash[i].capacity() < want) continue;
    std::string out = std::move(stash[i]);
    if (i + 1 != stash.size()) stash[i] = std::move(stash.back());
    stash.pop_back();
    out.clear();  // the sink gives them empty; never trust a stale size
    return out;
  }
  return std::string();
}

BufferPoolStats bufferPoolStats() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mu);
  BufferPoolStats st;
  st.pooled = p.entries.size();
  st.pooledBytes = p.bytes;
  st.hits = p.hits;
  st.misses = p.misses;
  return st;
}

}  // namespace wsengine
