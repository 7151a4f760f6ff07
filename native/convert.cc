#include "convert.h"

#include <string>
#include <utility>

#include "args.h"
#include "factories.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

// Own data property even for names such as "__proto__" (a plain Set would
// hit the prototype setter and drop the header).
void defineValue(Napi::Object& obj, const std::string& key, const Napi::Value& value) {
  obj.DefineProperty(
      Napi::PropertyDescriptor::Value(key, value, static_cast<napi_property_attributes>(
                                                      napi_writable | napi_enumerable |
                                                      napi_configurable)));
}

constexpr size_t kExternalBufferMin = 64 * 1024;

Napi::Value binaryData(Napi::Env env, std::string& data, std::string** lent) {
  if (data.empty()) return Napi::Buffer<char>::New(env, 0);
  // Small payloads are copied into a V8-owned Buffer and freed at once: an
  // external Buffer's bytes are invisible to V8's GC heuristics, so a flood of
  // them let native memory grow by the whole flood before any was collected.
  if (data.size() < kExternalBufferMin) {
    Napi::Buffer<char> b = Napi::Buffer<char>::Copy(env, data.data(), data.size());
    // Up to kSpareCapacity the string stays in its event: the queue gives it
    // back to the IO threads after the batch (EventQueue::collectSpares).
    if (data.capacity() > kSpareCapacity) recycleBuffer(std::move(data));
    return b;
  }
  // Large ones alias the event's bytes (no copy) and are reported to V8 as
  // external memory by V8 itself: every ArrayBuffer's backing store, an
  // external one too, counts toward its collection heuristics (copied
  // instead where external buffers are not allowed, e.g. Electron's V8).
  // Reporting them again (napi_adjust_external_memory) counted each payload
  // twice: a full collection every ~32 MiB received instead of every ~64 MiB,
  // 10-20 % of a large-message echo server's CPU (test/external-memory).
  auto* owned = new std::string(std::move(data));
  const char* bytes = owned->data();
  Napi::Buffer<char> b = Napi::Buffer<char>::NewOrCopy(
      env, &(*owned)[0], owned->size(),
      [](Napi::Env, char*, std::string* s) {
        recycleBuffer(std::move(*s));  // the next large message reuses it
        delete s;
      },
      owned);
  // Only a Buffer over the engine's own bytes can be lent (NewOrCopy may
  // have copied them, and then already deleted `owned`).
  if (lent != nullptr && b.Data() == bytes) *lent = owned;
  return b;
}

void setData(Keys& k, Napi::Object& ctx, Event& ev) {
  bool binary = false;
  napi_value data = eventData(k.env(), ev, binary, nullptr);
  k.set(ctx, Key::wireSize, static_cast<double>(ev.wireSize));
  k.set(ctx, Key::binary, binary);
  k.set(ctx, Key::data, data);
}

void check(napi_env env, napi_status st) {
  if (st != napi_ok) throw Napi::Error::New(Napi::Env(env));
}

napi_value makeDouble(napi_env env, double v) {
  napi_value n;
  check(env, napi_create_double(env, v, &n));
  return n;
}

napi_value makeBool(napi_env env, bool v) {
  napi_value b;
  check(env, napi_get_boolean(env, v, &b));
  return b;
}

bool hasMessage(const SendResult& r) { return !r.success || !r.message.empty(); }

}  // namespace

bool hasDataContext(EventType type) {
  return type == EventType::Message || type == EventType::Fragment ||
         type == EventType::Ping || type == EventType::Pong;
}

napi_value eventData(Napi::Env env, Event& ev, bool& binary, std::string** lent) {
  binary = ev.binary;
  if (binary) return binaryData(env, ev.data, lent);
  napi_value s;
  if (napi_create_string_utf8(env, ev.data.data(), ev.data.size(), &s) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) throw Napi::Error::New(env);
    // V8 refuses without an exception when the text is too long for a string.
    throw Napi::Error::New(env, "V8 could not make a string of " + std::to_string(ev.data.size()) +
                                    " bytes of UTF-8 (its longest string is "
                                    "buffer.constants.MAX_STRING_LENGTH characters)");
  }
  if (ev.data.capacity() > kSpareCapacity) recycleBuffer(std::move(ev.data));  // else: as above
  return s;
}

