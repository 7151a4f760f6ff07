#include "event_queue.h"

#include <utility>

namespace wsengine {
namespace addon {

namespace {

// Approximate heap bytes an event holds while queued: a payload's capacity,
// not its size (a string can hold far more than the message in it: a spare
// reused for a smaller message, an inflater's slice; counting the size let a
// flood of tiny compressed messages hold 2.8 GiB under the 64 MiB budget).
size_t costOf(const Event& ev) {
  size_t n = sizeof(QueueItem) + ev.data.capacity() + ev.uri.size() + ev.reason.size();
  for (const auto& h : ev.headers) n += h.first.size() + h.second.size() + 64;
  return n;
}

size_t costOf(const ConnectResult& r) {
  size_t n = sizeof(QueueItem) + r.errorStr.size() + r.uri.size();
  for (const auto& h : r.headers) n += h.first.size() + h.second.size() + 64;
  return n;
}

}  // namespace

void EventQueue::init(napi_env env, QueueTarget* target) {
  env_ = env;
  target_ = target;
  jsThread_ = std::this_thread::get_id();
  napi_value name;
  napi_create_string_utf8(env, "ix-websocket events", NAPI_AUTO_LENGTH, &name);
  // Unlimited queue, one owning "thread" (this object); data is always null:
  // the items live in chunks_ so one call can carry any number of them. The
  // context is the raw pointer: `keep` keeps it valid until Finalize.
  auto* keep = new std::shared_ptr<EventQueue>(shared_from_this());
  napi_status st = napi_create_threadsafe_function(env, nullptr, nullptr, name, 0, 1, keep,
                                                   &EventQueue::Finalize, this,
                                                   &EventQueue::CallJs, &tsfn_);
  if (st != napi_ok) {
    delete keep;
    tsfn_ = nullptr;
    napi_throw_error(env, nullptr, "ix-websocket: cannot create the event queue");
    return;
  }
  napi_unref_threadsafe_function(env, tsfn_);
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) == napi_ok && loop != nullptr) {
    idle_ = new uv_idle_t;
    if (uv_idle_init(loop, idle_) != 0) {
      delete idle_;
      idle_ = nullptr;
      return;
    }
    idle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(idle_));  // like the function
    inlineCheck_ = new uv_check_t;
    inlineIdle_ = new uv_idle_t;
    uv_check_init(loop, inlineCheck_);
    uv_idle_init(loop, inlineIdle_);
    inlineCheck_->data = this;
    inlineIdle_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(inlineCheck_));
    uv_unref(reinterpret_cast<uv_handle_t*>(inlineIdle_));
    napi_value resource, resName;
    if (napi_create_object(env, &resource) == napi_ok &&
        napi_create_string_utf8(env, "ix-websocket:inline", NAPI_AUTO_LENGTH, &resName) ==
            napi_ok &&
        napi_create_reference(env, resource, 1, &resource_) == napi_ok &&
        napi_async_init(env, resource, resName, &asyncContext_) != napi_ok) {
      asyncContext_ = nullptr;
    }
  }
}

void EventQueue::enqueue(QueueItem&& item) {
  // Called with mu_ held.
  bytes_ += item.cost;
  item.seq = ++seq_;
  appendSlot() = std::move(item);
  schedule();
}

void EventQueue::schedule() {
  // Called with mu_ held. Pushed on the JavaScript thread (inline mode):
  // delivered from this loop's check phase, no thread-safe call.
  if (inlineCheck_ != nullptr && asyncContext_ != nullptr &&
      std::this_thread::get_id() == jsThread_) {
    armInline();
    return;
  }
  // At most one call is pending: everything that piles up meanwhile rides
  // on it.
  if (!scheduled_ && tsfn_ != nullptr) {
    scheduled_ = true;
    napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
  }
}

bool EventQueue::push(Event&& ev) {
  QueueItem item;
  item.kind = QueueItem::Kind::Event;
  item.cost = costOf(ev);
  item.event = std::move(ev);
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return true;  // environment gone: nobody will read it
  enqueue(std::move(item));
  return withinBudget();
}

bool EventQueue::withinBudget() {
  if (bytes_ <= kHighWater) return true;
  paused_ = true;
  return false;
}

bool EventQueue::pushAll(std::vector<Event>& evs) { return pushEvents(evs, nullptr, 0); }

bool EventQueue::pushAllTakeSpares(std::vector<Event>& evs, std::vector<std::string>& spares,
                                   size_t room) {
  return pushEvents(evs, &spares, room);
}

bool EventQueue::pushEvents(std::vector<Event>& evs, std::vector<std::string>* spares,
                            size_t room) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    evs.clear();
    return true;
  }
  // Spare strings go back to the pushing thread under the lock it takes
  // anyway (the latest given back first: the warmest memory).
  if (spares != nullptr) {
    size_t n = room < spares_.size() ? room : spares_.size();
    for (size_t i = 0; i < n; ++i) {
      spares->push_back(std::move(spares_.back()));
      spares_.pop_back();
    }
    spareStats_.given += n;
  }
  if (evs.empty()) return withinBudget();
  // One lock for the lot, each item built in place.
  for (auto& ev : evs) {
    QueueItem& item = appendSlot();
    item.kind = QueueItem::Kind::Event;
    item.cost = costOf(ev);
    item.event = std::move(ev);
    item.seq = ++seq_;
    bytes_ += item.cost;
  }
  evs.clear();
  schedule();
  return withinBudget();
}

