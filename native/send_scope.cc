#include "send_scope.h"

#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

namespace {
// As in delivery.cc: the first few small frames of a scope are written at
// once (latency of a lone message), the rest coalesced.
constexpr unsigned kPassThrough = 8;
}  // namespace

void SendScope::flushNow() { flushCorked(); }

namespace {
void clearPending(napi_env env) {
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}
}  // namespace

bool SendScope::prepare(napi_env env) {
  if (closer_ != nullptr) return true;
  // A promise resolved once, its `then`, and the native closer: each scope
  // then costs one call of then(closer), a V8 promise reaction job (the
  // same queue as queueMicrotask, without its async-hooks resource, and out
  // of reach of fake-timer libraries that replace queueMicrotask).
  napi_deferred deferred;
  napi_value promise, undefined, then, fn;
  napi_valuetype type;
  if (napi_create_promise(env, &deferred, &promise) != napi_ok) return false;
  if (napi_get_undefined(env, &undefined) != napi_ok ||
      napi_resolve_deferred(env, deferred, undefined) != napi_ok ||
      napi_get_named_property(env, promise, "then", &then) != napi_ok ||
      napi_typeof(env, then, &type) != napi_ok || type != napi_function ||
      napi_create_function(env, "ixwsCloseSendScope", NAPI_AUTO_LENGTH, &SendScope::OnMicrotask, this,
                           &fn) != napi_ok ||
      napi_create_reference(env, promise, 1, &promise_) != napi_ok ||
      napi_create_reference(env, then, 1, &then_) != napi_ok ||
      napi_create_reference(env, fn, 1, &closer_) != napi_ok) {
    clearPending(env);
    return false;
  }
  return true;
}

void SendScope::open(napi_env env) {
  if (!microtaskQueued_) {
    // The closer is queued first: when it cannot be (the environment is
    // going away), nothing is corked and the send is written as it would
    // be uncorked.
    napi_value promise, then, fn, result;
    if (!prepare(env) || napi_get_reference_value(env, promise_, &promise) != napi_ok ||
        napi_get_reference_value(env, then_, &then) != napi_ok ||
        napi_get_reference_value(env, closer_, &fn) != napi_ok || promise == nullptr ||
        then == nullptr || fn == nullptr ||
        napi_call_function(env, promise, then, 1, &fn, &result) != napi_ok) {
      clearPending(env);
      return;
    }
    microtaskQueued_ = true;
  }
  cork(kPassThrough);
  open_ = true;
}

void SendScope::close() {
  if (!open_) return;
  open_ = false;
  uncork();
}

napi_value SendScope::OnMicrotask(napi_env env, napi_callback_info info) {
  void* data = nullptr;
  napi_get_cb_info(env, info, nullptr, nullptr, nullptr, &data);
  auto* self = static_cast<SendScope*>(data);
  self->microtaskQueued_ = false;
  self->close();
  return nullptr;
}

void SendScope::shutdown() {
  close();
  // The references belong to the environment that is ending; Node frees
  // them with it.
  promise_ = then_ = closer_ = nullptr;
}

}  // namespace addon
}  // namespace wsengine
