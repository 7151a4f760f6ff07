// The server commands (see commands.h for what they share with the
// client's).
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "commands.h"
#include "convert.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

using S = Side<ServerEntry>;

Napi::Value WebsocketServer(const Napi::CallbackInfo& info) {
  Keys keys(info.Env());
  return entryObject(keys, *createEntry<ServerEntry>(info, keys));
}

Napi::Value WebsocketServerStart(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  ServerEntry* s = commandTarget<ServerEntry>(info, keys, ref);
  if (s == nullptr) return refStatus(keys, S::unknown(ref));
  Napi::Object status = Napi::Object::New(env);
  if (s->engine->running()) {
    keys.set(status, Key::success, false);
    keys.set(status, Key::message, std::string("Server is already running"));
    return status;
  }
  ServerOptions opts = s->config.effective();
  if (s->config.inlineLoop) opts.loop = Instance::get(env)->embeddedLoop();
  // Port 0 asks the system for a port once. A restart binds the port it got
  // again: the object stop() returned says the server is there, and clients
  // that reconnect look for it there. If that port was taken meanwhile, the
  // system picks another, which the status reports.
  // Not with reusePort: binding the old port again could join another
  // listener's SO_REUSEPORT group there instead of failing.
  const bool samePort = opts.port == 0 && s->boundPort > 0 && !opts.reusePort;
  if (samePort) opts.port = s->boundPort;
  StartResult r = s->engine->start(opts);
  if (!r.success && samePort) {
    opts.port = 0;
    r = s->engine->start(opts);
  }
  if (r.success) {
    s->started = true;
    // Kept only for a configuration that says port 0: a fixed port given
    // later and then 0 again asks the system anew.
    s->boundPort = s->config.opts.port == 0 ? r.port : 0;
    Instance::get(env)->updateKeepAlive();
  }
  keys.set(status, Key::success, r.success);
  keys.set(status, Key::message, r.message);
  if (r.success) keys.set(status, Key::port, r.port);
  return status;
}

Napi::Value WebsocketServerStop(const Napi::CallbackInfo& info) {
  Keys keys(info.Env());
  int ref = 0;
  ServerEntry* s = commandTarget<ServerEntry>(info, keys, ref);
  if (s == nullptr) return refStatus(keys, S::unknown(ref));
  SendScope::flushNow();  // frames this task sent go before the close frames
  s->engine->stop();
  s->started = false;
  Instance::get(info.Env())->updateKeepAlive();
  Napi::Object out = entryObject(keys, *s);
  if (s->boundPort > 0) keys.set(out, Key::port, s->boundPort);  // the port listened on
  return out;
}

Napi::Value WebsocketServerSend(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  SendArgs a = sendArgs<ServerEntry>(info, keys);
  Napi::Value clientsV = env.Undefined();
  if (a.present & Keys::bit(Key::clients)) clientsV = keys.get(a.obj, Key::clients);
  bool explicitTargets = !clientsV.IsUndefined() && !clientsV.IsNull();
  std::vector<int> targets;
  std::vector<double> given;  // echoed as `client` even when not a valid ref
  if (explicitTargets) {
    const char* msg = "server.clients must be an array of client refs";
    if (!clientsV.IsArray()) throwType(env, msg);
    Napi::Array arr = clientsV.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!isInteger(v)) throwType(env, msg);
      double d = v.As<Napi::Number>().DoubleValue();
      given.push_back(d);
      targets.push_back(asConnRef(d));
    }
  }
  ServerEntry* s = updateEntry<ServerEntry>(keys, *Instance::get(env), a.obj, a.present, a.ref);
  if (s == nullptr || (s = enterSendScope<ServerEntry>(env, a.ref)) == nullptr) return Napi::Array::New(env);

  SendData data;
  readSendData(a.data, data);  // no JS runs from here to the engine call
  bool binary = sendsBinary(a.binary, data.isString);
  // "All" means the connections JavaScript has seen opened (the ones
  // websocketServerClients lists), so every status carries a known ref.
  if (!explicitTargets) {
    targets = s->conns.refs();
    given.assign(targets.begin(), targets.end());
  }
  std::vector<uint64_t> conns;
  conns.reserve(targets.size());
  for (int t : targets) {
    uint64_t c = s->conns.connOf(t);
    if (c != 0) conns.push_back(c);
  }
  std::vector<SendResult> results;
  // After stop the connections are closing: nothing may follow their close
  // frame, so every target fails below ("No result") instead.
  if (!conns.empty() && s->started) {
    results = s->engine->send(&conns, data.bytes, data.length, binary);
  }
  std::unordered_map<uint64_t, size_t> byConn;
  for (size_t i = 0; i < results.size(); ++i) byConn.emplace(results[i].conn, i);

  std::vector<SendResult> rows(targets.size());
  size_t next = 0;  // results come in target order; byConn covers any other
  for (size_t k = 0; k < targets.size(); ++k) {
    int t = targets[k];
    uint64_t c = s->conns.connOf(t);
    SendResult& r = rows[k];
    if (c == 0) {
      r.message = "Unknown client ref";
    } else if (next < results.size() && results[next].conn == c) {
      r = results[next++];
    } else if (byConn.count(c)) {
      r = results[byConn[c]];
    } else {
      r.payloadSize = data.length;
      r.message = s->started ? "No result for this client" : "Server is not running";
    }
  }
  if (rows.empty()) return Napi::Array::New(env);
  return sendStatusList(keys, rows, given);
}