void giveBackLent(napi_env env, napi_value buffer, std::string* owner) {
  napi_value ab;
  bool detached = true;
  if (napi_get_typedarray_info(env, buffer, nullptr, nullptr, nullptr, &ab, nullptr) != napi_ok ||
      napi_is_detached_arraybuffer(env, ab, &detached) != napi_ok || detached) {
    return;  // left to the finalizer
  }
  // Taken out first (the bytes stay where they are): the finalizer, which
  // Node runs once no ArrayBuffer holds the memory any more, then finds an
  // empty string, whenever it runs.
  std::string bytes = std::move(*owner);
  if (napi_detach_arraybuffer(env, ab) != napi_ok) {
    *owner = std::move(bytes);  // still the Buffer's: left to the finalizer
    return;
  }
  recycleBuffer(std::move(bytes));
}

Key eventTypeKey(EventType type) {
  switch (type) {
    case EventType::Open: return Key::open;
    case EventType::Close: return Key::close;
    case EventType::Error: return Key::error;
    case EventType::Fragment: return Key::fragment;
    case EventType::Ping: return Key::ping;
    case EventType::Pong: return Key::pong;
    case EventType::Message: return Key::message;
    case EventType::Verify:   // handled by Delivery, never a JS event type
    case EventType::Closing: break;
  }
  return Key::error;
}

Napi::Object headersObject(Napi::Env env, const Headers& headers) {
  Napi::Object obj = Napi::Object::New(env);
  for (const auto& h : headers) {
    // A repeated header folds into one value, as HTTP allows.
    Napi::Value prev = obj.HasOwnProperty(h.first) ? obj.Get(h.first) : env.Undefined();
    std::string value = prev.IsString() ? prev.As<Napi::String>().Utf8Value() + ", " + h.second
                                        : h.second;
    defineValue(obj, h.first, Napi::String::New(env, value));
  }
  return obj;
}

napi_value tlsInfo(Keys& k, const PeerInfo& peer) {
  Napi::Env env = k.env();
  if (!peer.secure) return env.Null();
  Napi::Object o = Napi::Object::New(env);
  k.set(o, Key::protocol, peer.tlsProtocol);
  k.set(o, Key::cipher, peer.tlsCipher);
  k.set(o, Key::resumed, peer.tlsResumed);
  k.set(o, Key::peerCertificate, peer.peerCertificate);
  return o;
}

Napi::Object eventContext(Keys& k, Event& ev) {
  Napi::Env env = k.env();
  Napi::Object ctx = Napi::Object::New(env);
  switch (ev.type) {
    case EventType::Message:
    case EventType::Fragment:
    case EventType::Ping:
    case EventType::Pong:
      setData(k, ctx, ev);
      break;
    case EventType::Open: {
      k.set(ctx, Key::uri, ev.uri);
      Napi::Object headers = headersObject(env, ev.headers);
      k.set(ctx, Key::headers, headers);
      // Who the peer is and what the handshake agreed.
      static const PeerInfo kNone;
      const PeerInfo& peer = ev.peer ? *ev.peer : kNone;
      k.set(ctx, Key::protocol, peer.protocol);
      k.set(ctx, Key::extensions, peer.extensions);
      k.set(ctx, Key::remoteAddress, peer.remoteAddress);
      k.set(ctx, Key::remotePort, peer.remotePort);
      k.set(ctx, Key::tls, tlsInfo(k, peer));
      // The 4D plugin also adds each header as a key/value on the context
      // (never over the context's own keys).
      Napi::Array names = headers.GetPropertyNames();
      for (uint32_t i = 0; i < names.Length(); ++i) {
        std::string name = names.Get(i).As<Napi::String>().Utf8Value();
        if (name == "uri" || name == "headers" || name == "protocol" || name == "extensions" ||
            name == "remoteAddress" || name == "remotePort" || name == "tls")
          continue;
        defineValue(ctx, name, headers.Get(name));
      }
      break;
    }
    case EventType::Verify:
    case EventType::Closing:
      break;
    case EventType::Error:
      k.set(ctx, Key::decompressionError, ev.decompressionError);
      k.set(ctx, Key::reason, ev.reason);
      k.set(ctx, Key::http_status, ev.httpStatus);
      k.set(ctx, Key::wait_time, ev.waitTime);
      k.set(ctx, Key::retries, ev.retries);
      break;
    case EventType::Close:
      k.set(ctx, Key::code, ev.code);
      k.set(ctx, Key::reason, ev.reason);
      k.set(ctx, Key::remote, ev.remote);
      // A client that will reconnect says when (the error event's keys).
      if (ev.retries > 0) {
        k.set(ctx, Key::wait_time, ev.waitTime);
        k.set(ctx, Key::retries, ev.retries);
      }
      break;
  }
  return ctx;
}

