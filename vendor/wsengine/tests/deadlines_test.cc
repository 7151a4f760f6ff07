// Deadlines on a private libuv loop run by the test: callbacks fire once, in
// due order, not before their time; cancel() drops exactly the deadline it
// names; a callback may arm and cancel others (and its own object again);
// two deadlines of one object in the same millisecond both fire; the timer
// handle does not keep the loop alive; close() drops what is armed; after a
// stall of the loop's thread, what arrived during it is read before a
// deadline that fell due meanwhile fires.
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "check.h"
#include "deadlines.h"

using namespace wsengine;

namespace {

struct Probe {
  std::vector<std::string>* log;
  std::string name;
  uint64_t firedAt = 0;
  int fired = 0;
  uv_loop_t* loop = nullptr;
  std::function<void()> then;
};

void onDue(void* ctx) {
  auto* p = static_cast<Probe*>(ctx);
  ++p->fired;
  p->firedAt = uv_now(p->loop);
  p->log->push_back(p->name);
  if (p->then) p->then();
}

// Runs the loop while `keep` is active (a ref'd timer bounds every test).
void runFor(uv_loop_t* loop, uint64_t ms) {
  uv_timer_t stop;
  uv_timer_init(loop, &stop);
  uv_timer_start(&stop, [](uv_timer_t* t) { uv_stop(t->loop); }, ms, 0);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close(reinterpret_cast<uv_handle_t*>(&stop), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
}

void testOrderAndCancel() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Probe a{&log, "a"}, b{&log, "b"}, c{&log, "c"}, d{&log, "d"};
  for (Probe* p : {&a, &b, &c, &d}) p->loop = &loop;
  Deadlines dl(&loop);
  uv_update_time(&loop);
  uint64_t start = uv_now(&loop);
  uint64_t dueC = dl.arm(60, &c, onDue);
  uint64_t dueA = dl.arm(20, &a, onDue);
  dl.arm(40, &b, onDue);
  uint64_t dueD = dl.arm(30, &d, onDue);
  CHECK(dueA != 0 && dueC != 0 && dueD != 0);
  CHECK_EQ(dl.armed(), size_t(4));
  dl.cancel(dueD, &d);
  dl.cancel(dueD, &a);  // another object's key: a stays armed
  CHECK_EQ(dl.armed(), size_t(3));
  runFor(&loop, 200);
  CHECK_EQ(log.size(), size_t(3));
  if (log.size() == 3) {
    CHECK_EQ(log[0], std::string("a"));
    CHECK_EQ(log[1], std::string("b"));
    CHECK_EQ(log[2], std::string("c"));
  }
  CHECK_EQ(d.fired, 0);
  CHECK(a.firedAt >= start + 20);
  CHECK(b.firedAt >= start + 40);
  CHECK(c.firedAt >= start + 60);
  CHECK_EQ(dl.armed(), size_t(0));
  dl.cancel(dueC, &c);  // already ran: nothing happens
  dl.close();
  runFor(&loop, 1);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

void testReentrant() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Deadlines dl(&loop);
  Probe a{&log, "a"}, b{&log, "b"}, c{&log, "c"};
  for (Probe* p : {&a, &b, &c}) p->loop = &loop;
  uint64_t dueB = 0;
  // a (10 ms) cancels b (due at the same time or later), re-arms itself once
  // for 30 ms, and arms c for 0 ms (due in the same run).
  a.then = [&] {
    dl.cancel(dueB, &b);
    if (a.fired == 1) {
      dl.arm(30, &a, onDue);
      dl.arm(0, &c, onDue);
    }
  };
  uv_update_time(&loop);
  dl.arm(10, &a, onDue);
  dueB = dl.arm(15, &b, onDue);
  runFor(&loop, 200);
  CHECK_EQ(a.fired, 2);
  CHECK_EQ(b.fired, 0);
  CHECK_EQ(c.fired, 1);
  CHECK_EQ(log.size(), size_t(3));
  if (log.size() == 3) {
    CHECK_EQ(log[0], std::string("a"));
    CHECK_EQ(log[1], std::string("c"));
    CHECK_EQ(log[2], std::string("a"));
  }
  dl.close();
  runFor(&loop, 1);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

void testSameMillisecond() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Deadlines dl(&loop);
  Probe a{&log, "a"};
  a.loop = &loop;
  uv_update_time(&loop);
  uint64_t d1 = dl.arm(5, &a, onDue);
  uint64_t d2 = dl.arm(5, &a, onDue);
  CHECK(d1 != d2);
  CHECK_EQ(dl.armed(), size_t(2));
  runFor(&loop, 100);
  CHECK_EQ(a.fired, 2);
  dl.close();
  runFor(&loop, 1);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

void testUnrefAndClose() {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Deadlines dl(&loop);
  Probe a{&log, "a"};
  a.loop = &loop;
  dl.arm(10000, &a, onDue);
  // Nothing else is active: the armed deadline alone must not hold the loop.
  uint64_t t0 = uv_hrtime();
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK((uv_hrtime() - t0) / 1000000 < 1000);
  CHECK_EQ(a.fired, 0);
  dl.close();
  CHECK_EQ(dl.armed(), size_t(0));
  CHECK_EQ(dl.arm(1, &a, onDue), uint64_t(0));  // closed: nothing armed
  runFor(&loop, 20);
  CHECK_EQ(a.fired, 0);
  CHECK_EQ(uv_loop_close(&loop), 0);
}


// The loop's thread stalls (an embedder's loop whose JavaScript ran long: the
// inline mode) in its check phase, after the poll, as Node runs setImmediate.
// A deadline that fell due during the stall gives the poll phase one turn:
// an answer that arrived during the stall is read, and cancels it, first.
// Without an answer the deadline fires one turn late, also when the loop
// stalls on every turn.
struct Stall {
  uv_loop_t* loop = nullptr;
  Deadlines* dl = nullptr;
  Probe* probe = nullptr;
  int fds[2] = {-1, -1};
  uint64_t due = 0;
  int stalls = 0;
  int maxStalls = 1;
  bool answer = false;
  bool read = false;
};

void stallCase(bool answer, int maxStalls, int* fired, bool* read, uint64_t* lateBy) {
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Deadlines dl(&loop);
  Probe a{&log, "a"};
  a.loop = &loop;
  Stall st;
  st.loop = &loop;
  st.dl = &dl;
  st.probe = &a;
  st.answer = answer;
  st.maxStalls = maxStalls;
  CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, st.fds), 0);
  uv_poll_t poll;
  uv_poll_init(&loop, &poll, st.fds[0]);
  poll.data = &st;
  uv_poll_start(&poll, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* s = static_cast<Stall*>(h->data);
    char b[8];
    if (::read(s->fds[0], b, sizeof b) > 0) {
      s->read = true;
      s->dl->cancel(s->due, s->probe);  // the pong: nothing to time out
    }
  });
  uv_check_t check;
  uv_check_init(&loop, &check);
  check.data = &st;
  uv_check_start(&check, [](uv_check_t* h) {
    auto* s = static_cast<Stall*>(h->data);
    if (s->stalls >= s->maxStalls) return;
    ++s->stalls;
    usleep(100 * 1000);
    // The peer answered during the stall: the bytes wait in the socket.
    if (s->answer && s->stalls == 1) CHECK_EQ(::write(s->fds[1], "x", 1), ssize_t(1));
  });
  uv_update_time(&loop);
  uint64_t start = uv_now(&loop);
  st.due = dl.arm(10, &a, onDue);
  runFor(&loop, 700);
  *fired = a.fired;
  *read = st.read;
  *lateBy = a.fired ? a.firedAt - start : 0;
  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&check), nullptr);
  dl.close();
  runFor(&loop, 1);
  close(st.fds[0]);
  close(st.fds[1]);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

