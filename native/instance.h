// Per-environment state (main thread and each worker thread has its own):
// the ref tables, the event queue, pending client starts, keep-alive, and
// event delivery to the stored `method`.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "event_queue.h"
#include "factories.h"
#include "keys.h"
#include "options.h"
#include "registry.h"
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

struct ServerEntry {
  uint64_t tag = 0;
  int ref = 0;
  ServerConfig config;
  JsValues js;
  std::unique_ptr<Server> engine;
  ConnRefs conns;
  bool started = false;
  bool keepAlive = true;
  int boundPort = 0;  // last successful start's port
};

struct ClientEntry {
  uint64_t tag = 0;
  int ref = 0;
  ClientConfig config;
  JsValues js;
  std::unique_ptr<Client> engine;
  bool started = false;  // started and not stopped / given up
  bool keepAlive = true;
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

  ServerEntry* addServer();
  ClientEntry* addClient();
  ServerEntry* server(int ref) const { return servers_.find(ref); }
  ClientEntry* client(int ref) const { return clients_.find(ref); }
  // Hard stop and free the ref. false when the ref is unknown.
  bool clearServer(int ref);
  bool clearClient(int ref);

  // Client start: the Promise is resolved from the engine's done callback.
  uint64_t addPendingStart(const Napi::Promise::Deferred& deferred, uint64_t tag);
  std::shared_ptr<EventQueue> queue() const { return queue_; }
  const KeyStore& keyStore() const { return keyStore_; }
  const Factories& factories() const { return factories_; }

  // Recounts started keep-alive objects; the loop is held while any exist.
  void updateKeepAlive();

  void deliver(napi_env env, std::vector<QueueItem>& batch) override;
  void resumeAll() override;

  // Environment teardown: clear everything at once, drop further events.
  void shutdown();

 private:
  static void CleanupHook(void* arg);
  ServerEntry* serverByTag(uint64_t tag) const;
  ClientEntry* clientByTag(uint64_t tag) const;
  // Delivers one event; one that cannot be converted is skipped and reported
  // (reportDropped), its bookkeeping (refs, keep-alive) done all the same.
  // deliverData / deliverAny: the two trampolines of this batch (see Factories).
  // slab: where planSlabs put this event's bytes (at offset), or null.
  void deliverEvent(Keys& keys, Event& ev, uint64_t seq, napi_value deliverData,
                    napi_value deliverAny, napi_value slab, size_t offset);
  // A batch's small binary payloads, copied into Buffers shared by the
  // payloads of one connection (never across connections).
  struct Slice {
    int slab = -1;  // index into the batch's slabs, -1: not sliced
    size_t offset = 0;
  };
  void planSlabs(napi_env env, std::vector<QueueItem>& batch, std::vector<Slice>& slices,
                 std::vector<napi_value>& slabs);
  void deliverConnect(Keys& keys, QueueItem& item);
  bool callMethod(Napi::Env env, napi_value fn, size_t argc, napi_value* argv);
  // process.emitWarning (type IxWebSocketWarning, code IXWS_EVENT_DROPPED)
  // for an event that could not be converted.
  void reportDropped(Napi::Env env, EventType type, int server, int client, size_t bytes,
                     const std::string& why);

  napi_env env_;
  KeyStore keyStore_;
  Factories factories_;
  std::shared_ptr<EventQueue> queue_;
  RefTable<ServerEntry> servers_{-1};
  RefTable<ClientEntry> clients_{1};
  std::unordered_map<uint64_t, int> owners_;  // engine tag -> ref
  std::unordered_map<uint64_t, PendingStart> starts_;
  std::vector<uint32_t> slabOrder_;  // planSlabs' scratch, kept across batches
  uint64_t nextTag_ = 1;
  uint64_t nextStartId_ = 1;
  bool hookAdded_ = false;
  bool jsCallable_ = true;  // false once a call found JS unable to run
  bool shut_ = false;
};

}  // namespace addon
}  // namespace wsengine
