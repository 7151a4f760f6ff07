#include <napi.h>
#include <uv.h>
#include <openssl/sha.h>
#include <zlib.h>
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("uv", Napi::String::New(env, uv_version_string()));
  exports.Set("zlib", Napi::String::New(env, zlibVersion()));
  return exports;
}
NODE_API_MODULE(ix_websocket, Init)
