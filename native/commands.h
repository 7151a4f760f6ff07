// The exported functions, grouped by file, and what the server and client
// commands share: creating an object from its options, and applying the
// option properties a command's object carries. Each command reads
// everything it needs from its JS arguments first (getters may run JS that
// re-enters the addon), then looks its server or client up again and acts.
#pragma once

#include "napi_config.h"

#include <string>
#include <utility>

#include "args.h"
#include "convert.h"
#include "instance.h"
#include "keys.h"
#include "options.h"

namespace wsengine {
namespace addon {

// server_commands.cc: websocketServer*, websocketServerCloseClient
void registerServerCommands(Napi::Env env, Napi::Object exports);
// client_commands.cc: websocketClient*
void registerClientCommands(Napi::Env env, Napi::Object exports);
// extras.cc: setKeepAlive, bufferedAmount, ioThreads, bufferPoolStats, payloadSpareStats,
// parseClientUrl
void registerExtras(Napi::Env env, Napi::Object exports);
// topic_commands.cc: websocketServerSubscribe/Unsubscribe/Publish/Topics
void registerTopicCommands(Napi::Env env, Napi::Object exports);
// attach.cc: websocketServerAdopt (noServer servers, lib/attach.ts)
void registerAttach(Napi::Env env, Napi::Object exports);

// exports[name] = a function of that name calling fn.
inline void exportFunction(Napi::Env env, Napi::Object& exports, const char* name,
                           Napi::Value (*fn)(const Napi::CallbackInfo&)) {
  exports.Set(name, Napi::Function::New(env, fn, name));
}

// No server or client has ref 0: a WebSocketServer or WebSocketClient
// object passes it once cleared (lib/endpoint.ts), so 0 says that.
inline std::string unknownRef(const char* side, int ref) {
  std::string message = std::string("Unknown ") + side + " ref " + std::to_string(ref);
  if (ref == 0) message += side[0] == 's' ? " (the ref of a cleared WebSocketServer)" : " (the ref of a cleared WebSocketClient)";
  return message;
}

// How a command finds and names a server or a client.
template <class E>
struct Side;
template <>
struct Side<ServerEntry> {
  static constexpr const char* kName = "server";
  static ServerEntry* find(Instance& inst, int ref) { return inst.server(ref); }
  static ServerEntry* add(Instance& inst) { return inst.addServer(); }
  static std::string unknown(int ref) { return unknownRef("server", ref); }
};
template <>
struct Side<ClientEntry> {
  static constexpr const char* kName = "client";
  static ClientEntry* find(Instance& inst, int ref) { return inst.client(ref); }
  static ClientEntry* add(Instance& inst) { return inst.addClient(); }
  static std::string unknown(int ref) { return unknownRef("client", ref); }
};

// Applies the option properties carried by a command's object; returns the
// entry, or nullptr for a ref not in use (a wrong option throws either way).
template <class E>
E* updateEntry(Keys& keys, Instance& inst, const Napi::Object& obj, PresenceMask present, int ref) {
  E* e = Side<E>::find(inst, ref);
  // Nothing but the command's own keys (a send's `{ ref, clients }`): no
  // configuration to copy, read and store back on every call.
  if ((present & ~Keys::commandBits()) == 0) return e;
  auto cfg = e != nullptr ? e->config : decltype(e->config)();
  readOptions(keys, obj, present, cfg, Side<E>::kName);
  JsValues::Given given = JsValues::read(keys, obj, present);
  e = Side<E>::find(inst, ref);
  if (e == nullptr) return nullptr;
  e->config = std::move(cfg);
  e->js.apply(keys, given);
  return e;
}

// The object argument of a command that takes nothing else: its ref read
// (a TypeError for a wrong argument), its options applied. nullptr for a ref
// not in use.
template <class E>
E* commandTarget(const Napi::CallbackInfo& info, Keys& keys, int& ref) {
  Napi::Object obj = refObjectArg(keys, info[0], Side<E>::kName, ref);
  return updateEntry<E>(keys, *Instance::get(info.Env()), obj, keys.presence(obj), ref);
}

// What a send command (websocketClientSend, websocketServerSend,
// websocketServerPublish) reads before anything else: its object and ref, its
// data argument (checked here; its bytes are read only once no more JS can
// run), which keys the object has and its `binary` flag. Throws the
// TypeErrors of refObjectArg, isSendData and binaryArg, in that order.
struct SendArgs {
  Napi::Object obj;
  int ref = 0;
  Napi::Value data;
  PresenceMask present = 0;
  BinaryFlag binary = BinaryFlag::Unset;
};
template <class E>
SendArgs sendArgs(const Napi::CallbackInfo& info, Keys& keys) {
  SendArgs a;
  a.obj = refObjectArg(keys, info[0], Side<E>::kName, a.ref);
  a.data = info[1];
  if (!isSendData(a.data)) throwType(info.Env(), kSendDataError);
  a.present = keys.presence(a.obj);
  a.binary = binaryArg(keys, a.obj, a.present, Side<E>::kName);
  return a;
}

// Opens the send scope before a send reads its data. That calls into
// JavaScript (the `then` of a resolved promise, taken at the first send: an
// application may have replaced Promise.prototype.then by then), and that
// code may clear the entry: it is looked up again. Null when it is gone.
template <class E>
E* enterSendScope(Napi::Env env, int ref) {
  Instance& inst = *Instance::get(env);
  inst.sendScope().enter(env);
  return Side<E>::find(inst, ref);
}

// websocketServer / websocketClient: a new entry configured from the
// optional options argument (read completely before the entry exists).
template <class E>
E* createEntry(const Napi::CallbackInfo& info, Keys& keys) {
  Napi::Env env = info.Env();
  decltype(E::config) cfg;
  JsValues::Given given;
  if (info.Length() > 0 && !info[0].IsUndefined() && !info[0].IsNull()) {
    if (!info[0].IsObject()) throwType(env, "options must be an object");
    Napi::Object opts = info[0].As<Napi::Object>();
    PresenceMask present = keys.presence(opts);
    readOptions(keys, opts, present, cfg, "options");
    given = JsValues::read(keys, opts, present);
  }
  E* e = Side<E>::add(*Instance::get(env));
  e->config = std::move(cfg);
  e->js.apply(keys, given);
  return e;
}

// The object a command returns: the options, ref, then the values given
// for method, worker, window and process.
template <class E>
Napi::Object entryObject(Keys& keys, const E& e) {
  Napi::Object out = Napi::Object::New(keys.env());
  writeOptions(keys, out, e.config);
  keys.set(out, Key::ref, e.ref);
  e.js.writeTo(keys, out);
  return out;
}

}  // namespace addon
}  // namespace wsengine
