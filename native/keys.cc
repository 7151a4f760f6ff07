#include "keys.h"

#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

const char* const kNames[] = {
#define IXWS_KEY_NAME(name) #name,
#define IXWS_OPTION_KEY_NAME(name, ...) #name,
    IXWS_FOR_EACH_KEY(IXWS_OPTION_KEY_NAME, IXWS_KEY_NAME)
#undef IXWS_OPTION_KEY_NAME
#undef IXWS_KEY_NAME
};
static_assert(sizeof(kNames) / sizeof(kNames[0]) == static_cast<size_t>(Key::kCount),
              "one name per key");

void check(napi_env env, napi_status st) {
  if (st != napi_ok) throw Napi::Error::New(env);
}

// The keys a command's object may carry at its top level: bit i is kTop[i].
const Key kTop[] = {
    Key::ref, Key::method, Key::worker, Key::window, Key::process,
#define IXWS_TOP_OPTION(name, ...) Key::name,
    IXWS_OPTIONS(IXWS_TOP_OPTION)
#undef IXWS_TOP_OPTION
    Key::clients, Key::binary,
};
// The JS side sums powers of two in a double: exact up to 2^52.
static_assert(sizeof(kTop) / sizeof(kTop[0]) <= 53, "presence bits must fit a double's mantissa");

struct BitTable {
  PresenceMask bits[static_cast<size_t>(Key::kCount)] = {};
  BitTable() {
    for (size_t i = 0; i < sizeof(kTop) / sizeof(kTop[0]); ++i) {
      bits[static_cast<size_t>(kTop[i])] = PresenceMask(1) << i;
    }
  }
};
const BitTable kBits;

}  // namespace

const char* keyName(Key k) { return kNames[static_cast<size_t>(k)]; }

void KeyStore::init(Napi::Env env) {
  Napi::Array arr = Napi::Array::New(env, static_cast<size_t>(Key::kCount));
  for (uint32_t i = 0; i < static_cast<uint32_t>(Key::kCount); ++i) {
    arr.Set(i, Napi::String::New(env, kNames[i]));
  }
  array_ = Napi::Persistent(static_cast<Napi::Object>(arr));

  // Sums rather than ORs: bitwise operators would cut the mask to 32 bits.
  std::string src = "(function (o) { var m = 0;";
  for (size_t i = 0; i < sizeof(kTop) / sizeof(kTop[0]); ++i) {
    src += " if (o." + std::string(keyName(kTop[i])) + " !== undefined) m += " +
           std::to_string(PresenceMask(1) << i) + ";";
  }
  src += " return m; })";
  napi_value fn;
  check(env, napi_run_script(env, Napi::String::New(env, src), &fn));
  presence_ = Napi::Persistent(Napi::Function(env, fn));

  // Whether o carries a configuration key (anything presence() knows but
  // ref, clients and binary): the facade's send fast path asks it in
  // JavaScript, where the call is inlined and its loads inline-cached.
  src = "(function (o) { return false";
  for (Key k : kTop) {
    if (k == Key::ref || k == Key::clients || k == Key::binary) continue;
    src += " || o." + std::string(keyName(k)) + " !== undefined";
  }
  src += "; })";
  check(env, napi_run_script(env, Napi::String::New(env, src), &fn));
  hasConfig_ = Napi::Persistent(Napi::Function(env, fn));
}

napi_value KeyStore::hasConfigKeys(napi_env env) const {
  napi_value v;
  check(env, napi_get_reference_value(env, hasConfig_.operator napi_ref(), &v));
  return v;
}

napi_value KeyStore::presence(napi_env env) const {
  napi_value v;
  check(env, napi_get_reference_value(env, presence_.operator napi_ref(), &v));
  return v;
}

PresenceMask Keys::bit(Key k) { return kBits.bits[static_cast<size_t>(k)]; }

PresenceMask Keys::presence(napi_value obj) {
  napi_value fn = Instance::get(Napi::Env(env_))->keyStore().presence(env_);
  napi_value undefined, result;
  check(env_, napi_get_undefined(env_, &undefined));
  check(env_, napi_call_function(env_, undefined, fn, 1, &obj, &result));
  double mask = 0;
  check(env_, napi_get_value_double(env_, result, &mask));
  return static_cast<PresenceMask>(mask);
}

napi_value KeyStore::array(napi_env env) const {
  napi_value v;
  check(env, napi_get_reference_value(env, array_.operator napi_ref(), &v));
  return v;
}

Keys::Keys(Napi::Env env) : env_(env), array_(Instance::get(env)->keyStore().array(env)) {}

napi_value Keys::operator[](Key k) {
  napi_value& slot = cache_[static_cast<size_t>(k)];
  if (slot == nullptr) check(env_, napi_get_element(env_, array_, static_cast<uint32_t>(k), &slot));
  return slot;
}

void Keys::fetchAll() {
  for (size_t i = 0; i < static_cast<size_t>(Key::kCount); ++i) (*this)[static_cast<Key>(i)];
}

Napi::Value Keys::get(napi_value obj, Key k) {
  napi_value v;
  check(env_, napi_get_property(env_, obj, (*this)[k], &v));
  return Napi::Value(env_, v);
}

void Keys::set(napi_value obj, Key k, napi_value v) {
  check(env_, napi_set_property(env_, obj, (*this)[k], v));
}

void Keys::set(napi_value obj, Key k, bool v) {
  napi_value b;
  check(env_, napi_get_boolean(env_, v, &b));
  set(obj, k, b);
}

void Keys::set(napi_value obj, Key k, double v) {
  napi_value n;
  check(env_, napi_create_double(env_, v, &n));
  set(obj, k, n);
}

void Keys::set(napi_value obj, Key k, const std::string& v) {
  napi_value s;
  check(env_, napi_create_string_utf8(env_, v.data(), v.size(), &s));
  set(obj, k, s);
}

}  // namespace addon
}  // namespace wsengine
