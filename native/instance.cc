#include "instance.h"

#include <algorithm>
#include <cstring>

#include <exception>
#include <memory>
#include <utility>

#include "convert.h"

namespace wsengine {
namespace addon {

namespace {
// Small frames written at once in each delivered batch (see deliver).
constexpr unsigned kCorkPassThrough = 8;
// Binary payloads up to kSliceMax share slabs of kSlabSize (see planSlabs):
// a kept message pins at most one slab.
constexpr size_t kSliceMax = 4096;
constexpr size_t kSlabSize = 64 * 1024;
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

Instance::Instance(Napi::Env env) : env_(env), queue_(std::make_shared<EventQueue>()) {
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
  queue_->close();
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
}

ServerEntry* Instance::addServer() {
  auto entry = std::make_unique<ServerEntry>();
  entry->tag = nextTag_++;
  entry->js.init(Napi::Env(env_));
  entry->engine = std::make_unique<Server>(queue_, entry->tag);
  ServerEntry* raw = entry.get();
  raw->ref = servers_.add(std::move(entry));
  owners_[raw->tag] = raw->ref;
  return raw;
}

ClientEntry* Instance::addClient() {
  auto entry = std::make_unique<ClientEntry>();
  entry->tag = nextTag_++;
  entry->js.init(Napi::Env(env_));
  entry->engine = std::make_unique<Client>(queue_, entry->tag);
  ClientEntry* raw = entry.get();
  raw->ref = clients_.add(std::move(entry));
  owners_[raw->tag] = raw->ref;
  return raw;
}

bool Instance::clearServer(int ref) {
  std::unique_ptr<ServerEntry> s = servers_.take(ref);
  if (!s) return false;
  owners_.erase(s->tag);  // its queued events are dropped from now on
  s->engine->clear();
  updateKeepAlive();
  return true;
}

bool Instance::clearClient(int ref) {
  std::unique_ptr<ClientEntry> c = clients_.take(ref);
  if (!c) return false;
  owners_.erase(c->tag);
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

ServerEntry* Instance::serverByTag(uint64_t tag) const {
  auto it = owners_.find(tag);
  return it == owners_.end() || it->second >= 0 ? nullptr : servers_.find(it->second);
}

ClientEntry* Instance::clientByTag(uint64_t tag) const {
  auto it = owners_.find(tag);
  return it == owners_.end() || it->second <= 0 ? nullptr : clients_.find(it->second);
}

void Instance::updateKeepAlive() {
  if (shut_) return;
  bool any = false;
  for (int ref : servers_.refs()) {
    ServerEntry* s = servers_.find(ref);
    any = any || (s->started && s->keepAlive);
  }
  for (int ref : clients_.refs()) {
    ClientEntry* c = clients_.find(ref);
    any = any || (c->started && c->keepAlive);
  }
  queue_->setKeepAlive(any);
}

void Instance::resumeAll() {
  if (shut_) return;
  for (int ref : servers_.refs()) servers_.find(ref)->engine->resumeReading();
  for (int ref : clients_.refs()) clients_.find(ref)->engine->resumeReading();
}

void Instance::deliver(napi_env env, std::vector<QueueItem>& batch) {
  Napi::Env e(env);
  // Sends made while a batch is delivered are written once per connection
  // at its end (one system call each, no IO-thread wake-up per message),
  // except the first few: a reply or two leaves at once rather than after
  // the rest of the batch, which is what a lightly loaded server sees.
  struct CorkScope {
    CorkScope() { cork(kCorkPassThrough); }
    ~CorkScope() { uncork(); }
  } corked;
  // Property names, type strings and the trampolines are fetched once per
  // batch, in the callback's scope, and shared by every item's inner scope.
  Napi::HandleScope outer(e);
  napi_value deliverData = nullptr, deliverAny = nullptr;
  std::unique_ptr<Keys> keys;
  try {
    keys = std::make_unique<Keys>(e);
    keys->fetchAll();
    deliverData = factories_.get(env, Factories::kDeliverData);
    deliverAny = factories_.get(env, Factories::kDeliver);
  } catch (const Napi::Error&) {
    return;  // the environment is going away
  }
  // Small binary payloads of the batch are copied into shared slabs and
  // handed out as slices (one Buffer per slab instead of one per message).
  std::vector<Slice> slices(batch.size());
  std::vector<napi_value> slabs;
  planSlabs(env, batch, slices, slabs);
  for (size_t i = 0; i < batch.size(); ++i) {
    QueueItem& item = batch[i];
    if (shut_) return;
    Napi::HandleScope scope(e);
    try {
      if (item.kind == QueueItem::Kind::Connect) {
        deliverConnect(*keys, item);
      } else if (!deliverEvent(*keys, item.event, item.seq, deliverData, deliverAny,
                               slices[i].slab >= 0 ? slabs[slices[i].slab] : nullptr,
                               slices[i].offset)) {
        return;
      }
    } catch (const Napi::Error&) {
      // Only reachable when the environment is going away (a JS value could
      // not be created): nothing more can be delivered.
      return;
    } catch (const std::exception&) {
      // Out of memory building one context: skip that event, keep the rest.
    }
  }
}

bool Instance::callMethod(Napi::Env env, napi_value fn, size_t argc, napi_value* argv) {
  napi_value result, undefined;
  napi_get_undefined(env, &undefined);
  napi_status st = napi_call_function(env, undefined, fn, argc, argv, &result);
  if (st == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) return false;  // cannot run JS any more (worker terminating)
  napi_value error;
  napi_get_and_clear_last_exception(env, &error);
  // The method's exception surfaces as an uncaught exception ('uncaughtException'
  // on process); the rest of the batch is still delivered.
  napi_fatal_exception(env, error);
  return true;
}

void Instance::planSlabs(napi_env env, std::vector<QueueItem>& batch, std::vector<Slice>& slices,
                         std::vector<napi_value>& slabs) {
  auto sliceable = [](const QueueItem& item) -> size_t {
    if (item.kind != QueueItem::Kind::Event || !item.event.binary ||
        !hasDataContext(item.event.type))
      return 0;
    size_t n = item.event.data.size();
    return n <= kSliceMax ? n : 0;
  };
  size_t left = 0;  // sliceable bytes not yet placed
  for (const auto& item : batch) left += sliceable(item);
  if (left == 0) return;
  size_t cap = 0, fill = 0;
  char* base = nullptr;
  for (size_t i = 0; i < batch.size(); ++i) {
    size_t n = sliceable(batch[i]);
    if (n == 0) continue;
    if (fill + n > cap) {
      // Sized to what is left, so a lone small message gets a small slab.
      cap = std::max(std::min(left, kSlabSize), n);
      napi_value slab;
      void* mem = nullptr;
      if (napi_create_buffer(env, cap, &mem, &slab) != napi_ok) {
        // No slab (out of memory, or the environment is going): the rest
        // are created one by one, as without slabs.
        bool pending = false;
        napi_is_exception_pending(env, &pending);
        if (pending) {
          napi_value ignored;
          napi_get_and_clear_last_exception(env, &ignored);
        }
        return;
      }
      slabs.push_back(slab);
      base = static_cast<char*>(mem);
      fill = 0;
    }
    std::memcpy(base + fill, batch[i].event.data.data(), n);
    slices[i].slab = static_cast<int>(slabs.size()) - 1;
    slices[i].offset = fill;
    fill += n;
    left -= n;
  }
}

bool Instance::deliverEvent(Keys& keys, Event& ev, uint64_t seq, napi_value deliverData,
                            napi_value deliverAny, napi_value slab, size_t offset) {
  Napi::Env env = keys.env();
  auto owner = owners_.find(ev.owner);
  if (owner == owners_.end()) return true;  // cleared: dropped
  const int ref = owner->second;
  const uint64_t tag = ev.owner;
  const uint64_t conn = ev.conn;
  const EventType type = ev.type;
  int serverArg = 0;
  int clientArg = 0;
  Napi::Object holder;
  if (ref < 0) {
    ServerEntry* s = servers_.find(ref);
    if (s == nullptr) return true;
    if (type == EventType::Open) {
      clientArg = s->conns.assign(conn);
    } else {
      clientArg = s->conns.refOf(conn);
      // Only an error can precede a connection's open (or concern the server).
      if (clientArg == 0 && type != EventType::Error) return true;
    }
    serverArg = ref;
    holder = s->js.holder();
  } else {
    ClientEntry* c = clients_.find(ref);
    if (c == nullptr) return true;
    if (ev.terminal && seq > c->startSeq) {
      // This session gave up: the client no longer holds the loop. (A
      // terminal event pushed before the latest start is the old session's.)
      c->started = false;
      updateKeepAlive();
    }
    clientArg = ref;
    holder = c->js.holder();
  }

  // The trampoline reads holder.method and calls it if it is a function.
  // From here on no pointer into the tables is held: the method may clear.
  napi_value argv[7] = {holder, nullptr, nullptr, keys[eventTypeKey(type)], nullptr, nullptr,
                        nullptr};
  if (napi_create_int32(env, serverArg, &argv[1]) != napi_ok ||
      napi_create_int32(env, clientArg, &argv[2]) != napi_ok) {
    throw Napi::Error::New(env);
  }
  bool ok;
  if (hasDataContext(type)) {
    bool binary = true;
    napi_value args[9];
    std::copy(argv, argv + 4, args);
    if (slab != nullptr) {
      // d is the size: the trampoline takes slab.subarray(offset, offset + d).
      args[6] = Napi::Number::New(env, static_cast<double>(ev.data.size()));
      args[7] = slab;
      args[8] = Napi::Number::New(env, static_cast<double>(offset));
    } else {
      args[6] = eventData(env, ev, binary);
      napi_get_undefined(env, &args[7]);
      args[8] = args[7];
    }
    args[4] = Napi::Number::New(env, static_cast<double>(ev.wireSize));
    args[5] = Napi::Boolean::New(env, binary);
    ok = callMethod(env, deliverData, 9, args);
  } else {
    argv[4] = eventContext(keys, ev);
    ok = callMethod(env, deliverAny, 5, argv);
  }
  if (type == EventType::Close && ref < 0) {
    if (ServerEntry* s = serverByTag(tag)) s->conns.release(conn);
  }
  return ok;
}

void Instance::deliverConnect(Keys& keys, QueueItem& item) {
  auto it = starts_.find(item.startId);
  if (it == starts_.end()) return;  // settled already (client cleared)
  PendingStart p = it->second;
  starts_.erase(it);
  ClientEntry* c = clientByTag(p.tag);
  if (c != nullptr && item.startId == c->startId && !item.connect.success && !c->startRetries) {
    // A failed attempt without reconnection leaves the client idle.
    c->started = false;
    updateKeepAlive();
  }
  p.deferred.Resolve(connectStatus(keys, item.connect));
}

}  // namespace addon
}  // namespace wsengine
