// The server's topic commands: websocketServerSubscribe(server, client,
// topic), websocketServerUnsubscribe(server, client, topic),
// websocketServerPublish({ ref, topic, binary }, data) and
// websocketServerTopics(server). The engine keeps the subscriptions (ended
// with their connections) and builds each published frame once; a bus that
// reaches other processes is the JavaScript facade's (lib/bus.ts).
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "convert.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

using S = Side<ServerEntry>;

// A topic: a non-empty string. Throws "<what> must be a non-empty string".
std::string topicArg(const Napi::Value& v, const std::string& what) {
  if (!v.IsString()) throwType(v.Env(), what + " must be a non-empty string");
  std::string t = v.As<Napi::String>().Utf8Value();
  if (t.empty()) throwType(v.Env(), what + " must be a non-empty string");
  return t;
}

Napi::Object topicStatus(Keys& keys, bool success, const std::string& message, double client,
                         const std::string& topic, size_t subscribers) {
  Napi::Object o = Napi::Object::New(keys.env());
  keys.set(o, Key::success, success);
  keys.set(o, Key::message, message);
  keys.set(o, Key::client, client);
  keys.set(o, Key::topic, topic);
  keys.set(o, Key::subscribers, static_cast<double>(subscribers));
  return o;
}

Napi::Value subscribeCommand(const Napi::CallbackInfo& info, bool on) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  Napi::Object obj = refObjectArg(keys, info[0], S::kName, ref);
  int client = connRefArg(info[1]);
  std::string topic = topicArg(info[2], "topic");
  ServerEntry* s = updateEntry<ServerEntry>(keys, *Instance::get(env), obj, keys.presence(obj), ref);
  if (s == nullptr) return topicStatus(keys, false, S::unknown(ref), client, topic, 0);
  uint64_t conn = s->conns.connOf(client);
  if (conn == 0) return topicStatus(keys, false, "Unknown client ref", client, topic, 0);
  TopicResult r = on ? s->engine->subscribe(conn, topic) : s->engine->unsubscribe(conn, topic);
  return topicStatus(keys, r.success, r.message, client, topic, r.count);
}

Napi::Value WebsocketServerSubscribe(const Napi::CallbackInfo& info) {
  return subscribeCommand(info, true);
}

Napi::Value WebsocketServerUnsubscribe(const Napi::CallbackInfo& info) {
  return subscribeCommand(info, false);
}

Napi::Value WebsocketServerPublish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  SendArgs a = sendArgs<ServerEntry>(info, keys);
  std::string topic = topicArg(keys.get(a.obj, Key::topic), "server.topic");
  ServerEntry* s = updateEntry<ServerEntry>(keys, *Instance::get(env), a.obj, a.present, a.ref);

  Napi::Object out = Napi::Object::New(env);
  PublishResult r;
  if (s != nullptr && s->started) s = enterSendScope<ServerEntry>(env, a.ref);
  if (s == nullptr) {
    r.message = S::unknown(a.ref);
  } else {
    SendData data;
    readSendData(a.data, data);  // no JS runs from here to the engine call
    r.payloadSize = data.length;
    if (!s->started)
      r.message = "Server is not running";
    else
      r = s->engine->publish(topic, data.bytes, data.length, sendsBinary(a.binary, data.isString));
  }
  keys.set(out, Key::success, r.success);
  keys.set(out, Key::message, r.message);
  keys.set(out, Key::topic, topic);
  keys.set(out, Key::subscribers, static_cast<double>(r.subscribers));
  keys.set(out, Key::sent, static_cast<double>(r.sent));
  keys.set(out, Key::failed, static_cast<double>(r.failed));
  keys.set(out, Key::payloadSize, static_cast<double>(r.payloadSize));
  keys.set(out, Key::wireSize, static_cast<double>(r.wireSize));
  return out;
}

Napi::Value WebsocketServerTopics(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  ServerEntry* s = commandTarget<ServerEntry>(info, keys, ref);
  Napi::Array out = Napi::Array::New(env);
  if (s == nullptr) return out;
  uint32_t i = 0;
  for (const auto& t : s->engine->topics()) {
    Napi::Object o = Napi::Object::New(env);
    keys.set(o, Key::topic, t.first);
    keys.set(o, Key::subscribers, static_cast<double>(t.second));
    out.Set(i++, o);
  }
  return out;
}

// (ref, topics: string[]) -> number[]: each topic's local subscribers (0 for
// an unknown server). For lib/bus.ts: after closes it asks about the topics of
// the closed connections only, not every topic of the server.
Napi::Value TopicSubscribers(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int ref = refArg(info[0]);
  if (!info[1].IsArray()) throwType(env, "topics must be an array of strings");
  Napi::Array in = info[1].As<Napi::Array>();
  std::vector<std::string> names;
  names.reserve(in.Length());
  for (uint32_t i = 0; i < in.Length(); ++i) {
    Napi::Value v = in.Get(i);
    if (!v.IsString()) throwType(env, "topics must be an array of strings");
    names.push_back(v.As<Napi::String>().Utf8Value());
  }
  ServerEntry* s = Instance::get(env)->server(ref);
  std::vector<size_t> counts = s != nullptr ? s->engine->topicCounts(names) : std::vector<size_t>(names.size(), 0);
  Napi::Array out = Napi::Array::New(env, counts.size());
  for (uint32_t i = 0; i < counts.size(); ++i) out.Set(i, static_cast<double>(counts[i]));
  return out;
}

}  // namespace

void registerTopicCommands(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "topicSubscribers", TopicSubscribers);
  exportFunction(env, exports, "websocketServerSubscribe", WebsocketServerSubscribe);
  exportFunction(env, exports, "websocketServerUnsubscribe", WebsocketServerUnsubscribe);
  exportFunction(env, exports, "websocketServerPublish", WebsocketServerPublish);
  exportFunction(env, exports, "websocketServerTopics", WebsocketServerTopics);
}

}  // namespace addon
}  // namespace wsengine
