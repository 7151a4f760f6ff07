// Client commands. As on the server side, JS arguments are read first and
// the client is looked up again afterwards (getters may re-enter the addon).
#include <string>
#include <utility>

#include "args.h"
#include "commands.h"
#include "convert.h"
#include "instance.h"
#include "options.h"

namespace wsengine {
namespace addon {

namespace {

std::string unknownClient(int ref) { return "Unknown client ref " + std::to_string(ref); }

Napi::Object clientObject(Keys& keys, const ClientEntry& c) {
  Napi::Object out = Napi::Object::New(keys.env());
  writeOptions(keys, out, c.config);
  keys.set(out, Key::ref, c.ref);
  c.js.writeTo(keys, out);
  return out;
}

ClientEntry* updateClient(Keys& keys, Instance* inst, const Napi::Object& obj, PresenceMask present,
                     int ref) {
  ClientEntry* c = inst->client(ref);
  // Nothing but the command's own keys: no configuration to copy and read.
  if ((present & ~Keys::commandBits()) == 0) return c;
  ClientConfig cfg = c != nullptr ? c->config : ClientConfig();
  readOptions(keys, obj, present, cfg, "client");
  JsValues::Given given = JsValues::read(keys, obj, present);
  c = inst->client(ref);
  if (c == nullptr) return nullptr;
  c->config = std::move(cfg);
  c->js.apply(keys, given);
  return c;
}

Napi::Value WebsocketClient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  Instance* inst = Instance::get(env);
  ClientConfig cfg;
  JsValues::Given given;
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
    if (!info[0].IsObject()) throwType(env, "options must be an object");
    Napi::Object opts = info[0].As<Napi::Object>();
    PresenceMask present = keys.presence(opts);
    readOptions(keys, opts, present, cfg, "options");
    given = JsValues::read(keys, opts, present);
  }
  ClientEntry* c = inst->addClient();
  c->config = std::move(cfg);
  c->js.apply(keys, given);
  return clientObject(keys, *c);
}

Napi::Value WebsocketClientStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  Instance* inst = Instance::get(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], "client", ref);
  ClientEntry* c = updateClient(keys, inst, obj, keys.presence(obj), ref);
  Napi::Promise::Deferred deferred = Napi::Promise::Deferred::New(env);
  if (c == nullptr) {
    ConnectResult r;
    r.errorStr = unknownClient(ref);
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
  // `done` runs on an IO thread (or inline for an immediate failure); the
  // result travels through the event queue to resolve on the JS thread.
  c->engine->start(c->config.effective(), [queue, id](ConnectResult r) {
    queue->pushConnect(id, std::move(r));
  });
  return deferred.Promise();
}

Napi::Value WebsocketClientStop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  Instance* inst = Instance::get(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], "client", ref);
  ClientEntry* c = updateClient(keys, inst, obj, keys.presence(obj), ref);
  if (c == nullptr) return refStatus(keys, unknownClient(ref));
  c->engine->stop();
  c->started = false;
  inst->updateKeepAlive();
  return clientObject(keys, *c);
}

Napi::Value WebsocketClientSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  Instance* inst = Instance::get(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], "client", ref);
  Napi::Value dataArg = info[1];
  if (!isSendData(dataArg)) throwType(env, kSendDataError);
  PresenceMask present = keys.presence(obj);
  BinaryFlag binaryFlag = binaryArg(keys, obj, present, "client");
  ClientEntry* c = updateClient(keys, inst, obj, present, ref);
  if (c == nullptr) {
    SendResult r;
    r.message = unknownClient(ref);
    return sendStatus(keys, r);
  }
  SendData data;
  readSendData(dataArg, data);  // no JS runs from here to the engine call
  bool binary = sendsBinary(binaryFlag, data.isString);
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

Napi::Value WebsocketClientClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], "client", ref);
  if (!Instance::get(env)->clearClient(ref)) return refStatus(keys, unknownClient(ref));
  return Napi::Object::New(env);
}

}  // namespace

void registerClientCommands(Napi::Env env, Napi::Object exports) {
  exports.Set("websocketClient", Napi::Function::New(env, WebsocketClient, "websocketClient"));
  exports.Set("websocketClientStart",
              Napi::Function::New(env, WebsocketClientStart, "websocketClientStart"));
  exports.Set("websocketClientStop",
              Napi::Function::New(env, WebsocketClientStop, "websocketClientStop"));
  exports.Set("websocketClientSend",
              Napi::Function::New(env, WebsocketClientSend, "websocketClientSend"));
  exports.Set("websocketClientClear",
              Napi::Function::New(env, WebsocketClientClear, "websocketClientClear"));
}

}  // namespace addon
}  // namespace wsengine
