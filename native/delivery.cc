#include "delivery.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>

#include "convert.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {
// Small frames written at once in each delivered batch (see deliver).
constexpr unsigned kCorkPassThrough = 8;
// Binary payloads up to kSliceMax of one connection share slabs of at most
// kSlabSize (see planSlabs): a kept message pins at most one slab.
constexpr size_t kSliceMax = 4096;
constexpr size_t kSlabSize = 64 * 1024;
// Slabs of at least this many bytes live in recycled engine buffers (makeSlab).
constexpr size_t kSlabPooledMin = 32 * 1024;

// A data event small enough to join a run (Delivery::deliverRun): its value
// is made before the run's call and lives until the run ends.
bool runnable(const QueueItem& item) {
  return item.kind == QueueItem::Kind::Event && hasDataContext(item.event.type) &&
         !item.event.terminal && item.event.data.size() <= kSliceMax;
}

// Index into kDeliverRun's type names.
double runTypeIndex(EventType t) {
  switch (t) {
    case EventType::Message: return 0;
    case EventType::Fragment: return 1;
    case EventType::Ping: return 2;
    default: return 3;  // Pong
  }
}
}  // namespace

void Delivery::deliver(napi_env env, std::vector<QueueItem>& batch) {
  Napi::Env e(env);
  // Sends made while a batch is delivered are written once per connection
  // at its end (one system call each, no IO-thread wake-up per message),
  // except the first few: a reply or two leaves at once rather than after
  // the rest of the batch, which is what a lightly loaded server sees.
  struct CorkScope {
    CorkScope() { cork(kCorkPassThrough); }
    ~CorkScope() { uncork(); }
  } corked;
  // The event type strings and the trampolines are fetched once per batch,
  // in the callback's scope, and shared by every item's inner scope. The
  // other property names (contexts of open/close/error, statuses, verify)
  // are fetched by the item that needs them into its own copy of the Keys,
  // whose handles die with the item's scope: fetching all ~110 of them cost
  // ~110 Node-API calls per batch, per event when events come one at a time.
  Napi::HandleScope outer(e);
  napi_value deliverData = nullptr, deliverAny = nullptr, deliverRunFn = nullptr;
  std::unique_ptr<Keys> keys;
  try {
    keys = std::make_unique<Keys>(e);
    for (Key k : {Key::open, Key::close, Key::error, Key::fragment, Key::ping, Key::pong,
                  Key::message})
      (*keys)[k];
    deliverData = inst_.factories().get(env, Factories::kDeliverData);
    deliverAny = inst_.factories().get(env, Factories::kDeliver);
    // Runs of small data events go through one call each (deliverRun),
    // unless this delivery is nested in a run (then runF_ is in use).
    if (runF_ == nullptr && ensureRunArray(env))
      deliverRunFn = inst_.factories().get(env, Factories::kDeliverRun);
  } catch (const Napi::Error&) {
    return;  // the environment is going away
  }
  // Small binary payloads of the batch are copied into shared slabs and
  // handed out as slices (one Buffer per slab instead of one per message).
  std::vector<Slice> slices(batch.size());
  std::vector<napi_value> slabs;
  planSlabs(env, batch, slices, slabs);
  for (size_t i = 0; i < batch.size(); ++i) {
    if (inst_.shutDown()) return;
    // A lone data event (the common case of a lightly loaded server) gains
    // nothing from a run: it takes the per-item path.
    if (deliverRunFn != nullptr && runnable(batch[i]) && i + 1 < batch.size() &&
        runnable(batch[i + 1])) {
      size_t next;
      try {
        next = deliverRun(env, batch, i, slices, slabs, deliverRunFn);
      } catch (const Napi::Error&) {
        return;  // no handle scope could be opened: the environment is going away
      }
      if (next > i) {
        i = next - 1;
        continue;
      }
      // batch[i]'s value could not be made: the per-item path reports it.
    }
    QueueItem& item = batch[i];
    // Each item is delivered on its own: one that cannot be converted is
    // reported and skipped, never the rest of the batch (whose close events
    // release connection refs).
    try {
      Napi::HandleScope scope(e);
      if (item.kind == QueueItem::Kind::Connect) {
        Keys local(*keys);
        deliverConnect(local, item);
      } else if (hasDataContext(item.event.type)) {
        // Uses the type key only (fetched above).
        deliverEvent(*keys, item.event, item.seq, deliverData, deliverAny,
                     slices[i].slab >= 0 ? slabs[slices[i].slab] : nullptr, slices[i].offset);
      } else {
        Keys local(*keys);
        deliverEvent(local, item.event, item.seq, deliverData, deliverAny, nullptr, 0);
      }
    } catch (const Napi::Error&) {
      // No handle scope could be opened: the environment is going away (its
      // cleanup hook clears every object), nothing more can be delivered.
      return;
    } catch (const std::exception&) {
      // Out of memory outside an event's own guard: skip that item only.
    }
  }
}