// The facade's fast path for a send to one connection (lib/commands.ts):
// (ref, client, binary, data, out) with ref a number, client an integer,
// binary undefined or a boolean, taken only when the object carried nothing
// but ref, clients: [client] and binary. The same send as
// WebsocketServerSend with that object, minus reading it through Node-API
// and building the status here: out (a Float64Array of 5) receives success,
// compressionError, payloadSize, wireSize, bufferedAmount and the result is
// undefined, or the status's message. null: nothing was sent, the general
// path must answer (unknown ref or client, stopped server: its statuses).
Napi::Value WebsocketServerSendTo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!isSendData(info[3])) throwType(env, kSendDataError);
  Napi::Value binaryV = info[2];
  BinaryFlag binaryFlag = BinaryFlag::Unset;
  if (binaryV.IsBoolean()) {
    binaryFlag = binaryV.As<Napi::Boolean>().Value() ? BinaryFlag::True : BinaryFlag::False;
  } else if (!binaryV.IsUndefined()) {
    return env.Null();
  }
  if (!info[0].IsNumber() || !info[1].IsNumber() || !info[4].IsTypedArray()) return env.Null();
  int ref = asRef(info[0].As<Napi::Number>().DoubleValue());
  int client = asConnRef(info[1].As<Napi::Number>().DoubleValue());
  napi_typedarray_type outType;
  size_t outLength = 0;
  void* outData = nullptr;
  if (napi_get_typedarray_info(env, info[4], &outType, &outLength, &outData, nullptr, nullptr) !=
          napi_ok ||
      outType != napi_float64_array || outLength < 5)
    return env.Null();
  ServerEntry* s = Instance::get(env)->server(ref);
  if (s == nullptr || !s->started || client == 0) return env.Null();
  uint64_t conn = s->conns.connOf(client);
  if (conn == 0) return env.Null();

  // From here on this is WebsocketServerSend for one target: whatever that
  // does before reading the data belongs here too.
  s = enterSendScope<ServerEntry>(env, ref);
  if (s == nullptr || !s->started || (conn = s->conns.connOf(client)) == 0) return env.Null();
  SendData data;
  readSendData(info[3], data);  // no JS runs from here to the engine call
  SendResult r = s->engine->sendOne(conn, data.bytes, data.length, sendsBinary(binaryFlag, data.isString));
  double* out = static_cast<double*>(outData);
  out[0] = r.success ? 1 : 0;
  out[1] = r.compressionError ? 1 : 0;
  out[2] = static_cast<double>(r.payloadSize);
  out[3] = static_cast<double>(r.wireSize);
  out[4] = static_cast<double>(r.bufferedAmount);
  if (r.success && r.message.empty()) return env.Undefined();
  return Napi::String::New(env, r.message);
}

Napi::Value WebsocketServerClear(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], S::kName, ref);
  if (!Instance::get(env)->clearServer(ref)) return refStatus(keys, S::unknown(ref));
  return Napi::Object::New(env);
}

Napi::Value WebsocketServerClients(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  ServerEntry* s = commandTarget<ServerEntry>(info, keys, ref);
  Napi::Array out = Napi::Array::New(env);
  if (s == nullptr) return out;
  uint32_t i = 0;
  for (int c : s->conns.refs()) out.Set(i++, c);
  return out;
}

// (server, client, code = 1000, reason = "") -> whether a close was started.
Napi::Value WebsocketServerCloseClient(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], S::kName, ref);
  int client = connRefArg(info[1]);
  int code = closeCodeArg(info[2]);
  std::string reason = closeReasonArg(info[3]);
  ServerEntry* s = Instance::get(env)->server(ref);
  if (s == nullptr) return Napi::Boolean::New(env, false);
  uint64_t conn = s->conns.connOf(client);
  if (conn == 0) return Napi::Boolean::New(env, false);
  SendScope::flushNow();
  return Napi::Boolean::New(env, s->engine->closeConnection(conn, code, reason));
}

