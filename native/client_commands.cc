// The client commands (see commands.h for what they share with the
// server's).
#include <string>
#include <utility>

#include "args.h"
#include "commands.h"
#include "convert.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

using S = Side<ClientEntry>;

// proxy: "env" reads the variables at each start, from process.env (a
// worker thread's own copy included: getenv would not see it).
void readProxyEnv(Napi::Env env, ProxyEnv& out) {
  Napi::Value process = env.Global().Get("process");
  if (!process.IsObject()) return;
  Napi::Value vars = process.As<Napi::Object>().Get("env");
  if (!vars.IsObject()) return;
  Napi::Object o = vars.As<Napi::Object>();
  auto get = [&o](const char* name, std::string& dst) {
    Napi::Value v = o.Get(name);
    dst = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  };
  get("https_proxy", out.httpsProxy);
  get("HTTPS_PROXY", out.httpsProxyUpper);
  get("http_proxy", out.httpProxy);
  get("HTTP_PROXY", out.httpProxyUpper);
  get("no_proxy", out.noProxy);
  get("NO_PROXY", out.noProxyUpper);
}

Napi::Value WebsocketClient(const Napi::CallbackInfo& info) {
  Keys keys(info.Env());
  return entryObject(keys, *createEntry<ClientEntry>(info, keys));
}

Napi::Value WebsocketClientStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  Instance* inst = Instance::get(env);
  int ref = 0;
  ClientEntry* c = commandTarget<ClientEntry>(info, keys, ref);
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (c == nullptr) {
    ConnectResult r;
    r.errorStr = S::unknown(ref);
    Napi::Object status = connectStatus(keys, r);
    keys.set(status, Key::message, r.errorStr);  // like every other unknown-ref status
    deferred.Resolve(status);
    return deferred.Promise();
  }
  c->started = true;
  inst->updateKeepAlive();
  uint64_t id = inst->addPendingStart(deferred, c->tag);
  std::shared_ptr<EventQueue> queue = inst->queue();
  c->startSeq = queue->lastSeq();
  c->startId = id;
  c->startRetries = c->config.opts.enableAutomaticReconnection;
  ClientOptions opts = c->config.effective();
  if (opts.proxy == "env") readProxyEnv(env, opts.proxyEnv);
  if (c->config.inlineLoop) opts.loop = inst->embeddedLoop();
  // `done` runs on an IO thread (or in inline mode on this thread, from a
  // later loop callback or inline for an immediate failure); the
  // result travels through the event queue to resolve on the JS thread.
  c->engine->start(opts, [queue, id](ConnectResult r) {
    queue->pushConnect(id, std::move(r));
  });
  return deferred.Promise();
}

Napi::Value WebsocketClientStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  ClientEntry* c = commandTarget<ClientEntry>(info, keys, ref);
  if (c == nullptr) return refStatus(keys, S::unknown(ref));
  SendScope::flushNow();  // frames this task sent go before the close frame
  c->engine->stop();
  c->started = false;
  Instance::get(env)->updateKeepAlive();
  return entryObject(keys, *c);
}

Napi::Value WebsocketClientSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  SendArgs a = sendArgs<ClientEntry>(info, keys);
  ClientEntry* c = updateEntry<ClientEntry>(keys, *Instance::get(env), a.obj, a.present, a.ref);
  if (c == nullptr) {
    SendResult r;
    r.message = S::unknown(a.ref);
    return sendStatus(keys, r);
  }
  if (c->started && (c = enterSendScope<ClientEntry>(env, a.ref)) == nullptr) {
    SendResult r;
    r.message = S::unknown(a.ref);
    return sendStatus(keys, r);
  }
  SendData data;
  readSendData(a.data, data);  // no JS runs from here to the engine call
  bool binary = sendsBinary(a.binary, data.isString);
  if (!c->started) {
    // Stopped (its close handshake may still be under way), given up or
    // never started: nothing may follow the close frame.
    SendResult r;
    r.payloadSize = data.length;
    r.message = "Client is not started";
    return sendStatus(keys, r);
  }
  return sendStatus(keys, c->engine->send(data.bytes, data.length, binary));
}

// (client, data?) -> whether a ping was queued (false when not open). The
// object's options apply, as with every command, once the data is known good.
Napi::Value WebsocketClientPing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], S::kName, ref);
  std::string payload = pingDataArg(info[1]);
  ClientEntry* c = updateEntry<ClientEntry>(keys, *Instance::get(env), obj, keys.presence(obj), ref);
  if (c == nullptr || !c->started) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(
      env, c->engine->ping(reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
}

Napi::Value WebsocketClientClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], S::kName, ref);
  if (!Instance::get(env)->clearClient(ref)) return refStatus(keys, S::unknown(ref));
  return Napi::Object::New(env);
}

}  // namespace

void registerClientCommands(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "websocketClient", WebsocketClient);
  exportFunction(env, exports, "websocketClientStart", WebsocketClientStart);
  exportFunction(env, exports, "websocketClientStop", WebsocketClientStop);
  exportFunction(env, exports, "websocketClientSend", WebsocketClientSend);
  exportFunction(env, exports, "websocketClientClear", WebsocketClientClear);
  exportFunction(env, exports, "websocketClientPing", WebsocketClientPing);
}

}  // namespace addon
}  // namespace wsengine
