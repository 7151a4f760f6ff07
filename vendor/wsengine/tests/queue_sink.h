// An EventSink for engine tests: the IO threads push events into a queue, the
// test thread takes them out with a deadline. One implementation for every
// test that drives a server or a client through its events.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

#include "wsengine/wsengine.h"

namespace testsink {

class QueueSink : public wsengine::EventSink {
 public:
  using Event = wsengine::Event;
  using EventType = wsengine::EventType;

  bool push(Event&& ev) override {
    std::lock_guard<std::mutex> lock(mu_);
    events_.push_back(std::move(ev));
    cv_.notify_all();
    return true;
  }

  // Takes events, oldest first, until one matches pred; that one goes to
  // *out when out is given. The ones before it are dropped. False when none
  // matched within ms.
  bool waitFor(const std::function<bool(const Event&)>& pred, Event* out = nullptr, int ms = 5000) {
    std::unique_lock<std::mutex> lock(mu_);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    for (;;) {
      while (!events_.empty()) {
        Event ev = std::move(events_.front());
        events_.pop_front();
        if (pred(ev)) {
          if (out) *out = std::move(ev);
          return true;
        }
      }
      if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && events_.empty()) return false;
    }
  }
  bool waitFor(EventType type, Event* out = nullptr, int ms = 5000) {
    return waitFor([type](const Event& e) { return e.type == type; }, out, ms);
  }

  // The next event whatever it is, or false after ms.
  bool next(Event& out, int ms = 5000) {
    std::unique_lock<std::mutex> lock(mu_);
    if (!cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return !events_.empty(); })) return false;
    out = std::move(events_.front());
    events_.pop_front();
    return true;
  }

  // Events queued and not yet taken.
  size_t size() {
    std::lock_guard<std::mutex> lock(mu_);
    return events_.size();
  }
  size_t countOpen() {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (auto& e : events_) n += e.type == EventType::Open;
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

}  // namespace testsink