QueueItem& EventQueue::appendSlot() {
  // Called with mu_ held. A full (or no) last chunk: a kept one if any (its
  // storage already grown), else a fresh one that grows to kMaxBatch items.
  if (chunks_.empty() || chunks_.back().size() >= kMaxBatch) {
    if (!freeChunks_.empty()) {
      chunks_.push_back(std::move(freeChunks_.back()));
      freeChunks_.pop_back();
    } else {
      chunks_.emplace_back();
    }
  }
  std::vector<QueueItem>& chunk = chunks_.back();
  chunk.emplace_back();
  return chunk.back();
}

void EventQueue::pushConnect(uint64_t startId, ConnectResult&& result) {
  QueueItem item;
  item.kind = QueueItem::Kind::Connect;
  item.startId = startId;
  item.cost = costOf(result);
  item.connect = std::move(result);
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return;
  enqueue(std::move(item));
}

void EventQueue::armInline() {
  // JS thread only (the handles are this loop's).
  if (inlineArmed_) return;
  inlineArmed_ = true;
  uv_check_start(inlineCheck_, &EventQueue::OnInlineCheck);
  uv_idle_start(inlineIdle_, &EventQueue::OnInlineIdle);
}

void EventQueue::OnInlineCheck(uv_check_t* handle) {
  static_cast<EventQueue*>(handle->data)->drainInline();
}

void EventQueue::OnInlineIdle(uv_idle_t* handle) {
  static_cast<EventQueue*>(handle->data)->drainInline();
}

void EventQueue::drainInline() {
  if (closed_ || asyncContext_ == nullptr) return;
  // A shared_ptr for the duration: the delivered JavaScript may end the
  // environment's use of this queue (nothing may free it under us).
  std::shared_ptr<EventQueue> hold = shared_from_this();
  napi_env env = env_;
  bool ran = false;
  napi_handle_scope hs;
  if (napi_open_handle_scope(env, &hs) == napi_ok) {
    napi_value resource = nullptr;
    napi_callback_scope cs = nullptr;
    if (napi_get_reference_value(env, resource_, &resource) == napi_ok && resource != nullptr &&
        napi_open_callback_scope(env, resource, asyncContext_, &cs) == napi_ok) {
      drain(env, true);
      ran = true;
      // Closing the scope runs process.nextTick callbacks and microtasks, as
      // after any I/O callback of Node's.
      napi_close_callback_scope(env, cs);
    }
    napi_close_handle_scope(env, hs);
  }
  bool more;
  {
    std::lock_guard<std::mutex> lock(mu_);
    // JavaScript cannot run (a worker being terminated): disarm rather than
    // spin; what is queued is dropped at the teardown that follows.
    more = ran && !closed_ && !chunks_.empty();
  }
  if (!more && inlineArmed_ && inlineCheck_ != nullptr) {
    inlineArmed_ = false;
    uv_check_stop(inlineCheck_);
    uv_idle_stop(inlineIdle_);
  }
}

void EventQueue::CallJs(napi_env env, napi_value, void* context, void*) {
  // env is null when Node empties the queue of a closing function.
  if (env == nullptr || context == nullptr) return;
  static_cast<EventQueue*>(context)->drain(env);
}

void EventQueue::Finalize(napi_env, void* data, void*) {
  auto* keep = static_cast<std::shared_ptr<EventQueue>*>(data);
  {
    EventQueue* self = keep->get();
    std::lock_guard<std::mutex> lock(self->mu_);
    self->closed_ = true;
    self->tsfnGone_ = true;
    self->tsfn_ = nullptr;
  }
  delete keep;
}

