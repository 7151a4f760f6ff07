#include "deadlines.h"

namespace wsengine {

uint64_t Deadlines::arm(uint64_t ms, void* ctx, Callback fn) {
  if (closed_) return 0;
  if (!timer_) {
    timer_ = new uv_timer_t;
    uv_timer_init(loop_, timer_);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
    timer_->data = this;
  }
  uint64_t due = uv_now(loop_) + (ms < kMaxTimerMs ? ms : kMaxTimerMs);  // never wraps
  if (due == 0) due = 1;  // 0 means "none" to callers
  // Two deadlines of one ctx due in the same millisecond would share a key:
  // the later one moves to the next millisecond (never earlier than asked).
  while (!items_.insert(Item{due, ctx, fn}).second) ++due;
  if (!running_ && (scheduled_ == 0 || due < scheduled_)) reschedule();
  return due;
}

void Deadlines::cancel(uint64_t due, void* ctx) {
  if (due == 0) return;
  items_.erase(Item{due, ctx, nullptr});
  // A stopped timer would only fire for nothing: leave it; run() reschedules.
  if (items_.empty() && timer_ && !running_) {
    uv_timer_stop(timer_);
    scheduled_ = 0;
  }
}

void Deadlines::close() {
  if (closed_) return;
  closed_ = true;
  items_.clear();
  if (timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    timer_ = nullptr;
  }
}

void Deadlines::onTimer(uv_timer_t* t) { static_cast<Deadlines*>(t->data)->run(); }

void Deadlines::run() {
  scheduled_ = 0;
  running_ = true;
  uint64_t now = uv_now(loop_);
  // libuv runs timers before it polls for I/O. After a stall of the loop's
  // thread (an embedder's loop whose JavaScript ran long: inline mode) a
  // deadline that fell due during the stall would fire before the bytes
  // that came in time (a pong, a request, a close reply) are read. Such a
  // deadline waits one loop turn: the poll phase reads first, the next run()
  // fires what is still due. Once only per deadline (polledAfter_), so a
  // loop that stalls on every turn still times its peers out.
  constexpr uint64_t kStallMs = 20;
  bool makeWay = false;
  // Each due item is taken out before its callback runs: the callback may
  // arm or cancel others (its own object's included), or close().
  while (!items_.empty() && !closed_) {
    auto it = items_.begin();
    if (it->due > now) break;
    if (it->due > polledAfter_ && now > it->due + kStallMs) {
      makeWay = true;
      break;
    }
    Item item = *it;
    items_.erase(it);
    item.fn(item.ctx);
  }
  running_ = false;
  if (closed_) return;
  if (makeWay) {
    polledAfter_ = now;
    uv_timer_start(timer_, &Deadlines::onTimer, 1, 0);
    scheduled_ = now + 1;
    return;
  }
  reschedule();
}

void Deadlines::reschedule() {
  if (items_.empty()) {
    if (scheduled_) uv_timer_stop(timer_);
    scheduled_ = 0;
    return;
  }
  uint64_t due = items_.begin()->due;
  uint64_t now = uv_now(loop_);
  uv_timer_start(timer_, &Deadlines::onTimer, due > now ? due - now : 0, 0);
  scheduled_ = due;
}

}  // namespace wsengine
