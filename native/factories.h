// Small JavaScript functions compiled once per environment that build the
// per-message objects (event contexts, send statuses) and call the user's
// method. Created in JS, each object literal gets one shared map and its
// fields are stored by optimized code; creating the same object from C++
// would cost one Node-API runtime call per property, per message.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>
#include <vector>

#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

class Factories {
 public:
  enum Fn : uint8_t {
    // (holder, server, client, type, wireSize, binary, data, slab, offset):
    // calls holder.method with the context { wireSize, binary, data }; with
    // a slab, data is the size and the bytes are slab.subarray(offset, ...).
    kDeliverData,
    // (holder, server, client, type, context): calls holder.method.
    kDeliver,
    // (f, v, i, n): delivers events i..n-1 of a run (Delivery::deliverRun):
    // per event, kRunStride numbers of the Float64Array f from kRunHeader on
    // (holder, server, client, type, wireSize, binary, data, offset, size; v
    // holds the holders and the data values and slabs they index), each as
    // kDeliverData would. Writes the event it calls at f[1]; returns the
    // index after the last event called, early when f[0] became non-zero
    // (the native side changed the ref tables: the rest must be re-checked).
    kDeliverRun,
    // (success, compressionError, payloadSize, wireSize, bufferedAmount,
    //  message?) -> a client's send status.
    kStatus,
    // (count, Float64Array of 6 per status, messages?) -> the statuses of a
    // server send (see statusList in convert.cc for the layout).
    kStatusList,
    // (success, compressionError, payloadSize, wireSize, bufferedAmount,
    //  client, message?) -> [status]: a send to one target (no typed array).
    kStatusOne,
    kCount
  };

  // Layout of kDeliverRun's Float64Array.
  static constexpr size_t kRunHeader = 2;  // f[0]: changed, f[1]: event being called
  static constexpr size_t kRunStride = 9;

  void init(Napi::Env env);
  // The function in the current handle scope.
  napi_value get(napi_env env, Fn fn) const;

 private:
  Napi::FunctionReference fns_[kCount];
};

}  // namespace addon
}  // namespace wsengine