bool Delivery::ensureRunArray(napi_env env) {
  if (runData_ != nullptr) return true;
  const size_t n = Factories::kRunHeader + Factories::kRunStride * EventQueue::kMaxBatch;
  void* mem = nullptr;
  napi_value ab, fa;
  // An ArrayBuffer's own backing store: never moved by V8's collector.
  if (napi_create_arraybuffer(env, n * sizeof(double), &mem, &ab) != napi_ok ||
      napi_create_typedarray(env, napi_float64_array, n, ab, 0, &fa) != napi_ok) {
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
    return false;  // per-item delivery only
  }
  runArray_ = Napi::Reference<Napi::Value>::New(Napi::Value(env, fa), 1);
  runData_ = static_cast<double*>(mem);
  return true;
}

bool Delivery::resolveRunEvent(const Event& ev, int& server, int& client, const JsValues*& js) {
  // What deliverEvent decides for a data event before calling the method.
  const int ref = inst_.refOfTag(ev.owner);
  if (ref == 0 || inst_.shutDown()) return false;
  if (ref < 0) {
    ServerEntry* s = inst_.server(ref);
    if (s == nullptr) return false;
    client = s->conns.refOf(ev.conn);
    if (client == 0) return false;
    server = ref;
    js = &s->js;
  } else {
    ClientEntry* c = inst_.client(ref);
    if (c == nullptr) return false;
    server = 0;
    client = ref;
    js = &c->js;
  }
  return true;
}

