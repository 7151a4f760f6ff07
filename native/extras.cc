// The exports beyond the 4D plugin's commands: keep-alive and buffered
// amounts for the facade classes, and what the engine reports about itself
// (IO threads, the buffer pool, the spare payload strings, how a client
// reads a url).
#include <cstdint>
#include <initializer_list>
#include <utility>
#include <string>

#include "args.h"
#include "commands.h"
#include "instance.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

namespace {

// (ref, keepAlive) -> false for an unknown ref.
Napi::Value SetKeepAlive(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ref = refArg(info[0]);
  if (!info[1].IsBoolean()) throwType(env, "keepAlive must be a boolean");
  bool on = info[1].As<Napi::Boolean>().Value();
  Instance* inst = Instance::get(env);
  if (ServerEntry* s = inst->server(ref)) {
    s->keepAlive = on;
  } else if (ClientEntry* c = inst->client(ref)) {
    c->keepAlive = on;
  } else {
    return Napi::Boolean::New(env, false);
  }
  inst->updateKeepAlive();
  return Napi::Boolean::New(env, true);
}

// (ref, client?) -> bytes queued: a client's, one server connection's, or
// the sum over a server's connections when no client is given.
Napi::Value BufferedAmount(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ref = refArg(info[0]);
  bool oneConn = !info[1].IsUndefined();
  int client = oneConn ? connRefArg(info[1]) : 0;
  Instance* inst = Instance::get(env);
  uint64_t total = 0;
  if (ServerEntry* s = inst->server(ref)) {
    if (oneConn) {
      uint64_t conn = s->conns.connOf(client);
      if (conn != 0) total = s->engine->bufferedAmount(conn);
    } else {
      for (uint64_t conn : s->conns.conns()) total += s->engine->bufferedAmount(conn);
    }
  } else if (ClientEntry* c = inst->client(ref)) {
    total = c->engine->bufferedAmount();
  }
  return Napi::Number::New(env, static_cast<double>(total));
}

// The facade's verifyClient runner (lib/verify.ts): (hook, info, server ref,
// token, owner: the engine's tag), answering through websocketServerAnswerVerify.
Napi::Value SetVerifyHandler(const Napi::CallbackInfo& info) {
  if (!info[0].IsFunction()) throwType(info.Env(), "handler must be a function");
  Instance::get(info.Env())->setVerifyHandler(info[0].As<Napi::Function>());
  return info.Env().Undefined();
}

Napi::Value IoThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), ioThreadCount());
}

// A plain object of named counters (the stats exports below).
Napi::Object countersObject(Napi::Env env,
                            std::initializer_list<std::pair<const char*, double>> counters) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& c : counters) o.Set(c.first, c.second);
  return o;
}

Napi::Value BufferPool(const Napi::CallbackInfo& info) {
  BufferPoolStats st = bufferPoolStats();
  return countersObject(info.Env(), {{"pooled", static_cast<double>(st.pooled)},
                                     {"pooledBytes", static_cast<double>(st.pooledBytes)},
                                     {"hits", static_cast<double>(st.hits)},
                                     {"misses", static_cast<double>(st.misses)}});
}

// This environment's spare payload strings (EventQueue::SpareStats): for
// tests (the list stays bounded, its strings are reused).
Napi::Value PayloadSpares(const Napi::CallbackInfo& info) {
  EventQueue::SpareStats st = Instance::get(info.Env())->queue()->spareStats();
  return countersObject(info.Env(), {{"held", static_cast<double>(st.held)},
                                     {"given", static_cast<double>(st.given)},
                                     {"kept", static_cast<double>(st.kept)},
                                     {"freed", static_cast<double>(st.freed)}});
}

// (url) -> how a client reads it: { secure, host, port, target }, or
// { error } for a url a client start would refuse.
Napi::Value ParseClientUrl(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throwType(env, "url must be a string");
  ClientUrl u;
  std::string error;
  Napi::Object o = Napi::Object::New(env);
  if (!parseClientUrl(info[0].As<Napi::String>().Utf8Value(), u, error)) {
    o.Set("error", error);
    return o;
  }
  o.Set("secure", u.secure);
  o.Set("host", u.host);
  o.Set("port", static_cast<double>(u.port));
  o.Set("target", u.target);
  return o;
}

}  // namespace

void registerExtras(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "setKeepAlive", SetKeepAlive);
  exportFunction(env, exports, "setVerifyHandler", SetVerifyHandler);
  exportFunction(env, exports, "bufferedAmount", BufferedAmount);
  exportFunction(env, exports, "ioThreads", IoThreads);
  exportFunction(env, exports, "bufferPoolStats", BufferPool);
  exportFunction(env, exports, "payloadSpareStats", PayloadSpares);
  exportFunction(env, exports, "parseClientUrl", ParseClientUrl);
}

}  // namespace addon
}  // namespace wsengine
