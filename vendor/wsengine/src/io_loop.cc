#include "io_loop.h"

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <future>

#include "wsengine/wsengine.h"

namespace wsengine {

namespace {
std::atomic<int> gThreadCount{0};  // 0: decided at first use
std::once_flag gPoolOnce;
std::vector<IoLoop*>* gPool = nullptr;
std::atomic<unsigned> gNext{0};
}  // namespace

namespace {

// At process exit the IO threads are still running (detached, never
// joined), while exit() runs the handlers libraries registered: OpenSSL's
// OPENSSL_cleanup frees its method stores and name maps under an IO thread
// that is in the middle of a TLS handshake or an SSL_free (a SIGSEGV or a
// "double free" at exit, in most runs of a process that ends just after
// clearing many TLS clients). So, first among the exit handlers, every IO
// thread is parked: it stops at the next place it checks (before a posted
// function, as the queue may hold a hundred client starts each loading a CA
// store; and at a socket read, as a backlog of reads can keep the loop from
// its posted functions for a second) and waits there, holding no lock, on a
// condition that never comes true; exit() then goes on alone. Bounded: a
// thread that does not get there within kParkWaitMs is left running, and the
// thread exit() is called from is not waited for.
constexpr int kParkWaitMs = 2000;

struct ExitPark {
  std::mutex mu;
  std::condition_variable cv;
  size_t parked = 0;
};
ExitPark* gPark = nullptr;  // made once, before gExitParking is set; never freed

void parkIoThreads() {
  gPark = new ExitPark();
  gExitParking.store(true, std::memory_order_release);
  size_t want = 0;
  for (IoLoop* loop : *gPool) {
    if (loop->inThread()) continue;
    ++want;
    loop->post([] {});  // wakes an idle loop: onAsync parks it
  }
  std::unique_lock<std::mutex> lock(gPark->mu);
  gPark->cv.wait_for(lock, std::chrono::milliseconds(kParkWaitMs), [&] { return gPark->parked >= want; });
}

}  // namespace

std::atomic<bool> gExitParking{false};

void parkForExit() {
  std::unique_lock<std::mutex> lock(gPark->mu);
  ++gPark->parked;
  gPark->cv.notify_all();
  for (;;) gPark->cv.wait(lock);
}

void setIoThreadCount(int n) {
  if (n >= 1 && n <= 64) gThreadCount = n;
}
// On a 2-core machine the JavaScript thread and one IO thread already fill
// the cores; a second IO thread would only add context switches.
static int defaultThreadCount() {
  unsigned cores = std::thread::hardware_concurrency();
  return cores != 0 && cores <= 2 ? 1 : 2;
}

int ioThreadCount() {
  int n = gThreadCount;
  return n > 0 ? n : defaultThreadCount();
}

IoLoop::IoLoop() : loop_(&ownLoop_), readBuf_(256 * 1024) {
  uv_loop_init(&ownLoop_);
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &IoLoop::onAsync);
  async_->data = this;
  std::promise<void> started;
  thread_ = std::thread([this, &started] {
    threadId_ = std::this_thread::get_id();
    started.set_value();
    run();
  });
  started.get_future().wait();
  // The pool is never torn down: a loop thread blocked in epoll costs nothing,
  // and process exit must not wait on it (environments clear their objects).
  thread_.detach();
}

IoLoop::IoLoop(uv_loop_t* external)
    : loop_(external), embedded_(true), threadId_(std::this_thread::get_id()),
      readBuf_(256 * 1024) {
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &IoLoop::onAsync);
  async_->data = this;
  uv_unref(reinterpret_cast<uv_handle_t*>(async_));
}

// Only embedded loops are destroyed, after close() on their thread (the
// async handle then belongs to its close callback) or, if never closed,
// while their loop still exists and on its thread.
IoLoop::~IoLoop() { close(); }

void IoLoop::close() {
  std::vector<std::function<void()>> dropped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || !embedded_) return;
    closed_ = true;
    dropped.swap(queue_);
    async_->data = nullptr;  // a late wake-up finds nothing to run
  }
  uv_close(reinterpret_cast<uv_handle_t*>(async_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  async_ = nullptr;
  // The connections' shared deadline timer is a handle on the embedder's
  // loop too (its connections were closed before this).
  if (deadlines_) deadlines_->close();
  if (poller_) poller_->close();
  poller_ = nullptr;
  // `dropped` is destroyed here, on the loop's thread, outside the lock.
}

void IoLoop::run() {
  uv_run(loop_, UV_RUN_DEFAULT);
}

void IoLoop::post(std::function<void()> fn) {
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;  // fn is destroyed below, outside the lock
    wake = queue_.empty();
    queue_.push_back(std::move(fn));
    // Sent under the lock: close() cannot free the handle meanwhile.
    if (wake) uv_async_send(async_);
  }
}

void IoLoop::runSync(const std::function<void()>& fn) {
  if (inThread()) {
    fn();
    return;
  }
  std::promise<void> done;
  post([&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void IoLoop::onAsync(uv_async_t* h) {
  auto* self = static_cast<IoLoop*>(h->data);
  if (self == nullptr) return;
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->queue_.empty()) return;
      self->running_.swap(self->queue_);
    }
    for (auto& fn : self->running_) {
      parkIfExiting(*self);
      fn();
    }
    self->running_.clear();
    if (self->embedded_) {
      // A posted function may have closed this loop (environment teardown).
      std::lock_guard<std::mutex> lock(self->mu_);
      if (self->closed_) return;
    }
  }
}

std::shared_ptr<IoLoop> embedLoop(uv_loop_s* loop) { return std::make_shared<IoLoop>(loop); }

void closeEmbeddedLoop(const std::shared_ptr<IoLoop>& loop) {
  if (loop) loop->close();
}

static std::vector<IoLoop*>& loops() {
  std::call_once(gPoolOnce, [] {
    gPool = new std::vector<IoLoop*>();
    int n = ioThreadCount();
    gThreadCount = n;
    for (int i = 0; i < n; ++i) gPool->push_back(new IoLoop());
    // OpenSSL registers its exit cleanup when it is initialised; doing that
    // first (a no-op when the host, e.g. Node, already has) makes ours, the
    // later registration, run before it.
    OPENSSL_init_ssl(0, nullptr);
    std::atexit(parkIoThreads);
  });
  return *gPool;
}

IoLoop& firstLoop() { return *loops()[0]; }

IoLoop& nextLoop() {
  loops();
  unsigned i = gNext.fetch_add(1) % gPool->size();
  return *(*gPool)[i];
}

}  // namespace wsengine
