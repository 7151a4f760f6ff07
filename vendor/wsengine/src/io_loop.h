// The IO threads: a fixed pool, each running its own uv_loop_t. Work from
// other threads is posted to a loop's queue and wakes it with uv_async_send.
// An IoLoop can also wrap a loop the embedder runs on its own thread (inline
// mode, see ServerOptions::loop): then it runs no thread of its own.
#pragma once

#include <uv.h>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "deadlines.h"
#include "socket.h"

namespace wsengine {

class IoLoop {
 public:
  IoLoop();
  // The embedder's loop, run by the calling thread (never run or closed
  // here). Its wake-up handle is unref'ed: it never keeps that loop alive.
  explicit IoLoop(uv_loop_t* external);
  ~IoLoop();  // pool loops are never destroyed (see io_loop.cc)
  IoLoop(const IoLoop&) = delete;
  IoLoop& operator=(const IoLoop&) = delete;

  // Runs fn on this loop's thread, in posting order. Thread-safe. After
  // close() (embedded loops) fn is dropped without running.
  void post(std::function<void()> fn);
  // Runs fn on the loop thread and waits for it (fn must not block). On the
  // loop's own thread fn runs at once.
  void runSync(const std::function<void()>& fn);
  // Runs fn now when called on the loop's thread, else posts it.
  void dispatch(std::function<void()> fn) {
    if (inThread()) fn();
    else post(std::move(fn));
  }
  uv_loop_t* loop() { return loop_; }
  bool inThread() const { return std::this_thread::get_id() == threadId_; }
  // An embedder's loop (inline mode).
  bool embedded() const { return embedded_; }
  // Every handle the engine creates on this loop goes through here: on an
  // embedder's loop it must not keep the embedder's process alive.
  void initHandle(uv_handle_t* h) {
    if (embedded_) uv_unref(h);
  }
  // Embedded loops, on their thread: closes the wake-up handle and drops
  // what was posted and not run. Later posts are dropped. Idempotent.
  void close();

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
  // The epoll set of this loop's sockets (socket.h; loop thread only; made at
  // first use). A loop that is torn down closes it.
  Poller& poller() {
    if (!poller_) poller_ = new Poller(loop(), embedded_);
    return *poller_;
  }

 private:
  static void onAsync(uv_async_t* h);
  void run();

  uv_loop_t ownLoop_;
  uv_loop_t* loop_ = nullptr;
  bool embedded_ = false;
  uv_async_t* async_ = nullptr;  // freed in its close callback
  std::mutex mu_;
  bool closed_ = false;  // under mu_
  std::vector<std::function<void()>> queue_;
  std::vector<std::function<void()>> running_;
  std::thread thread_;
  std::thread::id threadId_;
  std::vector<char> readBuf_;
  std::unique_ptr<Deadlines> deadlines_;
  Poller* poller_ = nullptr;  // frees itself once closed (Poller::close)
};

// The pool, created on first use. Objects are spread over loops round-robin.
IoLoop& nextLoop();

// The first loop of the pool (created if needed): engine-wide housekeeping.
IoLoop& firstLoop();

// Process exit (io_loop.cc, parkIoThreads): once set, an IO thread stops
// where it checks (before a posted function, at a socket read) and waits
// there for the process to end. Not for embedders' loops.
extern std::atomic<bool> gExitParking;
[[noreturn]] void parkForExit();
inline void parkIfExiting(const IoLoop& loop) {
  if (gExitParking.load(std::memory_order_acquire) && !loop.embedded()) parkForExit();
}

}  // namespace wsengine
