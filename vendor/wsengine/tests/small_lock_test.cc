// SmallLock (small_lock.h), the one-word lock of every connection's Outbox:
// mutual exclusion under contention (a plain counter and a two-field
// invariant stay exact), sleepers are woken (a holder that sleeps while
// others queue; a lost wake-up would leave them asleep, caught by a
// deadline), try_lock, and its size.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#include "check.h"
#include "small_lock.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

// Waits (bounded) until `done` reaches `want`; a hang is a failure, not a
// stuck test run.
bool waitDone(const std::atomic<int>& done, int want, std::chrono::seconds limit) {
  auto until = Clock::now() + limit;
  while (done.load() < want) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

void exclusion() {
  SmallLock lock;
  // Two fields that must always be equal where the lock is held, and a
  // plain counter: unprotected increments would lose updates.
  long a = 0, b = 0, torn = 0;
  constexpr int kThreads = 4, kRounds = 200000;
  std::atomic<int> done{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < kRounds; ++i) {
        std::lock_guard<SmallLock> g(lock);
        if (a != b) ++torn;
        ++a;
        ++b;
      }
      done.fetch_add(1);
    });
  }
  bool finished = waitDone(done, kThreads, std::chrono::seconds(60));
  CHECK(finished);
  if (!finished) {
    std::fprintf(stderr, "exclusion: threads did not finish (a lost wake-up?)\n");
    std::_Exit(1);
  }
  for (auto& t : ts) t.join();
  CHECK_EQ(a, static_cast<long>(kThreads) * kRounds);
  CHECK_EQ(b, a);
  CHECK_EQ(torn, 0L);
}

void sleepersAreWoken() {
  // The holder keeps the lock long enough for every other thread to find it
  // held and go to sleep in the kernel; each must be woken in turn.
  SmallLock lock;
  constexpr int kWaiters = 6;
  std::atomic<int> started{0}, done{0};
  int order = 0;
  lock.lock();
  std::vector<std::thread> ts;
  for (int t = 0; t < kWaiters; ++t) {
    ts.emplace_back([&] {
      started.fetch_add(1);
      lock.lock();
      ++order;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      lock.unlock();
      done.fetch_add(1);
    });
  }
  CHECK(waitDone(started, kWaiters, std::chrono::seconds(10)));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let them block
  CHECK_EQ(done.load(), 0);
  CHECK_EQ(order, 0);
  lock.unlock();
  bool finished = waitDone(done, kWaiters, std::chrono::seconds(20));
  CHECK(finished);
  if (!finished) {
    std::fprintf(stderr, "sleepers: %d of %d woke\n", done.load(), kWaiters);
    std::_Exit(1);
  }
  for (auto& t : ts) t.join();
  CHECK_EQ(order, kWaiters);
  // Free again: the fast path takes it.
  CHECK(lock.try_lock());
  lock.unlock();
}

void tryLock() {
  SmallLock lock;
  CHECK(lock.try_lock());
  std::atomic<int> got{-1};
  std::thread other([&] { got.store(lock.try_lock() ? 1 : 0); });
  other.join();
  CHECK_EQ(got.load(), 0);  // held elsewhere: refused, without blocking
  lock.unlock();
  std::thread again([&] {
    bool ok = lock.try_lock();
    if (ok) lock.unlock();
    got.store(ok ? 1 : 0);
  });
  again.join();
  CHECK_EQ(got.load(), 1);
}

}  // namespace

int main() {
#if defined(__linux__)
  CHECK_EQ(sizeof(SmallLock), sizeof(uint32_t));
#endif
  exclusion();
  sleepersAreWoken();
  tryLock();
  return check::finish();
}
