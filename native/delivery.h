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

class Delivery {
 public:
  explicit Delivery(Instance& inst) : inst_(inst) {}

  void deliver(napi_env env, std::vector<QueueItem>& batch);

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
  bool jsCallable_ = true;           // false once a call found JS unable to run
};

}  // namespace addon
}  // namespace wsengine
