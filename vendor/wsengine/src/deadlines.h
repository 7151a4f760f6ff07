// One-shot deadlines of many objects on one loop, on a single libuv timer.
// A connection arms at most one deadline at a time (handshake, close or pong
// timeout) and an idle open connection none, so a uv_timer_t per connection
// (152 bytes each, for the connection's whole life) is replaced by an entry
// that exists only while armed, plus one timer per loop.
//
// Threading: the loop's thread only (arm, cancel, the callbacks). The timer
// handle is unref'd: armed deadlines never keep a loop alive on their own
// (an IO thread's loop lives anyway; an embedder's loop must not be held).
#pragma once

#include <uv.h>

#include <cstdint>
#include <set>

namespace wsengine {

// The longest wait any timer here is given: 2^52 ms, some 142,000 years.
// Options take seconds as doubles with no upper bound (1e300 is a way to say
// "never"), and a double beyond uint64_t's range converted to it is undefined
// behaviour: x86 gives 2^63, arm64 saturates to 2^64-1, and a due time of
// now + 2^64-1 wraps around to the past (the deadline fires at once).
constexpr uint64_t kMaxTimerMs = uint64_t(1) << 52;

// seconds (a validated option: positive) as timer milliseconds, capped.
inline uint64_t secondsToMs(double seconds) {
  if (!(seconds > 0)) return 0;
  double ms = seconds * 1000;
  return ms >= static_cast<double>(kMaxTimerMs) ? kMaxTimerMs : static_cast<uint64_t>(ms);
}

class Deadlines {
 public:
  using Callback = void (*)(void* ctx);

  explicit Deadlines(uv_loop_t* loop) : loop_(loop) {}
  ~Deadlines() { close(); }
  Deadlines(const Deadlines&) = delete;
  Deadlines& operator=(const Deadlines&) = delete;

  // Calls fn(ctx) once, `ms` milliseconds from the loop's current time (as
  // uv_timer_start counts them). Returns the due time: the key that cancel()
  // needs (the caller keeps it; 0 is never returned). A ctx may have several
  // deadlines armed, each with its own due time.
  uint64_t arm(uint64_t ms, void* ctx, Callback fn);
  // Drops the deadline armed for ctx at `due` (no-op when it already ran or
  // was never armed; due 0 does nothing).
  void cancel(uint64_t due, void* ctx);
  size_t armed() const { return items_.size(); }
  // The loop is going away (an embedder's loop): closes the timer handle.
  // Armed deadlines are dropped; arm() after close() does nothing.
  void close();

 private:
  struct Item {
    uint64_t due;
    void* ctx;
    Callback fn;
    bool operator<(const Item& o) const { return due != o.due ? due < o.due : ctx < o.ctx; }
  };
  static void onTimer(uv_timer_t* t);
  void run();
  void reschedule();

  uv_loop_t* loop_;
  uv_timer_t* timer_ = nullptr;  // made at the first arm; freed in its close callback
  uint64_t scheduled_ = 0;       // due time the timer is set for (0: stopped)
  bool running_ = false;         // inside run(): it reschedules at its end
  bool closed_ = false;
  // Loop time of the last stall run() made way for (see run()): a poll phase
  // has run since, so deadlines due by then saw every byte that came in time.
  uint64_t polledAfter_ = 0;
  std::set<Item> items_;
};

}  // namespace wsengine