Napi::Object connectStatus(Keys& k, const ConnectResult& r) {
  Napi::Object o = Napi::Object::New(k.env());
  k.set(o, Key::success, r.success);
  k.set(o, Key::http_status, r.httpStatus);
  k.set(o, Key::errorStr, r.errorStr);
  k.set(o, Key::uri, r.uri);
  k.set(o, Key::headers, headersObject(k.env(), r.headers));
  k.set(o, Key::protocol, r.protocol);
  k.set(o, Key::redirects, r.redirects);
  return o;
}

Napi::Object sendStatus(Keys& k, const SendResult& r) {
  napi_env env = k.env();
  napi_value argv[6] = {
      makeBool(env, r.success),
      makeBool(env, r.compressionError),
      makeDouble(env, static_cast<double>(r.payloadSize)),
      makeDouble(env, static_cast<double>(r.wireSize)),
      makeDouble(env, static_cast<double>(r.bufferedAmount)),
      nullptr,
  };
  size_t argc = 5;
  if (hasMessage(r)) {
    check(env, napi_create_string_utf8(env, r.message.data(), r.message.size(), &argv[5]));
    argc = 6;
  }
  napi_value fn = Instance::get(k.env())->factories().get(env, Factories::kStatus);
  napi_value undefined, out;
  check(env, napi_get_undefined(env, &undefined));
  check(env, napi_call_function(env, undefined, fn, argc, argv, &out));
  return Napi::Object(env, out);
}

Napi::Array sendStatusList(Keys& k, const std::vector<SendResult>& results,
                           const std::vector<double>& clients) {
  napi_env env = k.env();
  const size_t n = results.size();
  if (n == 1) {
    // One target (an echo): positional arguments, no typed array whose
    // backing store V8 would have to allocate and sweep.
    const SendResult& r = results[0];
    napi_value argv[7] = {
        makeBool(env, r.success),
        makeBool(env, r.compressionError),
        makeDouble(env, static_cast<double>(r.payloadSize)),
        makeDouble(env, static_cast<double>(r.wireSize)),
        makeDouble(env, static_cast<double>(r.bufferedAmount)),
        makeDouble(env, clients[0]),
        nullptr,
    };
    size_t argc = 6;
    if (hasMessage(r)) {
      check(env, napi_create_string_utf8(env, r.message.data(), r.message.size(), &argv[6]));
      argc = 7;
    }
    napi_value fn = Instance::get(k.env())->factories().get(env, Factories::kStatusOne);
    napi_value undefined, out;
    check(env, napi_get_undefined(env, &undefined));
    check(env, napi_call_function(env, undefined, fn, argc, argv, &out));
    return Napi::Array(env, out);
  }
  // Every number of every status in one typed array, and the messages (rare:
  // failures) in a sparse array only when there are any: two or three
  // Node-API calls per send instead of seven per target.
  void* raw = nullptr;
  napi_value ab, fields;
  check(env, napi_create_arraybuffer(env, n * 6 * sizeof(double), &raw, &ab));
  check(env, napi_create_typedarray(env, napi_float64_array, n * 6, ab, 0, &fields));
  double* f = static_cast<double*>(raw);
  napi_value msgs;
  check(env, napi_get_undefined(env, &msgs));
  bool anyMessage = false;
  for (size_t i = 0; i < n; ++i) {
    const SendResult& r = results[i];
    double* row = f + i * 6;
    row[0] = r.success ? 1 : 0;
    row[1] = r.compressionError ? 1 : 0;
    row[2] = static_cast<double>(r.payloadSize);
    row[3] = static_cast<double>(r.wireSize);
    row[4] = static_cast<double>(r.bufferedAmount);
    row[5] = clients[i];
    if (!hasMessage(r)) continue;
    if (!anyMessage) {
      check(env, napi_create_array_with_length(env, n, &msgs));
      anyMessage = true;
    }
    napi_value m;
    check(env, napi_create_string_utf8(env, r.message.data(), r.message.size(), &m));
    check(env, napi_set_element(env, msgs, static_cast<uint32_t>(i), m));
  }
  napi_value argv[3] = {makeDouble(env, static_cast<double>(n)), fields, msgs};
  napi_value fn = Instance::get(k.env())->factories().get(env, Factories::kStatusList);
  napi_value undefined, out;
  check(env, napi_get_undefined(env, &undefined));
  check(env, napi_call_function(env, undefined, fn, 3, argv, &out));
  return Napi::Array(env, out);
}