// (server, client, data?) -> whether a ping was queued (false when the
// connection is not open). The object's options apply, as with every command
// (its `method` then receives the pong), once the other arguments are known
// to be good.
Napi::Value WebsocketServerPing(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], S::kName, ref);
  int client = connRefArg(info[1]);
  std::string payload = pingDataArg(info[2]);
  ServerEntry* s = updateEntry<ServerEntry>(keys, *Instance::get(env), obj, keys.presence(obj), ref);
  if (s == nullptr || !s->started) return Napi::Boolean::New(env, false);
  uint64_t conn = s->conns.connOf(client);
  if (conn == 0) return Napi::Boolean::New(env, false);
  return Napi::Boolean::New(
      env, s->engine->ping(conn, reinterpret_cast<const uint8_t*>(payload.data()), payload.size()));
}

// (server, token, { accept, status?, message?, headers?, protocol? }, owner):
// the verdict on a connection waiting in verifyClient (token and owner: what
// the handler was given, the connection's id and its engine's tag). False
// for an unknown server, or one that is not the engine that asked: a server
// cleared while its hook ran leaves its ref to the next one made, whose
// connection ids start at 1 again, and an answer meant for the first must
// never let a client of the second in. A connection gone meanwhile
// (handshakeTimeout) ignores it.
Napi::Value WebsocketServerAnswerVerify(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], S::kName, ref);
  if (!isInteger(info[1]) || info[1].As<Napi::Number>().DoubleValue() < 1)
    throwType(env, "token must be a positive integer");
  uint64_t conn = static_cast<uint64_t>(info[1].As<Napi::Number>().DoubleValue());
  if (!info[2].IsObject()) throwType(env, "answer must be an object");
  Napi::Object o = info[2].As<Napi::Object>();
  VerifyAnswer a;
  Napi::Value v = keys.get(o, Key::accept);
  if (!v.IsBoolean()) throwType(env, "answer.accept must be a boolean");
  a.accept = v.As<Napi::Boolean>().Value();
  v = keys.get(o, Key::status);
  if (!v.IsUndefined()) {
    double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : 0;
    if (!isInteger(v) || d < 400 || d > 599)
      throwType(env, "answer.status must be an integer between 400 and 599");
    a.status = static_cast<int>(d);
  }
  v = keys.get(o, Key::message);
  if (!v.IsUndefined()) {
    if (!v.IsString()) throwType(env, "answer.message must be a string");
    a.message = v.As<Napi::String>().Utf8Value();
  }
  v = keys.get(o, Key::headers);
  if (!v.IsUndefined()) {
    if (!v.IsObject() || v.IsArray() || v.IsFunction()) throwType(env, "answer.headers must be an object");
    a.headers = headersArg(v.As<Napi::Object>(), "answer.headers", false);
  }
  v = keys.get(o, Key::protocol);
  if (!v.IsUndefined() && !v.IsNull()) {
    if (!v.IsString()) throwType(env, "answer.protocol must be a string");
    a.chooseProtocol = true;
    a.protocol = v.As<Napi::String>().Utf8Value();
  }
  if (!isInteger(info[3]) || info[3].As<Napi::Number>().DoubleValue() < 0)
    throwType(env, "owner must be a non-negative integer");
  uint64_t owner = static_cast<uint64_t>(info[3].As<Napi::Number>().DoubleValue());
  ServerEntry* s = Instance::get(env)->server(ref);
  if (s == nullptr || s->tag != owner) return Napi::Boolean::New(env, false);
  s->engine->answerVerify(conn, std::move(a));
  return Napi::Boolean::New(env, true);
}

}  // namespace

void registerServerCommands(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "websocketServer", WebsocketServer);
  exportFunction(env, exports, "websocketServerStart", WebsocketServerStart);
  exportFunction(env, exports, "websocketServerStop", WebsocketServerStop);
  exportFunction(env, exports, "websocketServerSend", WebsocketServerSend);
  exportFunction(env, exports, "websocketServerSendTo", WebsocketServerSendTo);
  exports.Set("hasConfigKeys",
              Napi::Value(env, Instance::get(env)->keyStore().hasConfigKeys(env)));
  exportFunction(env, exports, "websocketServerClear", WebsocketServerClear);
  exportFunction(env, exports, "websocketServerClients", WebsocketServerClients);
  exportFunction(env, exports, "websocketServerCloseClient", WebsocketServerCloseClient);
  exportFunction(env, exports, "websocketServerPing", WebsocketServerPing);
  exportFunction(env, exports, "websocketServerAnswerVerify", WebsocketServerAnswerVerify);
}

}  // namespace addon
}  // namespace wsengine
