#include "instance.h"

#include <memory>
#include <optional>
#include <utility>

#include "convert.h"

namespace wsengine {
namespace addon {

namespace {
const Key kJsKeys[] = {Key::method, Key::worker, Key::window, Key::process};
}  // namespace

// ---- JsValues ----

void JsValues::init(Napi::Env env) { holder_ = Napi::Persistent(Napi::Object::New(env)); }

JsValues::Given JsValues::read(Keys& keys, const Napi::Object& src, PresenceMask present) {
  Given g;
  Napi::Value* out[] = {&g.method, &g.worker, &g.window, &g.process};
  for (int i = 0; i < 4; ++i) {
    if (present & Keys::bit(kJsKeys[i])) *out[i] = keys.get(src, kJsKeys[i]);
  }
  return g;
}

void JsValues::apply(Keys& keys, const Given& g) {
  Napi::Object h = holder_.Value();
  const Napi::Value* values[] = {&g.method, &g.worker, &g.window, &g.process};
  for (int i = 0; i < 4; ++i) {
    if (!values[i]->IsEmpty() && !values[i]->IsUndefined()) keys.set(h, kJsKeys[i], *values[i]);
  }
}

void JsValues::writeTo(Keys& keys, const Napi::Object& out) const {
  Napi::Object h = holder_.Value();
  for (Key key : kJsKeys) {
    if (h.HasOwnProperty(keys[key])) keys.set(out, key, keys.get(h, key));
  }
}

// ---- Instance ----

Instance::Instance(Napi::Env env)
    : env_(env), queue_(std::make_shared<EventQueue>()), delivery_(*this) {
  keyStore_.init(env);
  factories_.init(env);
  queue_->init(env, this);
  // Added after the thread-safe function exists: hooks run in reverse order,
  // so ours runs while that function is still alive.
  if (napi_add_env_cleanup_hook(env, &Instance::CleanupHook, this) == napi_ok) hookAdded_ = true;
}

Instance::~Instance() {
  if (hookAdded_) napi_remove_env_cleanup_hook(env_, &Instance::CleanupHook, this);
  shutdown();
}

void Instance::CleanupHook(void* arg) {
  auto* self = static_cast<Instance*>(arg);
  self->hookAdded_ = false;
  self->shutdown();
}

void Instance::shutdown() {
  if (shut_) return;
  shut_ = true;
  delivery_.noteChange();
  queue_->close();
  // What was sent in the last task goes out (its microtask may never run).
  sendScope_.shutdown();
  SendScope::flushNow();
  // Hard-close everything at once: no waiting on peers at exit.
  for (int ref : servers_.refs()) {
    if (ServerEntry* s = servers_.find(ref)) s->engine->clear();
  }
  for (int ref : clients_.refs()) {
    if (ClientEntry* c = clients_.find(ref)) c->engine->clear();
  }
  starts_.clear();
  servers_.clear();
  clients_.clear();
  owners_.clear();
  // Inline objects closed their handles on this loop just now (their stop
  // runs at once on this thread); the loop's own wake-up handle goes last.
  // The environment's teardown runs the loop once more for the callbacks.
  closeEmbeddedLoop(loop_);
}

std::shared_ptr<IoLoop> Instance::embeddedLoop() {
  if (loop_ || shut_) return loop_;
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env_, &loop) != napi_ok || loop == nullptr) return nullptr;
  loop_ = embedLoop(loop);
  return loop_;
}

template <class E>
E* Instance::add(RefTable<E>& table) {
  auto entry = std::make_unique<E>();
  entry->tag = nextTag_++;
  entry->js.init(Napi::Env(env_));
  entry->engine = std::make_unique<typename E::Engine>(queue_, entry->tag);
  E* raw = entry.get();
  raw->ref = table.add(std::move(entry));
  owners_[raw->tag] = raw->ref;
  return raw;
}
template ServerEntry* Instance::add(RefTable<ServerEntry>&);
template ClientEntry* Instance::add(RefTable<ClientEntry>&);

bool Instance::clearServer(int ref) {
  std::unique_ptr<ServerEntry> s = servers_.take(ref);
  if (!s) return false;
  owners_.erase(s->tag);  // its queued events are dropped from now on
  delivery_.noteChange();
  SendScope::flushNow();  // what this task sent goes out before the hard close
  s->engine->clear();
  updateKeepAlive();
  return true;
}

bool Instance::clearClient(int ref) {
  std::unique_ptr<ClientEntry> c = clients_.take(ref);
  if (!c) return false;
  owners_.erase(c->tag);
  delivery_.noteChange();
  SendScope::flushNow();
  c->engine->clear();
  updateKeepAlive();
  // A start still waiting would otherwise never settle.
  std::vector<PendingStart> orphans;
  for (auto it = starts_.begin(); it != starts_.end();) {
    if (it->second.tag == c->tag) {
      orphans.push_back(it->second);
      it = starts_.erase(it);
    } else {
      ++it;
    }
  }
  if (orphans.empty()) return true;
  Keys keys{Napi::Env(env_)};
  for (auto& p : orphans) {
    ConnectResult r;
    r.errorStr = "Client cleared";
    r.uri = c->config.opts.url;
    p.deferred.Resolve(connectStatus(keys, r));
  }
  return true;
}

uint64_t Instance::addPendingStart(const Napi::Promise::Deferred& deferred, uint64_t tag) {
  uint64_t id = nextStartId_++;
  starts_.emplace(id, PendingStart{deferred, tag});
  return id;
}

std::optional<PendingStart> Instance::takePendingStart(uint64_t id) {
  auto it = starts_.find(id);
  if (it == starts_.end()) return std::nullopt;
  std::optional<PendingStart> p(std::move(it->second));
  starts_.erase(it);
  return p;
}

void Instance::updateKeepAlive() {
  if (shut_) return;
  bool any = false;
  // Stopped ones too while a close event they owe is to come (instance.h).
  for (int ref : servers_.refs()) {
    ServerEntry* s = servers_.find(ref);
    any = any || ((s->started || s->conns.size() > 0) && s->keepAlive);
  }
  for (int ref : clients_.refs()) {
    ClientEntry* c = clients_.find(ref);
    any = any || ((c->started || c->openDelivered) && c->keepAlive);
  }
  // A start whose Promise is still to settle: stopped before its result was
  // delivered (the result is queued), `await start()` must still resolve.
  for (const auto& pending : starts_) {
    ClientEntry* c = clientByTag(pending.second.tag);
    any = any || (c != nullptr && c->keepAlive);
  }
  queue_->setKeepAlive(any);
}

void Instance::resumeAll() {
  if (shut_) return;
  for (int ref : servers_.refs()) servers_.find(ref)->engine->resumeReading();
  for (int ref : clients_.refs()) clients_.find(ref)->engine->resumeReading();
}

}  // namespace addon
}  // namespace wsengine