Napi::Object refStatus(Keys& k, const std::string& message) {
  Napi::Object o = Napi::Object::New(k.env());
  k.set(o, Key::success, false);
  k.set(o, Key::message, message);
  return o;
}

bool isSendData(const Napi::Value& value) {
  return value.IsString() || value.IsTypedArray() || value.IsDataView() || value.IsArrayBuffer();
}

void readSendData(const Napi::Value& value, SendData& out) {
  napi_env env = value.Env();
  napi_value v = value;
  if (value.IsString()) {
    out.isString = true;
    out.text = value.As<Napi::String>().Utf8Value();
    out.bytes = reinterpret_cast<const uint8_t*>(out.text.data());
    out.length = out.text.size();
    return;
  }
  void* data = nullptr;
  size_t length = 0;
  bool ok = false;
  napi_value backing = nullptr;  // the view's ArrayBuffer (the value itself for one)
  if (value.IsTypedArray()) {  // Buffer included
    napi_typedarray_type type;
    size_t count = 0;
    ok = napi_get_typedarray_info(env, v, &type, &count, &data, &backing, nullptr) == napi_ok;
    size_t width = 1;
    switch (type) {
      case napi_int16_array:
      case napi_uint16_array:
        width = 2;
        break;
      case napi_int32_array:
      case napi_uint32_array:
      case napi_float32_array:
        width = 4;
        break;
      case napi_float64_array:
      case napi_bigint64_array:
      case napi_biguint64_array:
        width = 8;
        break;
      default:
        width = 1;
    }
    length = count * width;
  } else if (value.IsDataView()) {
    ok = napi_get_dataview_info(env, v, &length, &data, &backing, nullptr) == napi_ok;
  } else if (value.IsArrayBuffer()) {
    ok = napi_get_arraybuffer_info(env, v, &data, &length) == napi_ok;
    backing = v;
  }
  if (!ok) throwType(value.Env(), kSendDataError);
  // A detached buffer reads as empty; sending it would put an empty message
  // on the wire where the application meant its bytes. In practice it is a
  // borrowed payload (borrowedPayloads) used after its event returned.
  // Checked only for what reads as empty: a real empty message stays cheap.
  bool detached = false;
  if ((data == nullptr || length == 0) && backing != nullptr &&
      napi_is_detached_arraybuffer(env, backing, &detached) == napi_ok && detached)
    throwType(value.Env(), kDetachedDataError);
  out.isString = false;
  out.bytes = static_cast<const uint8_t*>(data);
  out.length = data == nullptr ? 0 : length;  // a detached buffer has no bytes
}

}  // namespace addon
}  // namespace wsengine