void EventQueue::drain(napi_env env, bool fromInline) {
  // The slice is the first chunk, taken whole (no item moved) and delivered
  // from this local vector: the delivered JavaScript may close the queue.
  std::vector<QueueItem> batch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    if (!chunks_.empty()) {
      batch.swap(chunks_.front());
      chunks_.pop_front();
    }
    if (idle_ == nullptr && !fromInline) {
      // No handle of our own: the rest goes on a fresh call.
      scheduled_ = !chunks_.empty();
      if (scheduled_) napi_call_threadsafe_function(tsfn_, nullptr, napi_tsfn_nonblocking);
    }
    // Otherwise scheduled_ stays set, so pushes meanwhile do not call the
    // function either: OnIdle decides on the next loop turn.
  }
  size_t cost = 0;
  for (const auto& item : batch) cost += item.cost;
  if (!batch.empty() && target_ != nullptr) target_->deliver(env, batch);
  collectSpares(batch);
  batch.clear();  // the items' other members, outside the lock

  // Charged until delivered, so a slow consumer holds the IO threads back.
  bool resume = false;
  bool more = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) {
      returning_.clear();
      return;
    }
    bytes_ -= cost;
    if (paused_ && bytes_ < kLowWater) {
      paused_ = false;
      resume = true;
    }
    if (idle_ != nullptr) {
      // Events that came during the slice wait for the next loop turn (no
      // wake-up needed: scheduled_ is still set); with none, the next push
      // calls the function again, and an idle loop sleeps meanwhile.
      more = !chunks_.empty();
      if (!more) scheduled_ = false;
    }
    // The chunk's storage serves a later one (a few kept: see kKeepChunks).
    if (batch.capacity() > 0 && freeChunks_.size() < kKeepChunks)
      freeChunks_.push_back(std::move(batch));
    // The payloads go back to the IO threads (bounded: the rest are freed
    // below, outside the lock).
    size_t k = 0;
    while (k < returning_.size() && spares_.size() < kMaxSpares)
      spares_.push_back(std::move(returning_[k++]));
    spareStats_.kept += k;
    spareStats_.freed += returning_.size() - k;
  }
  returning_.clear();
  // A slice left over waits for the next loop turn: the inline handles
  // take it when armed (they stay so while items remain), else OnIdle.
  if (more && !idleActive_ && !inlineArmed_ && !fromInline) {
    idleActive_ = true;
    uv_idle_start(idle_, &EventQueue::OnIdle);
  }
  if (resume && target_ != nullptr) target_->resumeAll();
}

void EventQueue::collectSpares(std::vector<QueueItem>& batch) {
  // Delivery has copied every payload it kept (into a slab, a JavaScript
  // string or a Buffer of V8's); a payload handed to JavaScript as an
  // external Buffer was moved out of its event (convert.cc, 64 KiB and
  // more), so what is left here is owned by the event alone. Strings that
  // live inside the std::string object (no heap memory) are not worth it.
  static const size_t kInline = std::string().capacity();
  for (QueueItem& item : batch) {
    if (item.kind != QueueItem::Kind::Event) continue;
    std::string& d = item.event.data;
    const size_t cap = d.capacity();
    if (cap <= kInline || cap > kSpareCapacity) continue;
    d.clear();  // no byte of an old payload stays readable
    returning_.push_back(std::move(d));
  }
}

void EventQueue::OnIdle(uv_idle_t* handle) {
  auto* self = static_cast<EventQueue*>(handle->data);
  uv_idle_stop(handle);
  self->idleActive_ = false;
  std::lock_guard<std::mutex> lock(self->mu_);
  if (self->closed_ || self->tsfn_ == nullptr) return;
  self->scheduled_ = !self->chunks_.empty();
  if (self->scheduled_) napi_call_threadsafe_function(self->tsfn_, nullptr, napi_tsfn_nonblocking);
}

void EventQueue::setKeepAlive(bool on) {
  if (tsfn_ == nullptr || tsfnGone_ || on == refd_) return;
  if (on) {
    napi_ref_threadsafe_function(env_, tsfn_);
    if (idle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(idle_));
  } else {
    napi_unref_threadsafe_function(env_, tsfn_);
    if (idle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  }
  refd_ = on;
}

void EventQueue::close() {
  napi_threadsafe_function fn = nullptr;
  std::deque<std::vector<QueueItem>> dropped;
  std::vector<std::vector<QueueItem>> droppedFree;
  std::vector<std::string> droppedSpares;
  if (idle_ != nullptr) {
    // Closed along with the environment's own handles during its teardown
    // (even when Node finalized the function first).
    uv_close(reinterpret_cast<uv_handle_t*>(idle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    idle_ = nullptr;
    idleActive_ = false;
  }
  if (inlineCheck_ != nullptr) {
    uv_close(reinterpret_cast<uv_handle_t*>(inlineCheck_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
    uv_close(reinterpret_cast<uv_handle_t*>(inlineIdle_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_idle_t*>(h); });
    inlineCheck_ = nullptr;
    inlineIdle_ = nullptr;
    inlineArmed_ = false;
  }
  if (asyncContext_ != nullptr) {
    napi_async_destroy(env_, asyncContext_);
    asyncContext_ = nullptr;
  }
  if (resource_ != nullptr) {
    napi_delete_reference(env_, resource_);
    resource_ = nullptr;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ && tsfn_ == nullptr) return;
    closed_ = true;
    dropped.swap(chunks_);
    droppedFree.swap(freeChunks_);
    droppedSpares.swap(spares_);
    bytes_ = 0;
    if (!tsfnGone_) fn = tsfn_;
    tsfn_ = nullptr;
  }
  target_ = nullptr;
  // Abort: queued calls are discarded; IO threads never call it again since
  // closed_ is set under the same lock they take.
  if (fn != nullptr) napi_release_threadsafe_function(fn, napi_tsfn_abort);
}

EventQueue::SpareStats EventQueue::spareStats() const {
  std::lock_guard<std::mutex> lock(mu_);
  SpareStats st = spareStats_;
  st.held = spares_.size();
  return st;
}

uint64_t EventQueue::lastSeq() const {
  std::lock_guard<std::mutex> lock(mu_);
  return seq_;
}

size_t EventQueue::queuedBytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

}  // namespace addon
}  // namespace wsengine