size_t Delivery::deliverRun(napi_env env, std::vector<QueueItem>& batch, size_t i,
                            const std::vector<Slice>& slices, const std::vector<napi_value>& slabs,
                            napi_value runFn) {
  Napi::Env e(env);
  // One scope for the run: it holds at most kMaxBatch values of at most
  // kSliceMax bytes each (larger payloads go one by one, see runnable).
  Napi::HandleScope scope(e);
  napi_value v;
  if (napi_create_array(env, &v) != napi_ok) throw Napi::Error::New(e);
  uint32_t nv = 0;
  auto push = [&](napi_value x) -> uint32_t {
    if (napi_set_element(env, v, nv, x) != napi_ok) throw Napi::Error::New(e);
    return nv++;
  };
  std::vector<int> slabAt(slabs.size(), -1);  // slab -> index in v
  uint64_t lastOwner = 0;
  uint32_t holderAt = 0;
  double* f = runData_;
  runItems_.clear();
  size_t j = i;
  for (; j < batch.size() && runnable(batch[j]); ++j) {
    Event& ev = batch[j].event;
    int server = 0, client = 0;
    const JsValues* js = nullptr;
    if (!resolveRunEvent(ev, server, client, js)) continue;  // dropped, as deliverEvent would
    double* x = f + Factories::kRunHeader + Factories::kRunStride * runItems_.size();
    if (runItems_.empty() || ev.owner != lastOwner) {
      holderAt = push(js->holder());
      lastOwner = ev.owner;
    }
    const Slice& sl = slices[j];
    double dataAt, offset = -1;
    bool binary = ev.binary;
    const size_t bytes = ev.data.size();
    if (sl.slab >= 0) {
      int& at = slabAt[static_cast<size_t>(sl.slab)];
      if (at < 0) at = static_cast<int>(push(slabs[static_cast<size_t>(sl.slab)]));
      dataAt = at;
      offset = static_cast<double>(sl.offset);
    } else {
      napi_value d;
      try {
        d = eventData(e, ev, binary);
      } catch (const Napi::Error&) {
        break;  // batch[j] takes the per-item path, which reports it
      } catch (const std::exception&) {
        break;
      }
      dataAt = push(d);
    }
    x[0] = holderAt;
    x[1] = server;
    x[2] = client;
    x[3] = runTypeIndex(ev.type);
    x[4] = static_cast<double>(ev.wireSize);
    x[5] = binary ? 1 : 0;
    x[6] = dataAt;
    x[7] = offset;
    x[8] = static_cast<double>(bytes);
    runItems_.push_back(static_cast<uint32_t>(j));
  }
  const size_t n = runItems_.size();
  if (n == 0) return j;  // all dropped, or batch[i] goes the per-item way (j == i)
  napi_value fa = runArray_.Value();
  napi_value undefined;
  napi_get_undefined(env, &undefined);
  size_t k = 0;
  runF_ = f;
  struct Done {
    double*& p;
    ~Done() { p = nullptr; }
  } done{runF_};
  while (k < n) {
    f[0] = 0;
    f[1] = static_cast<double>(k);
    napi_value argv[4] = {fa, v, Napi::Number::New(e, static_cast<double>(k)),
                          Napi::Number::New(e, static_cast<double>(n))};
    napi_value result;
    napi_status st = napi_call_function(env, undefined, runFn, 4, argv, &result);
    size_t next;
    if (st == napi_ok) {
      double r = n;
      napi_get_value_double(env, result, &r);
      next = static_cast<size_t>(r);
      if (next >= n) break;
    } else {
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (!pending) {
        // JS cannot run any more (a worker terminating): the rest of the
        // run is skipped, as each of its calls would fail alike.
        jsCallable_ = false;
        break;
      }
      // A method threw at event f[1]: it surfaces as an uncaught exception
      // ('uncaughtException' on process) before the next event, and the
      // rest of the run is still delivered, each event once.
      next = static_cast<size_t>(f[1]) + 1;
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
    // The tables may have changed (a method or an exception handler cleared
    // an object): the events not delivered yet are checked again.
    for (size_t m = next; m < n; ++m) {
      double* x = f + Factories::kRunHeader + Factories::kRunStride * m;
      int server = 0, client = 0;
      const JsValues* js = nullptr;
      if (!resolveRunEvent(batch[runItems_[m]].event, server, client, js)) x[0] = -1;
    }
    k = next;
    if (inst_.shutDown()) break;
  }
  return j;
}

namespace {

// A slab of `bytes` (every one of them written by planSlabs). A large one
// lives in a recycled engine buffer, given back when V8 collects the slab:
// under a flood of small messages the slabs die young by the hundred, and
// fresh 64 KiB blocks from malloc came back as fresh pages each time (glibc
// returns the freed top of its heap to the system, so every slab's first
// write faulted its pages in again). Those faults were ~40 % of a flooded
// client's CPU (bench/PROFILE.md, "flood-client: the slab faults"). The
// Buffer's length is `bytes`: what the buffer holds past them (bytes of an
// earlier message, maybe of another connection) is never visible, not even
// through data.buffer. A small slab takes malloc's memory, as before: a
// pooled block would pin up to 64 KiB for a few payloads. Where external
// buffers are not allowed (the Electron profile), every slab is V8's.
bool makeSlab(napi_env env, size_t bytes, void** mem, napi_value* slab) {
#ifndef NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED
  if (bytes >= kSlabPooledMin) {
    auto* owned = new (std::nothrow) std::string();
    if (owned != nullptr) {
      try {
        *owned = takeBuffer(kSlabSize);
        owned->resize(bytes);
      } catch (const std::exception&) {
        delete owned;
        owned = nullptr;
      }
    }
    if (owned != nullptr) {
      auto release = [](napi_env, void*, void* hint) {
        auto* s = static_cast<std::string*>(hint);
        recycleBuffer(std::move(*s));
        delete s;
      };
      napi_status st = napi_create_external_buffer(env, bytes, &(*owned)[0], release, owned, slab);
      if (st == napi_ok) {
        *mem = &(*owned)[0];
        return true;
      }
      // Not made: V8's memory instead. A runtime that refuses external
      // buffers (Electron) refuses before taking `release`, so the block goes
      // back. Any other failure leaves `owned` alone: Node may have
      // registered `release` before the step that failed (the ArrayBuffer is
      // tracked first; a termination starting in between fails the rest) and
      // runs it when it collects that ArrayBuffer, or has already run it (a
      // length over the maximum). Freeing it here too would free it twice; at
      // worst one slab's block leaks, on a failure only a terminating
      // environment sees.
      if (st == napi_no_external_buffers_allowed) {
        recycleBuffer(std::move(*owned));
        delete owned;
      }
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
    }
  }
#endif
  return napi_create_buffer(env, bytes, mem, slab) == napi_ok;
}

}  // namespace

void Delivery::planSlabs(napi_env env, std::vector<QueueItem>& batch, std::vector<Slice>& slices,
                         std::vector<napi_value>& slabs) {
  auto sliceable = [](const QueueItem& item) -> size_t {
    if (item.kind != QueueItem::Kind::Event || !item.event.binary ||
        !hasDataContext(item.event.type))
      return 0;
    size_t n = item.event.data.size();
    return n <= kSliceMax ? n : 0;
  };
  // A slab holds the payloads of one connection only (a handler that reads
  // data.buffer sees nothing another peer sent) and is sized to exactly the
  // payloads copied into it (napi_create_buffer does not zero its memory, so
  // no byte of it may be left unwritten). The batch's small payloads are
  // ordered by (owner, connection), keeping arrival order within each.
  std::vector<uint32_t>& order = slabOrder_;
  order.clear();
  for (size_t i = 0; i < batch.size(); ++i) {
    if (sliceable(batch[i]) != 0) order.push_back(static_cast<uint32_t>(i));
  }
  if (order.size() < 2) return;
  auto sameConn = [&batch](uint32_t a, uint32_t b) {
    const Event& x = batch[a].event;
    const Event& y = batch[b].event;
    return x.owner == y.owner && x.conn == y.conn;
  };
  bool oneConn = true;  // a flood on one connection: nothing to sort
  for (uint32_t k : order) oneConn = oneConn && sameConn(order[0], k);
  if (!oneConn) {
    std::stable_sort(order.begin(), order.end(), [&batch](uint32_t a, uint32_t b) {
      const Event& x = batch[a].event;
      const Event& y = batch[b].event;
      return x.owner != y.owner ? x.owner < y.owner : x.conn < y.conn;
    });
  }
  size_t run = 0;
  while (run < order.size()) {
    // The run: consecutive payloads of one connection, at most kSlabSize in all.
    size_t end = run, bytes = 0;
    while (end < order.size() && sameConn(order[run], order[end])) {
      size_t n = batch[order[end]].event.data.size();
      if (bytes + n > kSlabSize) break;
      bytes += n;
      ++end;
    }
    if (end - run < 2) {
      run = end;  // a lone payload gets a Buffer of its own (see eventData)
      continue;
    }
    napi_value slab;
    void* mem = nullptr;
    if (!makeSlab(env, bytes, &mem, &slab)) {
      // No slab (out of memory, or the environment is going): the rest
      // are created one by one, as without slabs.
      bool pending = false;
      napi_is_exception_pending(env, &pending);
      if (pending) {
        napi_value ignored;
        napi_get_and_clear_last_exception(env, &ignored);
      }
      return;
    }
    slabs.push_back(slab);
    char* base = static_cast<char*>(mem);
    size_t fill = 0;
    for (size_t k = run; k < end; ++k) {
      const std::string& data = batch[order[k]].event.data;
      std::memcpy(base + fill, data.data(), data.size());
      Slice& slice = slices[order[k]];
      slice.slab = static_cast<int>(slabs.size()) - 1;
      slice.offset = fill;
      fill += data.size();
    }
    run = end;
  }
}

void Delivery::deliverEvent(Keys& keys, Event& ev, uint64_t seq, napi_value deliverData,
                            napi_value deliverAny, napi_value slab, size_t offset) {
  Napi::Env env = keys.env();
  const int ref = inst_.refOfTag(ev.owner);
  if (ref == 0) return;  // cleared: dropped
  if (ev.type == EventType::Closing) {
    // Every event before the peer's close has run (replies the handlers
    // sent are queued): the close reply may follow them now.
    if (ref < 0) {
      if (ServerEntry* s = inst_.server(ref)) s->engine->ackClose(ev.conn);
    } else if (ClientEntry* c = inst_.client(ref)) {
      c->engine->ackClose();
    }
    return;
  }
  if (ev.type == EventType::Verify) {
    if (ref < 0) deliverVerify(keys, ev, ref);
    return;
  }
  const uint64_t tag = ev.owner;
  const uint64_t conn = ev.conn;
  const EventType type = ev.type;
  const size_t bytes = ev.data.size();
  int serverArg = 0;
  int clientArg = 0;
  const JsValues* js = nullptr;
  bool borrowed = false;
  if (ref < 0) {
    ServerEntry* s = inst_.server(ref);
    if (s == nullptr) return;
    borrowed = s->config.borrowedPayloads;
    if (type == EventType::Open) {
      clientArg = s->conns.assign(conn);
      // An open delivered after stop() (it was queued when stop ran): its
      // close is owed too, so the stopped server holds the loop again.
      if (!s->started && s->conns.size() == 1) inst_.updateKeepAlive();
    } else {
      clientArg = s->conns.refOf(conn);
      // Only an error can precede a connection's open (or concern the server).
      if (clientArg == 0 && type != EventType::Error) return;
    }
    serverArg = ref;
    js = &s->js;
  } else {
    ClientEntry* c = inst_.client(ref);
    if (c == nullptr) return;
    borrowed = c->config.borrowedPayloads;
    bool recount = false;
    if (ev.terminal && seq > c->startSeq) {
      // This session gave up: the client no longer holds the loop. (A
      // terminal event pushed before the latest start is the old session's.)
      c->started = false;
      recount = true;
    }
    if (type == EventType::Open && !c->openDelivered) {
      c->openDelivered = true;
      recount = recount || !c->started;  // delivered after stop(): its close is owed
    }
    if (type == EventType::Close && c->openDelivered) {
      c->openDelivered = false;
      recount = recount || !c->started;  // a stopped client waited for this close
    }
    if (recount) inst_.updateKeepAlive();
    clientArg = ref;
    js = &c->js;
  }
  // A connection's close frees its ref whether or not the event reaches
  // JavaScript (see the catch below); the method may also clear the server.
  struct ReleaseOnClose {
    Instance& inst;
    bool active;
    uint64_t tag, conn;
    ~ReleaseOnClose() {
      if (!active) return;
      ServerEntry* s = inst.serverByTag(tag);
      if (s == nullptr) return;
      s->conns.release(conn);
      // A stopped server held the loop for its connections' close events.
      if (!s->started && s->conns.size() == 0) inst.updateKeepAlive();
    }
  } release{inst_, type == EventType::Close && ref < 0, tag, conn};

  try {
    // The trampoline reads holder.method and calls it if it is a function.
    // From here on no pointer into the tables is held: the method may clear.
    Napi::Object holder = js->holder();
    napi_value argv[7] = {holder, nullptr, nullptr, keys[eventTypeKey(type)], nullptr, nullptr,
                          nullptr};
    if (napi_create_int32(env, serverArg, &argv[1]) != napi_ok ||
        napi_create_int32(env, clientArg, &argv[2]) != napi_ok) {
      throw Napi::Error::New(env);
    }
    if (hasDataContext(type)) {
      bool binary = true;
      std::string* lent = nullptr;  // borrowedPayloads: given back after the method
      napi_value args[9];
      std::copy(argv, argv + 4, args);
      if (slab != nullptr) {
        // d is the size: the trampoline takes slab.subarray(offset, offset + d).
        args[6] = Napi::Number::New(env, static_cast<double>(bytes));
        args[7] = slab;
        args[8] = Napi::Number::New(env, static_cast<double>(offset));
      } else {
        args[6] = eventData(env, ev, binary, borrowed ? &lent : nullptr);
        napi_get_undefined(env, &args[7]);
        args[8] = args[7];
      }
      args[4] = Napi::Number::New(env, static_cast<double>(ev.wireSize));
      args[5] = Napi::Boolean::New(env, binary);
      callMethod(env, deliverData, 9, args);
      if (lent != nullptr) giveBackLent(env, args[6], lent);
    } else {
      argv[4] = eventContext(keys, ev);
      callMethod(env, deliverAny, 5, argv);
    }
  } catch (const Napi::Error& e) {
    // A value could not be created (e.g. a text message longer than V8's
    // longest string): this event alone is skipped and reported.
    std::string why = e.Message();
    reportDropped(env, type, serverArg, clientArg, bytes, why.empty() ? "no JavaScript value" : why);
  } catch (const std::exception& e) {
    reportDropped(env, type, serverArg, clientArg, bytes, e.what());  // out of memory
  }
}

void Delivery::deliverConnect(Keys& keys, QueueItem& item) {
  std::optional<PendingStart> pending = inst_.takePendingStart(item.startId);
  if (!pending) return;  // settled already (client cleared)
  PendingStart& p = *pending;
  ClientEntry* c = inst_.clientByTag(p.tag);
  if (c != nullptr && item.startId == c->startId && !item.connect.success && !c->startRetries) {
    // A failed attempt without reconnection leaves the client idle.
    c->started = false;
  }
  // The pending start held the loop until now (Instance::updateKeepAlive).
  if (c != nullptr && !c->started) inst_.updateKeepAlive();
  try {
    p.deferred.Resolve(connectStatus(keys, item.connect));
  } catch (const Napi::Error& e) {
    // The status could not be built: the start's Promise rejects with why
    // rather than never settling.
    try {
      p.deferred.Reject(e.Value());
    } catch (const Napi::Error&) {
    }
  }
}

void Delivery::deliverVerify(Keys& keys, Event& ev, int ref) {
  Napi::Env env = keys.env();
  ServerEntry* s = inst_.server(ref);
  if (s == nullptr) return;
  std::shared_ptr<Napi::FunctionReference> hook = s->config.verifyClient;
  napi_value handler = inst_.verifyHandler();
  if (!hook || hook->IsEmpty() || handler == nullptr) {
    // Started with a hook that is gone now (or loaded without the facade):
    // refuse rather than let an unverified client in.
    VerifyAnswer a;
    a.status = 500;
    a.message = "verifyClient is not available";
    s->engine->answerVerify(ev.conn, std::move(a));
    return;
  }
  static const PeerInfo kNone;
  const PeerInfo& peer = ev.peer ? *ev.peer : kNone;
  bool answered = false;
  try {
    Napi::Object info = Napi::Object::New(env);
    keys.set(info, Key::uri, ev.uri);
    keys.set(info, Key::headers, headersObject(env, ev.headers));
    keys.set(info, Key::origin, peer.origin);
    keys.set(info, Key::remoteAddress, peer.remoteAddress);
    keys.set(info, Key::remotePort, peer.remotePort);
    keys.set(info, Key::secure, peer.secure);
    keys.set(info, Key::tls, tlsInfo(keys, peer));
    Napi::Array offered = Napi::Array::New(env, peer.offered.size());
    for (uint32_t i = 0; i < peer.offered.size(); ++i) offered.Set(i, peer.offered[i]);
    keys.set(info, Key::protocols, offered);
    // The engine's tag goes with the token: a connection id is unique only
    // within one engine, and a ref is reused by the next server made after a
    // clear. The answer names both (WebsocketServerAnswerVerify).
    napi_value argv[5] = {hook->Value(), info, Napi::Number::New(env, ref),
                          Napi::Number::New(env, static_cast<double>(ev.conn)),
                          Napi::Number::New(env, static_cast<double>(s->tag))};
    answered = callMethod(env, handler, 5, argv);
  } catch (const Napi::Error&) {
  } catch (const std::exception&) {
  }
  if (!answered) {
    // The handler could not even be called: refuse (no one else will answer).
    if (ServerEntry* again = inst_.server(ref)) {
      VerifyAnswer a;
      a.status = 500;
      again->engine->answerVerify(ev.conn, std::move(a));
    }
  }
}

bool Delivery::callMethod(Napi::Env env, napi_value fn, size_t argc, napi_value* argv) {
  napi_value result, undefined;
  napi_get_undefined(env, &undefined);
  napi_status st = napi_call_function(env, undefined, fn, argc, argv, &result);
  if (st == napi_ok) return true;
  bool pending = false;
  napi_is_exception_pending(env, &pending);
  if (!pending) {
    jsCallable_ = false;  // cannot run JS any more (worker terminating)
    return false;
  }
  napi_value error;
  napi_get_and_clear_last_exception(env, &error);
  // The method's exception surfaces as an uncaught exception ('uncaughtException'
  // on process); the rest of the batch is still delivered.
  napi_fatal_exception(env, error);
  return true;
}

void Delivery::reportDropped(Napi::Env env, EventType type, int server, int client, size_t bytes,
                             const std::string& why) {
  if (!jsCallable_) return;
  std::string where = server != 0 ? "connection " + std::to_string(client) + " of server " +
                                        std::to_string(server)
                                  : "client " + std::to_string(client);
  std::string msg = std::string("ix-websocket: a '") + keyName(eventTypeKey(type)) + "' event";
  if (hasDataContext(type)) msg += " of " + std::to_string(bytes) + " bytes";
  msg += " for " + where + " could not be converted to JavaScript and was dropped (" + why + ")";
  try {
    Napi::Object process = env.Global().Get("process").As<Napi::Object>();
    Napi::Value emit = process.Get("emitWarning");
    if (!emit.IsFunction()) return;
    Napi::Object opts = Napi::Object::New(env);
    opts.Set("type", "IxWebSocketWarning");
    opts.Set("code", "IXWS_EVENT_DROPPED");
    emit.As<Napi::Function>().Call(process, {Napi::String::New(env, msg), opts});
  } catch (const Napi::Error&) {
    // Nothing more can be done from here: the event stays dropped.
  }
}

}  // namespace addon
}  // namespace wsengine
