// Per-environment state (main thread and each worker thread has its own):
// the ref tables, the event queue, pending client starts, keep-alive and
// shutdown. Events reach each object's `method` through Delivery
// (delivery.h), which looks objects up here.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "delivery.h"
#include "event_queue.h"
#include "factories.h"
#include "keys.h"
#include "options.h"
#include "registry.h"
#include "send_scope.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

// method / worker / window / process as given, kept on a JS object so any
// value (primitives included) survives between calls.
class JsValues {
 public:
  void init(Napi::Env env);
  // The four values read from an options object (undefined = not given).
  struct Given {
    Napi::Value method, worker, window, process;
  };
  static Given read(Keys& keys, const Napi::Object& src, PresenceMask present);
  void apply(Keys& keys, const Given& given);
  void writeTo(Keys& keys, const Napi::Object& out) const;
  Napi::Object holder() const { return holder_.Value(); }

 private:
  Napi::ObjectReference holder_;
};

// What a server's and a client's entries share.
template <class ConfigT, class EngineT>
struct Entry {
  using Engine = EngineT;
  uint64_t tag = 0;  // given to the engine, which puts it on every event
  int ref = 0;
  ConfigT config;
  JsValues js;
  std::unique_ptr<Engine> engine;
  bool started = false;  // started and not stopped (a client: nor given up)
  bool keepAlive = true;
};

// A stopped object still holds the loop while a close event it owes is to
// come (a few seconds at most: the engine's close timeout), and a client
// while the result of a start is to come: `stop(); await once(x, 'close')`
// or `await start()` in a script with nothing else running must see what it
// waits for, as Node's sockets keep the loop until they have closed.

struct ServerEntry : Entry<ServerConfig, Server> {
  ConnRefs conns;
  int boundPort = 0;  // last successful start's port
};

struct ClientEntry : Entry<ClientConfig, Client> {
  // An open event was delivered and its close not yet (see Entry).
  bool openDelivered = false;
  // Of the latest websocketClientStart: the queue position when it was
  // called, its id, and whether it may retry by itself.
  uint64_t startSeq = 0;
  uint64_t startId = 0;
  bool startRetries = false;
};

struct PendingStart {
  Napi::Promise::Deferred deferred;
  uint64_t tag;
};

class Instance : public QueueTarget {
 public:
  explicit Instance(Napi::Env env);
  ~Instance() override;
  static Instance* get(Napi::Env env) { return env.GetInstanceData<Instance>(); }

  ServerEntry* addServer() { return add(servers_); }
  ClientEntry* addClient() { return add(clients_); }
  ServerEntry* server(int ref) const { return servers_.find(ref); }
  ClientEntry* client(int ref) const { return clients_.find(ref); }
  // Hard stop and free the ref. false when the ref is unknown.
  bool clearServer(int ref);
  bool clearClient(int ref);

  // The ref of the server or client whose engine has this tag; 0 once it
  // is cleared (its queued events are dropped).
  int refOfTag(uint64_t tag) const {
    auto it = owners_.find(tag);
    return it == owners_.end() ? 0 : it->second;
  }
  ServerEntry* serverByTag(uint64_t tag) const {
    int ref = refOfTag(tag);
    return ref < 0 ? servers_.find(ref) : nullptr;
  }
  ClientEntry* clientByTag(uint64_t tag) const {
    int ref = refOfTag(tag);
    return ref > 0 ? clients_.find(ref) : nullptr;
  }

  // Client start: the Promise is resolved from the engine's done callback.
  uint64_t addPendingStart(const Napi::Promise::Deferred& deferred, uint64_t tag);
  // The start with this id, taken out; none once it is settled.
  std::optional<PendingStart> takePendingStart(uint64_t id);
  std::shared_ptr<EventQueue> queue() const { return queue_; }
  const KeyStore& keyStore() const { return keyStore_; }
  const Factories& factories() const { return factories_; }

  // Recounts started keep-alive objects; the loop is held while any exist.
  void updateKeepAlive();

  void deliver(napi_env env, std::vector<QueueItem>& batch) override {
    sendScope_.beginDelivery();  // Delivery corks its batch itself
    delivery_.deliver(env, batch);
    sendScope_.endDelivery();
  }
  // Sends made outside event delivery are corked until the end of the task.
  SendScope& sendScope() { return sendScope_; }
  void resumeAll() override;

  // The facade's verifyClient runner (lib/verify.ts), set once per
  // environment by setVerifyHandler; null until then.
  void setVerifyHandler(Napi::Function fn) { verifyHandler_ = Napi::Persistent(fn); }
  napi_value verifyHandler() const {
    if (verifyHandler_.IsEmpty()) return nullptr;
    return verifyHandler_.Value();
  }

  // Inline mode: the engine's wrapper of this environment's own uv loop,
  // made on first use (JS thread). Closed at shutdown, after every object.
  std::shared_ptr<IoLoop> embeddedLoop();

  // Environment teardown: clear everything at once, drop further events.
  void shutdown();
  bool shutDown() const { return shut_; }

 private:
  static void CleanupHook(void* arg);
  // A new entry under the lowest free ref, with its engine and tag.
  template <class E>
  E* add(RefTable<E>& table);

  napi_env env_;
  KeyStore keyStore_;
  Factories factories_;
  std::shared_ptr<EventQueue> queue_;
  std::shared_ptr<IoLoop> loop_;  // inline mode, see embeddedLoop()
  Delivery delivery_;
  SendScope sendScope_;
  Napi::FunctionReference verifyHandler_;
  RefTable<ServerEntry> servers_{-1};
  RefTable<ClientEntry> clients_{1};
  std::unordered_map<uint64_t, int> owners_;  // engine tag -> ref
  std::unordered_map<uint64_t, PendingStart> starts_;
  uint64_t nextTag_ = 1;
  uint64_t nextStartId_ = 1;
  bool hookAdded_ = false;
  bool shut_ = false;
};

}  // namespace addon
}  // namespace wsengine
