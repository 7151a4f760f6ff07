// The bridge from IO threads to one JavaScript environment: the engine's
// EventSink plus client-start results, batched into as few thread-safe
// function calls as possible and bounded in bytes.
#pragma once

#include <node_api.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

struct QueueItem {
  enum class Kind : uint8_t { Event, Connect };
  Kind kind = Kind::Event;
  Event event;             // Kind::Event
  uint64_t startId = 0;    // Kind::Connect: which websocketClientStart call
  ConnectResult connect;   // Kind::Connect
  size_t cost = 0;         // bytes charged against the budget
  uint64_t seq = 0;        // push order, see EventQueue::lastSeq
};

// Implemented by the environment's instance; called on the JS thread only.
class QueueTarget {
 public:
  virtual ~QueueTarget() = default;
  virtual void deliver(napi_env env, std::vector<QueueItem>& batch) = 0;
  // The queue drained below its low-water mark after having refused events.
  virtual void resumeAll() = 0;
};

class EventQueue : public EventSink, public std::enable_shared_from_this<EventQueue> {
 public:
  // Budget: push() reports "stop reading" above kHighWater; reading resumes
  // once the JS side has drained below kLowWater.
  static constexpr size_t kHighWater = 64u * 1024 * 1024;
  static constexpr size_t kLowWater = 16u * 1024 * 1024;
  // Items per JS call: a flood is delivered in slices, and the next slice
  // is armed from an idle handle on the next loop turn, so timers, I/O and
  // immediates of the application run between slices.
  static constexpr size_t kMaxBatch = 1024;
  // Spare payload strings held for the IO threads (EventSink::
  // pushAllTakeSpares): at most this many, each of capacity at most
  // kSpareCapacity (4 MiB in all at worst).
  static constexpr size_t kMaxSpares = 256;
  // Emptied chunks kept for reuse (each up to kMaxBatch items of storage,
  // ~400 KiB once a flood filled it): the rest are freed.
  static constexpr size_t kKeepChunks = 2;

  EventQueue() = default;
  ~EventQueue() override = default;

  // JS thread: creates the thread-safe function (unref'd: keep-alive is
  // decided by setKeepAlive). The object must already be owned by a
  // shared_ptr: the function keeps it alive until Node finalizes it.
  void init(napi_env env, QueueTarget* target);

  // Any thread.
  bool push(Event&& ev) override;
  bool pushAll(std::vector<Event>& evs) override;
  bool pushAllTakeSpares(std::vector<Event>& evs, std::vector<std::string>& spares,
                         size_t room) override;
  void pushConnect(uint64_t startId, ConnectResult&& result);

  // JS thread: whether the environment's event loop is held open.
  void setKeepAlive(bool on);

  // JS thread, at environment teardown: drops queued and future items and
  // releases the thread-safe function. Idempotent.
  void close();

  size_t queuedBytes() const;
  // Sequence number of the latest push: an item with a higher seq was pushed
  // after this call (used to tell a restarted client's events from the
  // previous session's).
  uint64_t lastSeq() const;

  // The spare strings, for tests and diagnostics: held now, and since
  // init: handed to IO threads, taken back after delivery, freed instead
  // (the list was full).
  struct SpareStats {
    size_t held = 0;
    uint64_t given = 0, kept = 0, freed = 0;
  };
  SpareStats spareStats() const;

 private:
  static void CallJs(napi_env env, napi_value cb, void* context, void* data);
  static void Finalize(napi_env env, void* data, void* hint);
  static void OnIdle(uv_idle_t* handle);
  // Inline delivery: events pushed on the JavaScript thread itself (inline
  // mode: the engine runs on this thread's loop) are delivered from this
  // loop's check phase (right after the poll phase that read them), inside a
  // callback scope, without the thread-safe function. The idle handle only
  // keeps the loop from blocking in poll while some wait (pushed from a
  // timer or close callback, or a slice left over).
  static void OnInlineCheck(uv_check_t* handle);
  static void OnInlineIdle(uv_idle_t* handle);
  void armInline();
  void drainInline();
  void enqueue(QueueItem&& item);
  bool pushEvents(std::vector<Event>& evs, std::vector<std::string>* spares, size_t room);
  // With mu_ held: a slot at the end of the last chunk (a new chunk when it
  // is full).
  QueueItem& appendSlot();
  // JS thread, after a slice: its payloads that JavaScript no longer needs
  // go to returning_ (and from there to spares_ under the lock).
  void collectSpares(std::vector<QueueItem>& batch);
  void schedule();
  // With mu_ held: false (and paused_) over the high-water mark.
  bool withinBudget();
  // Delivers one slice. fromInline: called by drainInline (its handles
  // re-arm a leftover slice, not the thread-safe function's idle handle).
  void drain(napi_env env, bool fromInline = false);

  mutable std::mutex mu_;
  // The items in chunks of at most kMaxBatch: IO threads append to the last
  // one, the JS thread takes the first whole as one slice (no item moved, the
  // lock held for a swap). Neither side ever moves the queued items: a single
  // vector taken whole and refilled grew by doubling under the lock during a
  // flood, each growth moving every item queued (a flood into a client ran
  // 2-4x slower, with the JS thread stalled on the lock).
  std::deque<std::vector<QueueItem>> chunks_;
  std::vector<std::vector<QueueItem>> freeChunks_;  // under mu_, see kKeepChunks
  std::vector<std::string> spares_;  // under mu_, see kMaxSpares
  SpareStats spareStats_;            // under mu_ (held: spares_.size())
  size_t bytes_ = 0;
  bool scheduled_ = false;  // a thread-safe call is pending
  uint64_t seq_ = 0;
  bool paused_ = false;  // push() has refused since the last resume
  bool closed_ = false;

  // JS thread only.
  std::vector<std::string> returning_;
  napi_env env_ = nullptr;
  napi_threadsafe_function tsfn_ = nullptr;
  bool tsfnGone_ = false;  // Node finalized it (teardown order varies)
  bool refd_ = false;
  QueueTarget* target_ = nullptr;
  // Re-arms the thread-safe function one loop turn after a slice: calling it
  // from the slice itself made Node dispatch slice after slice within one
  // callback while events kept coming (timers starved for seconds).
  uv_idle_t* idle_ = nullptr;
  bool idleActive_ = false;
  // Inline delivery (see OnInlineCheck): the JavaScript thread, its handles
  // (unref'd: they never keep the loop alive) and the async context the
  // callback scope is opened with.
  std::thread::id jsThread_;
  uv_check_t* inlineCheck_ = nullptr;
  uv_idle_t* inlineIdle_ = nullptr;
  bool inlineArmed_ = false;
  napi_async_context asyncContext_ = nullptr;
  napi_ref resource_ = nullptr;
};

}  // namespace addon
}  // namespace wsengine