void testStallReadsFirst() {
  int fired = 0;
  bool read = false;
  uint64_t at = 0;
  stallCase(true, 1, &fired, &read, &at);
  CHECK(read);
  CHECK_EQ(fired, 0);  // fired before the read: the peer was timed out
  stallCase(false, 1, &fired, &read, &at);
  CHECK(!read);
  CHECK_EQ(fired, 1);
  CHECK(at >= 100 && at < 400);
  stallCase(false, 1000, &fired, &read, &at);  // stalls on every turn
  CHECK_EQ(fired, 1);
  CHECK(at >= 100 && at < 400);  // at most one more stall late
}

}  // namespace

// A wait beyond any real one (an option of 1e300 seconds: "never") is capped,
// never wrapped around into the past: due = now + 2^64-1 used to be now - 1,
// and the deadline fired at once.
void testHugeWaits() {
  CHECK_EQ(secondsToMs(1e300), kMaxTimerMs);
  CHECK_EQ(secondsToMs(1.0 / 0.0), kMaxTimerMs);
  CHECK_EQ(secondsToMs(0.0 / 0.0), uint64_t(0));
  CHECK_EQ(secondsToMs(-1), uint64_t(0));
  CHECK_EQ(secondsToMs(2.5), uint64_t(2500));
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::vector<std::string> log;
  Probe a{&log, "a"}, b{&log, "b"};
  a.loop = b.loop = &loop;
  Deadlines dl(&loop);
  uv_update_time(&loop);
  uint64_t dueA = dl.arm(UINT64_MAX, &a, onDue);
  uint64_t dueB = dl.arm(UINT64_MAX - uv_now(&loop) + 1, &b, onDue);
  CHECK(dueA > uv_now(&loop) && dueB > uv_now(&loop));
  runFor(&loop, 50);
  CHECK_EQ(a.fired + b.fired, 0);
  CHECK_EQ(dl.armed(), size_t(2));
  dl.cancel(dueA, &a);
  dl.cancel(dueB, &b);
  CHECK_EQ(dl.armed(), size_t(0));
  dl.close();
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ(uv_loop_close(&loop), 0);
}

int main() {
  testOrderAndCancel();
  testHugeWaits();
  testReentrant();
  testSameMillisecond();
  testUnrefAndClose();
  testStallReadsFirst();
  return check::finish();
}
