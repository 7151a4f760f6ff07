// Event delivery: the batches the event queue hands to the JavaScript thread
// become calls of each server's and client's `method` (through the
// trampolines of factories.h), and client-start results settle their
// Promises. Every item is delivered on its own: one that cannot be converted
// is skipped and reported, never the rest of the batch. Connection refs are
// assigned at `open` and released at `close` here. JS thread only.
#pragma once

#include "napi_config.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "event_queue.h"
#include "keys.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

class Instance;
class JsValues;

class Delivery {
 public:
  explicit Delivery(Instance& inst) : inst_(inst) {}

  void deliver(napi_env env, std::vector<QueueItem>& batch);
  // The ref tables changed (a server or client cleared, the environment
  // shutting down): a run being delivered re-checks its remaining events.
  void noteChange() {
    if (runF_ != nullptr) runF_[0] = 1;
  }

 private:
  // A batch's small binary payloads, copied into Buffers shared by the
  // payloads of one connection (never across connections).
  struct Slice {
    int slab = -1;  // index into the batch's slabs, -1: not sliced
    size_t offset = 0;
  };
  void planSlabs(napi_env env, std::vector<QueueItem>& batch, std::vector<Slice>& slices,
                 std::vector<napi_value>& slabs);
  // Delivers one event; one that cannot be converted is skipped and reported
  // (reportDropped), its bookkeeping (refs, keep-alive) done all the same.
  // deliverData / deliverAny: the two trampolines of this batch (see Factories).
  // slab: where planSlabs put this event's bytes (at offset), or null.
  void deliverEvent(Keys& keys, Event& ev, uint64_t seq, napi_value deliverData,
                    napi_value deliverAny, napi_value slab, size_t offset);
  // Consecutive small data events from batch[i] on (a run) are delivered by
  // one JavaScript call (Factories::kDeliverRun) instead of one call each.
  // Returns the index of the next item to deliver: i when batch[i] is to
  // take the per-item path (deliverEvent).
  size_t deliverRun(napi_env env, std::vector<QueueItem>& batch, size_t i,
                    const std::vector<Slice>& slices, const std::vector<napi_value>& slabs,
                    napi_value runFn);
  // Writes where run event k (batch[runItems_[k]]) goes: its holder index
  // stays, server and client are checked again; -1 as holder: dropped.
  bool resolveRunEvent(const Event& ev, int& server, int& client, const JsValues*& js);
  bool ensureRunArray(napi_env env);
  void deliverConnect(Keys& keys, QueueItem& item);
  // A server's Verify event: verifyClient runs through the facade's handler
  // (Instance::verifyHandler), which answers with websocketServerAnswerVerify.
  void deliverVerify(Keys& keys, Event& ev, int ref);
  bool callMethod(Napi::Env env, napi_value fn, size_t argc, napi_value* argv);
  // process.emitWarning (type IxWebSocketWarning, code IXWS_EVENT_DROPPED)
  // for an event that could not be converted.
  void reportDropped(Napi::Env env, EventType type, int server, int client, size_t bytes,
                     const std::string& why);

  Instance& inst_;
  std::vector<uint32_t> slabOrder_;  // planSlabs' scratch, kept across batches
  // deliverRun's Float64Array (Factories::kRunHeader + kRunStride per event,
  // up to EventQueue::kMaxBatch events), made once; runF_ points into it
  // while a run is being delivered (null otherwise: a nested delivery takes
  // the per-item path).
  Napi::Reference<Napi::Value> runArray_;
  double* runData_ = nullptr;
  double* runF_ = nullptr;
  std::vector<uint32_t> runItems_;  // batch index of each event of the run
  bool jsCallable_ = true;           // false once a call found JS unable to run
};

}  // namespace addon
}  // namespace wsengine
