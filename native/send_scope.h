// Sends made outside event delivery (from a timer, a promise continuation,
// an I/O callback such as the Redis bus's) are corked like the ones made
// while a batch of events is delivered: the first such send of a
// JavaScript task opens a scope (wsengine::cork), and the scope closes at
// the end of that task, when the microtask queued at its opening runs
// (wsengine::uncork): N messages to a connection in one task become one
// system call instead of N. JS thread only; one per environment.
//
// Why a microtask (a promise reaction: then(closer) on a promise resolved
// once; see send_scope.cc):
// - It runs when the current task's JavaScript has returned and before
//   anything else happens on the event loop (no later turn, no timer, no
//   I/O callback): the latency added to a corked frame is the rest of the
//   current task, never more. A uv_check or idle handle would wait for the
//   loop's next phase, behind other timers and callbacks.
// - `send(); await x; send()` is two scopes: the continuation after the
//   await is a microtask queued after ours, so the first send is written
//   before the code after the await runs.
// - It runs even when the task throws after sending: Node drains the
//   microtask queue after an uncaught exception has been handled.
// - Node-API has no call that queues a microtask; one JS call per scope
//   (not per send) costs less than the system call it saves.
// The first kPassThrough small frames of a scope are still written at once
// (wsengine.h, cork's passThrough): a lone reply or notification from a
// timer leaves without waiting for the end of the task.
#pragma once

#include "napi_config.h"

namespace wsengine {
namespace addon {

class SendScope {
 public:
  // Before a send, publish or broadcast: opens the scope unless one is open
  // or a batch of events is being delivered (Delivery corks that itself).
  void enter(napi_env env) {
    if (open_ || delivering_ > 0) return;
    open(env);
  }
  // Writes what this thread has corked now (scope or delivery), staying
  // corked: before a stop, clear or close, so that frames accepted earlier
  // in the task go out ahead of the close instead of being dropped with it.
  static void flushNow();
  // Event delivery in progress (Instance::deliver): it corks on its own.
  void beginDelivery() { ++delivering_; }
  void endDelivery() { --delivering_; }
  // Environment teardown: close an open scope (its microtask may never run).
  void shutdown();

 private:
  bool prepare(napi_env env);
  void open(napi_env env);
  void close();
  static napi_value OnMicrotask(napi_env env, napi_callback_info info);

  bool open_ = false;
  bool microtaskQueued_ = false;
  int delivering_ = 0;
  // Made at the first scope: a resolved promise, its then(), and the native
  // function given to it.
  napi_ref promise_ = nullptr;
  napi_ref then_ = nullptr;
  napi_ref closer_ = nullptr;
};

}  // namespace addon
}  // namespace wsengine
