// A mutex in one 32-bit word, for locks that every connection carries.
//
// std::mutex is a pthread_mutex_t: 40 bytes on glibc x86-64 and arm64, most
// of them for features (recursion, robustness, priority inheritance, a
// recorded owner) that a per-connection lock never uses. Every connection's
// Outbox has one, so at 100,000 connections that is ~3.6 MB of idle memory.
//
// On Linux the word is the futex itself, with three states: 0 free, 1 held,
// 2 held and somebody may be asleep on it (the three-state futex mutex of
// Ulrich Drepper's paper "Futexes Are Tricky"). Taking a free lock
// and giving back a lock nobody waited for are one atomic instruction each
// and no system call, as with glibc's mutex; a thread that finds the lock
// held sleeps in the kernel (FUTEX_WAIT) until the holder's unlock wakes one
// sleeper (FUTEX_WAKE). It does not spin first, like a default
// pthread_mutex_t. The acquire/release orderings are what make the data the
// lock guards visible to the next holder (ThreadSanitizer sees them as such).
//
// Elsewhere it is std::mutex: same interface (lock, try_lock, unlock), so
// std::lock_guard<SmallLock> works on every platform.
#pragma once

#include <mutex>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#endif

namespace wsengine {

#if defined(__linux__)

class SmallLock {
 public:
  SmallLock() = default;
  SmallLock(const SmallLock&) = delete;
  SmallLock& operator=(const SmallLock&) = delete;

  void lock() {
    uint32_t seen = kFree;
    if (word_.compare_exchange_strong(seen, kHeld, std::memory_order_acquire,
                                      std::memory_order_relaxed))
      return;
    lockContended(seen);
  }

  bool try_lock() {
    uint32_t seen = kFree;
    return word_.compare_exchange_strong(seen, kHeld, std::memory_order_acquire,
                                         std::memory_order_relaxed);
  }

  void unlock() {
    // Whoever set kWaited may be asleep (or about to be): wake one. A woken
    // thread takes the lock as kWaited, so the waiters behind it are woken
    // in turn by its own unlock.
    if (word_.exchange(kFree, std::memory_order_release) == kWaited) futex(FUTEX_WAKE_PRIVATE, 1);
  }

 private:
  static constexpr uint32_t kFree = 0, kHeld = 1, kWaited = 2;
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t) &&
                    std::atomic<uint32_t>::is_always_lock_free,
                "the futex syscall reads the atomic's word");

  // `seen` is the state the fast path found (kHeld or kWaited). Announces a
  // waiter by storing kWaited, then sleeps while the word still says so.
  // Taking the lock by that same exchange leaves it kWaited even if nobody
  // else waits: the unlock then makes one needless wake call, the price of
  // never missing a sleeper.
  void lockContended(uint32_t seen) {
    if (seen != kWaited) seen = word_.exchange(kWaited, std::memory_order_acquire);
    while (seen != kFree) {
      // Returns at once (EAGAIN) if the word is no longer kWaited; also on a
      // signal or a spurious wake. Every case re-checks through the exchange.
      futex(FUTEX_WAIT_PRIVATE, kWaited);
      seen = word_.exchange(kWaited, std::memory_order_acquire);
    }
  }

  void futex(int op, uint32_t val) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&word_), op, val, nullptr, nullptr, 0);
  }

  std::atomic<uint32_t> word_{kFree};
};

static_assert(sizeof(SmallLock) == 4, "one word per lock");

#else

class SmallLock : public std::mutex {};

#endif

}  // namespace wsengine
