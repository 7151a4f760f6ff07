#include "factories.h"

namespace wsengine {
namespace addon {

namespace {

// Plain ES5 in sloppy mode. The method is called as a plain function, with
// no receiver (`this` is undefined in a strict-mode method).
const char* const kSources[Factories::kCount] = {
    // kDeliverData
    "(function (h, s, c, t, w, b, d, p, o) {"
    "  var m = h.method;"
    "  if (p !== undefined) d = p.subarray(o, o + d);"
    "  if (typeof m === 'function')"
    "    m(s, c, t, { wireSize: w, binary: b, data: d }, h.worker, h.window, h.process);"
    "})",
    // kDeliver
    "(function (h, s, c, t, x) {"
    "  var m = h.method;"
    "  if (typeof m === 'function') m(s, c, t, x, h.worker, h.window, h.process);"
    "})",
    // kDeliverRun (layout: factories.h, Delivery::deliverRun). A holder
    // index below 0 marks an event dropped since the run was written. The
    // type names are the data events' (EventType order in runTypeIndex).
    "(function () {"
    "  var T = ['message', 'fragment', 'ping', 'pong'];"
    "  return function (f, v, i, n) {"
    "    for (var j = 2 + i * 9; i < n; i++, j += 9) {"
    "      var x = f[j];"
    "      if (x < 0) continue;"
    "      f[1] = i;"
    "      var h = v[x], m = h.method;"
    "      if (typeof m !== 'function') continue;"
    "      var d = v[f[j + 6]], o = f[j + 7];"
    "      if (o >= 0) d = d.subarray(o, o + f[j + 8]);"
    "      m(f[j + 1], f[j + 2], T[f[j + 3]], { wireSize: f[j + 4], binary: f[j + 5] === 1, data: d },"
    "        h.worker, h.window, h.process);"
    "      if (f[0] !== 0) return i + 1;"
    "    }"
    "    return n;"
    "  };"
    "})()",
    // kStatus
    "(function (s, e, p, w, b, m) {"
    "  return m === undefined"
    "    ? { success: s, compressionError: e, payloadSize: p, wireSize: w, bufferedAmount: b }"
    "    : { success: s, compressionError: e, payloadSize: p, wireSize: w, bufferedAmount: b,"
    "        message: m };"
    "})",
    // kStatusList: per status f[j..j+5] = success, compressionError,
    // payloadSize, wireSize, bufferedAmount, client; msgs[i] when present.
    "(function (n, f, msgs) {"
    "  var out = [];"
    "  for (var i = 0, j = 0; i < n; i++, j += 6) {"
    "    var m = msgs === undefined ? undefined : msgs[i];"
    "    out.push(m === undefined"
    "      ? { success: f[j] === 1, compressionError: f[j + 1] === 1, payloadSize: f[j + 2],"
    "          wireSize: f[j + 3], bufferedAmount: f[j + 4], client: f[j + 5] }"
    "      : { success: f[j] === 1, compressionError: f[j + 1] === 1, payloadSize: f[j + 2],"
    "          wireSize: f[j + 3], bufferedAmount: f[j + 4], message: m, client: f[j + 5] });"
    "  }"
    "  return out;"
    "})",
    // kStatusOne
    "(function (s, e, p, w, b, c, m) {"
    "  return [m === undefined"
    "    ? { success: s, compressionError: e, payloadSize: p, wireSize: w, bufferedAmount: b,"
    "        client: c }"
    "    : { success: s, compressionError: e, payloadSize: p, wireSize: w, bufferedAmount: b,"
    "        message: m, client: c }];"
    "})",
};

}  // namespace

void Factories::init(Napi::Env env) {
  for (int i = 0; i < kCount; ++i) {
    napi_value fn;
    if (napi_run_script(env, Napi::String::New(env, kSources[i]), &fn) != napi_ok) {
      throw Napi::Error::New(env);
    }
    fns_[i] = Napi::Persistent(Napi::Function(env, fn));
  }
}

napi_value Factories::get(napi_env env, Fn fn) const {
  napi_value v;
  if (napi_get_reference_value(env, fns_[fn].operator napi_ref(), &v) != napi_ok) {
    throw Napi::Error::New(Napi::Env(env));
  }
  return v;
}

}  // namespace addon
}  // namespace wsengine
