// The IO threads: a fixed pool, each running its own uv_loop_t. Work from
// other threads is posted to a loop's queue and wakes it with uv_async_send.
#pragma once

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "deadlines.h"

namespace wsengine {

class IoLoop {
 public:
  IoLoop();
  ~IoLoop() = delete;  // loops live for the whole process (see io_loop.cc)
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  // Runs fn on this loop's thread, in posting order. Thread-safe.
  void post(std::function<void()> fn);
  // Runs fn on the loop thread and waits for it (fn must not block).
  void runSync(const std::function<void()>& fn);
  uv_loop_t* loop() { return &loop_; }
  bool inThread() const { return std::this_thread::get_id() == threadId_; }

  // A scratch read buffer shared by every socket of this loop: reads are
  // consumed before the next read, so sockets need no buffer of their own.
  char* readBuffer() { return readBuf_.data(); }
  size_t readBufferSize() const { return readBuf_.size(); }

  // The deadlines of this loop's connections on one timer (loop thread
  // only; made at first use). A loop that is torn down closes it first.
  Deadlines& deadlines() {
    if (!deadlines_) deadlines_.reset(new Deadlines(loop()));
    return *deadlines_;
  }

 private:
  static void onAsync(uv_async_t* h);
  void run();

  uv_loop_t loop_;
  uv_async_t async_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  std::vector<std::function<void()>> running_;
  std::thread thread_;
  std::thread::id threadId_;
  std::vector<char> readBuf_;
  std::unique_ptr<Deadlines> deadlines_;
};

// The pool, created on first use. Objects are spread over loops round-robin.
IoLoop& nextLoop();
// The first loop of the pool (created if needed): engine-wide housekeeping.
IoLoop& firstLoop();

}  // namespace wsengine
