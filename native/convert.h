// Engine values -> JavaScript values (event contexts, statuses) and the
// send data argument -> bytes.
#pragma once

#include "napi_config.h"

#include <cstdint>
#include <string>
#include <vector>

#include "keys.h"
#include "wsengine/wsengine.h"

namespace wsengine {
namespace addon {

Key eventTypeKey(EventType type);

// The context object of an event. Binary payloads become Buffers over the
// event's own bytes (moved out of ev.data, freed by the Buffer's finalizer).
Napi::Object eventContext(Keys& keys, Event& ev);

// Whether the event's context is { wireSize, binary, data } (message,
// fragment, ping, pong), and that data: a Buffer when ev.binary, else a
// string. The engine flags binary every ping or pong whose payload is not
// UTF-8; its text (messages, fragments cut at code points) is valid UTF-8.
// With `lent` given, a Buffer made over the engine's own bytes (an external
// one, 64 KiB and more) sets *lent to the string that owns them (see
// giveBackLent); otherwise it is left alone.
bool hasDataContext(EventType type);
napi_value eventData(Napi::Env env, Event& ev, bool& binary, std::string** lent = nullptr);

// Ends a lent payload's loan (borrowedPayloads): detaches its Buffer's
// ArrayBuffer (from then on it reads as empty) and gives the bytes back to
// the engine's pool at once, hot for the next large message, instead of
// when V8 collects the Buffer. A Buffer the method already detached (its
// ArrayBuffer transferred elsewhere) keeps its bytes: its finalizer gives
// them back when its last holder is collected.
void giveBackLent(napi_env env, napi_value buffer, std::string* owner);

Napi::Object headersObject(Napi::Env env, const Headers& headers);

// The `tls` of an open context and of verifyClient's info: { protocol,
// cipher, resumed, peerCertificate } for a TLS connection, null otherwise.
napi_value tlsInfo(Keys& keys, const PeerInfo& peer);

Napi::Object connectStatus(Keys& keys, const ConnectResult& r);

// Client send status.
Napi::Object sendStatus(Keys& keys, const SendResult& r);
// Server send statuses, one per result, each with `client` (the target ref
// as given, clients[i]), built by one JavaScript call.
Napi::Array sendStatusList(Keys& keys, const std::vector<SendResult>& results,
                           const std::vector<double>& clients);

// { success: false, message }
Napi::Object refStatus(Keys& keys, const std::string& message);

// Bytes of a send's data argument. For strings the UTF-8 is held in `text`;
// for binary views `bytes` points into the JS buffer itself (no copy), valid
// for the duration of the native call.
struct SendData {
  bool isString = false;
  std::string text;
  const uint8_t* bytes = nullptr;
  size_t length = 0;
};
// Whether value is one of the accepted kinds (checked before any other
// argument is read; the bytes are taken last, after every JS getter ran).
bool isSendData(const Napi::Value& value);
const char* const kSendDataError =
    "data must be a string, Buffer, TypedArray, DataView or ArrayBuffer";
const char* const kDetachedDataError =
    "data is a detached buffer: a borrowed payload (borrowedPayloads) is valid only until its "
    "event's method returns; copy it there with Buffer.from(data) to send it later";
// Throws TypeError kSendDataError for anything else, kDetachedDataError for a
// view of a detached ArrayBuffer (or one itself).
void readSendData(const Napi::Value& value, SendData& out);

}  // namespace addon
}  // namespace wsengine
