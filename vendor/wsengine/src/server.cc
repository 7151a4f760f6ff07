// The server: a listener on one IO loop, its connections spread over the IO
// loops, the limits that keep untrusted peers in check (maxConnections for
// open connections, maxHandshakes and maxConnectionsPerAddress at accept,
// the shared budget of maxUnfinishedBytes), and sends fanned out from the
// owner thread (a broadcast frame is built once and shared by every target
// that does not compress).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "connection.h"
#include "deflate.h"
#include "id_table.h"
#include "io_loop.h"
#include "random.h"
#include "listen.h"
#include "topics.h"
#include "utf8.h"
#include "wsengine/wsengine.h"

namespace wsengine {

namespace {

// A socket carried by a posted function. When the function is dropped
// without running (an embedder's loop closed at its environment's teardown
// drops what was posted to it), the socket is closed with it instead of
// leaking, which would leave the peer's connection open for the life of
// the process. Shared: std::function copies what it holds.
class PostedFd {
 public:
  explicit PostedFd(int fd) : held_(std::make_shared<Held>(fd)) {}
  // The socket, now the caller's to close.
  int take() const {
    int fd = held_->fd;
    held_->fd = -1;
    return fd;
  }

 private:
  struct Held {
    explicit Held(int f) : fd(f) {}
    ~Held() {
      if (fd >= 0) ::close(fd);
    }
    int fd;
  };
  std::shared_ptr<Held> held_;
};

}  // namespace

class ServerImpl : public ConnectionOwner, public std::enable_shared_from_this<ServerImpl> {
 public:
  ServerImpl(std::shared_ptr<EventSink> sink, uint64_t tag)
      : loop_(&nextLoop()), sink_(std::move(sink)), tag_(tag) {}

  StartResult start(const ServerOptions& opts) {
    StartResult res;
    std::shared_ptr<ServerImpl> self = shared_from_this();
    // Inline mode or not is decided per start: a stopped server moves to
    // the loop this start asks for (the embedder's, or back to an IO thread).
    IoLoop* want = opts.loop ? opts.loop.get() : (loop_->embedded() ? &nextLoop() : loop_);
    if (want != loop_ && !running_.load()) {
      // What the old loop still has to do for this server (a posted stop
      // closing the old listener) runs before the server leaves it. Leaving
      // an embedder's loop, the connections of the last start still closing
      // there (a graceful stop waits up to closeTimeout for the peer) are
      // aborted: once the server has moved, nothing would close them when
      // that environment ends, and a worker whose loop still holds them
      // aborts the process.
      IoLoop* old = loop_;
      old->runSync([self, old] {
        if (!old->embedded()) return;
        for (auto& c : self->snapshot())
          if (&c->loop() == old) c->abort();
      });
      loop_ = want;
      loopHold_ = opts.loop;
    }
    loop_->runSync([&] { res = self->startOnLoop(opts); });
    return res;
  }

  void stop(int code, const std::string& reason, bool hard) {
    running_.store(false);
    std::shared_ptr<ServerImpl> self = shared_from_this();
    // Inline mode: at once (a clear at environment teardown closes every
    // handle before the embedder's loop goes away). Nothing of the engine
    // is on the stack when the owner calls.
    loop_->dispatch([self, code, reason, hard] { self->stopOnLoop(code, reason, hard); });
  }

  bool running() const { return running_.load(); }
  int port() const { return port_.load(); }

  bool adopt(int fd, std::string&& received) {
    if (!running_.load()) {
      ::close(fd);
      return false;
    }
    std::shared_ptr<ServerImpl> self = shared_from_this();
    loop_->post([self, fd = PostedFd(fd), received = std::move(received)]() mutable {
      self->adoptOnLoop(fd.take(), std::move(received));
    });
    return true;
  }

  std::vector<SendResult> send(const std::vector<uint64_t>* ids, const uint8_t* data, size_t len,
                               bool binary) {
    std::vector<std::shared_ptr<Connection>> targets;
    std::vector<uint64_t> order;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (ids) {
        order = *ids;
      } else {
        order.reserve(openCount_);
        conns_.forEach([&](const std::shared_ptr<Connection>& c, const Slot& s) {
          if (s.open) order.push_back(c->id());
        });
        std::sort(order.begin(), order.end());
      }
      targets.reserve(order.size());
      for (uint64_t id : order) targets.push_back(openLocked(id));
    }
    if (!running_.load()) targets.assign(targets.size(), nullptr);  // stopped: no more sends
    std::vector<SendResult> out;
    out.reserve(order.size());
    bool textOk = binary || isValidUtf8(data, len);
    OutFramePtr shared;  // built on first use by a target without deflate
    for (size_t i = 0; i < order.size(); ++i) {
      out.push_back(sendTarget(targets[i].get(), order[i], data, len, binary, textOk,
                               order.size() == 1, shared));
    }
    return out;
  }

  // One target (an echo's reply): the same as send() with a list of one,
  // without copying the list or building vectors for it.
  SendResult sendOne(uint64_t id, const uint8_t* data, size_t len, bool binary) {
    std::shared_ptr<Connection> c = find(id);
    if (!running_.load()) c = nullptr;  // stopped: no more sends
    OutFramePtr shared;
    return sendTarget(c.get(), id, data, len, binary, binary || isValidUtf8(data, len), true, shared);
  }

  SendResult sendTarget(Connection* c, uint64_t id, const uint8_t* data, size_t len, bool binary,
                        bool textOk, bool only, OutFramePtr& shared) {
    if (!c) {
      SendResult r;
      r.conn = id;
      r.payloadSize = len;
      r.message = "Unknown or closed client";
      return r;
    }
    if (!textOk) {
      SendResult r;
      r.conn = id;
      r.payloadSize = len;
      r.bufferedAmount = c->bufferedAmount();
      r.message = "Invalid UTF-8: a text message must be valid UTF-8";
      return r;
    }
    if (c->deflateActive()) return c->send(data, len, binary);
    // One target: a small frame goes straight into the connection's pending
    // bytes, a large one is written from the caller's bytes when the socket
    // is idle. Several: one shared frame, so a full socket never holds a
    // copy per target.
    SendResult r;
    const uint8_t opcode = binary ? kBinary : kText;
    if (only && (c->trySendSmall(data, len, opcode, &r) || c->trySendZeroCopy(data, len, opcode, &r)))
      return r;
    if (!shared) shared = Outbox::buildServerFrame(data, len, binary ? kBinary : kText);
    return c->sendShared(shared, len);
  }

  std::vector<uint64_t> connections() const {
    std::vector<uint64_t> ids;
    std::lock_guard<std::mutex> lock(mu_);
    conns_.forEach([&](const std::shared_ptr<Connection>& c, const Slot& s) {
      if (s.open) ids.push_back(c->id());
    });
    std::sort(ids.begin(), ids.end());
    return ids;
  }

  // Any connection of the server, handshaking ones included.
  std::shared_ptr<Connection> findAny(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t i = conns_.find(id);
    return i == Conns::npos ? nullptr : conns_.ptr(i);
  }

  // Topics. A subscription needs an open connection and ends with it.
  TopicResult subscribe(uint64_t id, const std::string& topic, bool on) {
    TopicResult r;
    std::lock_guard<std::mutex> lock(mu_);
    if (!running_.load()) {
      r.message = "Server is not running";
      r.count = topics_.count(topic);
      return r;
    }
    if (!openLocked(id)) {
      r.message = "Unknown or closed client";
      r.count = topics_.count(topic);
      return r;
    }
    r.success = true;
    r.count = on ? topics_.subscribe(id, topic, &r.changed) : topics_.unsubscribe(id, topic, &r.changed);
    return r;
  }

  // The frame is built once for every subscriber without permessage-deflate
  // and queued on each (written at once to idle sockets, else flushed by the
  // connection's IO thread), exactly as a broadcast send.
  PublishResult publish(const std::string& topic, const uint8_t* data, size_t len, bool binary) {
    PublishResult res;
    res.payloadSize = len;
    std::vector<std::shared_ptr<Connection>> targets;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (uint64_t id : topics_.subscribers(topic)) {
        std::shared_ptr<Connection> c = openLocked(id);
        if (c) targets.push_back(std::move(c));
      }
    }
    if (!running_.load()) {
      res.message = "Server is not running";
      return res;
    }
    if (!binary && !isValidUtf8(data, len)) {
      res.message = "Invalid UTF-8: a text message must be valid UTF-8";
      return res;
    }
    res.success = true;
    res.subscribers = targets.size();
    sendToAll(targets, data, len, binary, res);
    return res;
  }

  std::vector<std::pair<std::string, size_t>> topics() const {
    std::lock_guard<std::mutex> lock(mu_);
    return topics_.topics();
  }

  std::vector<std::string> topicsOf(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    return topics_.topicsOf(id);
  }

  std::vector<size_t> topicCounts(const std::vector<std::string>& names) const {
    std::vector<size_t> out;
    out.reserve(names.size());
    std::lock_guard<std::mutex> lock(mu_);
    for (const std::string& n : names) out.push_back(topics_.count(n));
    return out;
  }

  std::shared_ptr<Connection> find(uint64_t id) const {
    std::lock_guard<std::mutex> lock(mu_);
    return openLocked(id);
  }

  void closeConnection(uint64_t id, int code, const std::string& reason) {
    std::shared_ptr<Connection> c = find(id);
    if (!c) return;
    c->loop().post([c, code, reason] { c->close(code, reason); });
  }

  void resumeReading() {
    for (auto& c : snapshot()) c->loop().post([c] { c->resumeReading(); });
  }

  // ConnectionOwner (on the connection's loop thread)
  void onConnOpen(Connection* c) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      size_t i = conns_.find(c->id());
      if (i == Conns::npos) return;
      conns_.meta(i).open = true;
    }
    Event ev;
    ev.type = EventType::Open;
    ev.owner = tag_;
    ev.conn = c->id();
    ev.peer = c->peerInfo();
    ev.uri = c->takeRequestTarget();
    ev.headers = c->takePeerHeaders();
    sink_->push(std::move(ev));
  }

  void onConnFailed(Connection*, int, const std::string&) override {}

  // maxConnections counts open connections only (handshakes have their own
  // limit): checked when a valid request is in, before the 101.
  bool onConnUpgrading(Connection* c) override {
    std::lock_guard<std::mutex> lock(mu_);
    size_t i = conns_.find(c->id());
    if (i == Conns::npos || openCount_ >= maxConnections_) return false;
    Slot& s = conns_.meta(i);
    if (s.kind == Slot::kHandshaking) --handshaking_;
    s.kind = Slot::kOpen;
    ++openCount_;
    return true;
  }

  void onConnClosed(Connection* c, bool wasOpen, int code, const std::string& reason,
                    bool remote) override {
    uint64_t id = c->id();
    {
      std::lock_guard<std::mutex> lock(mu_);
      topics_.removeConnection(id);
      size_t i = conns_.find(id);
      if (i != Conns::npos) {
        release(id, conns_.meta(i));
        conns_.eraseAt(i);  // (the caller still holds the connection)
      }
    }
    if (!wasOpen || silent_) return;
    Event ev;
    ev.type = EventType::Close;
    ev.owner = tag_;
    ev.conn = id;
    ev.code = code;
    ev.reason = reason;
    ev.remote = remote;
    sink_->push(std::move(ev));
  }

 private:
  // A listening socket (polled; listen.h) and the reference that keeps its
  // server alive until the handle's close callback (uv_close completes on a
  // later loop turn).
  struct Listener {
    uv_poll_t poll;
    // Polling paused (acceptSocket's backOff, or a poll error): resumes it.
    uv_timer_t retry;
    int fd = -1;
    int openHandles = 2;  // freed when both handles' close callbacks ran
    std::shared_ptr<ServerImpl> server;
  };
  // How long a listener that cannot accept rests before polling again.
  static constexpr uint64_t kAcceptRetryMs = 100;

  // What a socket of this server counts against (under mu_), from accept to
  // close, kept beside its connection in conns_. Per-connection memory: the
  // table spends 16 bytes (the connection's shared_ptr) plus this record per
  // slot; the peer address lives in addrOf_, only while counted.
  struct Slot {
    enum Kind : uint8_t { kNone, kHandshaking, kOpen, kRefused } kind = kNone;
    bool open = false;  // the open event is out: sends, topics, clients()
  };
  static_assert(sizeof(Slot) == 2, "two bytes per slot of conns_");
  using Conns = IdTable<std::shared_ptr<Connection>, Slot>;
  enum Refusal { kAdmitted, kTooManyHandshakes, kTooManyFromAddress, kDrop };

  // A publish's fan-out: the frame is built once per way of sending it.
  // Targets without permessage-deflate (and deflate targets below its
  // threshold) share one plain frame; deflate targets that agreed to
  // server_no_context_takeover share one compressed frame per compression
  // setting (window bits, level, memLevel: with no context takeover each
  // message is compressed from an empty window, RFC 7692 §7.1.1.1, so these
  // alone decide its bytes); a target that compresses with context takeover
  // needs its own deflate run, in its own stream.
  static void sendToAll(const std::vector<std::shared_ptr<Connection>>& targets,
                        const uint8_t* data, size_t len, bool binary, PublishResult& res) {
    const uint8_t opcode = binary ? kBinary : kText;
    OutFramePtr plain;
    struct Deflated {
      int bits, level, memLevel;
      OutFramePtr frame;  // null: zlib failed (each falls back to its own send)
      uint64_t wireSize;
    };
    std::vector<Deflated> deflated;
    for (const auto& c : targets) {
      SendResult r;
      const DeflateOptions& ds = c->settings().deflate;
      bool compress = c->deflateActive() && len >= ds.threshold;
      int bits = compress ? c->sharedDeflateBits() : 0;
      if (!compress) {
        if (!plain) plain = Outbox::buildServerFrame(data, len, opcode);
        r = c->sendShared(plain, len);
      } else if (bits != 0) {
        Deflated* d = nullptr;
        for (auto& x : deflated)
          if (x.bits == bits && x.level == ds.level && x.memLevel == ds.memLevel) d = &x;
        if (!d) {
          deflated.push_back(Deflated{bits, ds.level, ds.memLevel, nullptr, 0});
          d = &deflated.back();
          Deflater z;
          if (z.init(bits, true, ds.level, ds.memLevel))
            d->frame = Outbox::buildDeflatedServerFrame(data, len, opcode, z, &d->wireSize);
          ++res.compressions;
        }
        if (d->frame) {
          r = c->sendShared(d->frame, len);
          r.wireSize = d->wireSize;
        } else {
          r = c->send(data, len, binary);
          ++res.compressions;
        }
      } else {
        r = c->send(data, len, binary);
        ++res.compressions;
      }
      if (r.success) {
        ++res.sent;
        res.wireSize += r.wireSize;
      } else {
        ++res.failed;
      }
    }
  }

  // Under mu_: the connection if its open event is out, else null.
  std::shared_ptr<Connection> openLocked(uint64_t id) const {
    size_t i = conns_.find(id);
    return i != Conns::npos && conns_.meta(i).open ? conns_.ptr(i) : nullptr;
  }

  // Under mu_: undoes what the slot counted.
  void release(uint64_t id, Slot& s) {
    if (s.kind == Slot::kHandshaking) --handshaking_;
    else if (s.kind == Slot::kOpen) --openCount_;
    else if (s.kind == Slot::kRefused) --refused_;
    s.kind = Slot::kNone;
    auto n = addrOf_.find(id);  // counted per address only if it is here
    if (n != addrOf_.end()) {
      auto a = perAddr_.find(n->second);
      if (a != perAddr_.end() && --a->second <= 0) perAddr_.erase(a);
      addrOf_.erase(n);
    }
  }

  // Under mu_: counts a freshly accepted socket as handshaking, or says why
  // it is refused. Refused sockets get their answer (and a graceful close)
  // only while fewer than maxHandshakes of them are closing; beyond that a
  // flood is dropped without a word.
  Refusal admit(uint64_t id, const std::string& addr) {
    size_t i = conns_.find(id);
    if (i == Conns::npos) return kDrop;  // already gone
    Slot& s = conns_.meta(i);
    Refusal why = kAdmitted;
    if (handshaking_ >= maxHandshakes_) {
      why = kTooManyHandshakes;
    } else if (maxPerAddress_ > 0 && !addr.empty()) {
      auto a = perAddr_.find(addr);
      if (a != perAddr_.end() && a->second >= maxPerAddress_) why = kTooManyFromAddress;
    }
    if (why != kAdmitted) {
      if (refused_ >= maxHandshakes_) return kDrop;
      s.kind = Slot::kRefused;
      ++refused_;
      return why;
    }
    s.kind = Slot::kHandshaking;
    ++handshaking_;
    // Counted only while a limit applies: with many distinct peers the
    // count costs a map node (~64 B) per address and a string hash per
    // accept under mu_, for nothing (and the callers skip the getpeername
    // that reads the address). Sockets admitted without a limit stay
    // uncounted if a later start sets one (stop() closes them).
    if (maxPerAddress_ > 0 && !addr.empty()) {
      ++perAddr_[addr];
      addrOf_.emplace(id, addr);
    }
    return kAdmitted;
  }

  static void refuse(const std::shared_ptr<Connection>& c, Refusal why) {
    if (why == kTooManyHandshakes)
      c->reject(503, "Too many handshakes in progress");
    else if (why == kTooManyFromAddress)
      c->reject(429, "Too many connections from this address");
    else if (why == kDrop)
      c->abort();
  }

  StartResult startOnLoop(const ServerOptions& opts) {
    StartResult res;
    if (listener_ || running_.load()) {
      res.message = "Server is already running";
      res.port = port_;
      return res;
    }
    if (opts.noServer && opts.tls.enabled) {
      res.message =
          "noServer takes plain TCP connections from another server: tls does not apply (terminate "
          "TLS in front of that server, or serve TLS from a server that listens itself)";
      return res;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      maxConnections_ = opts.maxConnections;
      maxHandshakes_ = opts.maxHandshakes > 0 ? opts.maxHandshakes : 1;
      maxPerAddress_ = opts.maxConnectionsPerAddress;
    }
    silent_.store(false);
    // One set of settings per start, shared by its connections (those of an
    // earlier start keep theirs, their budget included).
    auto settings = startSettings(weak_from_this(), sink_, tag_, /*server=*/true, opts);
    settings->allowedOrigins = opts.allowedOrigins;
    settings->verifyClient = opts.verifyClient;
    if (opts.maxUnfinishedBytes > 0)
      settings->unfinished = std::make_shared<ByteBudget>(opts.maxUnfinishedBytes);
    if (opts.tls.enabled) {
      std::string err;
      settings->tls = TlsContext::createServer(opts.tls, err);
      if (!settings->tls) {
        res.message = err;
        return res;
      }
      // The same ticket keys for every start of this server, so that
      // clients a stop cut off resume their sessions when they come back
      // (each full handshake costs the server a signature). Not with
      // verifyPeer: a resumed session skips the client certificate's
      // verification, and a restart may bring other CAs to verify against.
      if (!opts.tls.verifyPeer) {
        if (!ticketKeysMade_) {
          randomBytes(ticketKeys_, sizeof ticketKeys_);
          ticketKeysMade_ = true;
        }
        settings->tls->setTicketKeys(ticketKeys_);
      }
    }
    settings_ = std::move(settings);
    if (opts.noServer) {
      port_ = 0;
      running_ = true;
      res.success = true;
      res.message = "Ready to adopt connections (noServer)";
      return res;
    }
    struct sockaddr_storage addr;
    std::memset(&addr, 0, sizeof addr);
    const char* host = opts.host.empty() ? "0.0.0.0" : opts.host.c_str();
    if (uv_ip4_addr(host, opts.port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host, opts.port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      // A host name: resolve it here, on the IO thread (synchronous form).
      uv_getaddrinfo_t req;
      struct addrinfo hints;
      std::memset(&hints, 0, sizeof hints);
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_PASSIVE;
      std::string portStr = std::to_string(opts.port);
      int rc = uv_getaddrinfo(loop_->loop(), &req, nullptr, host, portStr.c_str(), &hints);
      if (rc != 0 || !req.addrinfo) {
        res.message = std::string("Cannot resolve host '") + host + "': " + uv_strerror(rc);
        return res;
      }
      std::memcpy(&addr, req.addrinfo->ai_addr, req.addrinfo->ai_addrlen);
      uv_freeaddrinfo(req.addrinfo);
    }
    std::string err;
    int code = 0;
    int fd = listenSocket(addr, opts.reusePort, opts.backlog > 0 ? opts.backlog : 511, err, &code);
    if (fd < 0) {
      res.message = code == 0 ? err
                              : std::string("Cannot listen on ") + host + ":" +
                                    std::to_string(opts.port) + ": " + uv_strerror(code);
      return res;
    }
    auto* l = new Listener;
    l->fd = fd;
    l->server = shared_from_this();
    uv_poll_init(loop_->loop(), &l->poll, fd);
    loop_->initHandle(reinterpret_cast<uv_handle_t*>(&l->poll));
    l->poll.data = l;
    uv_timer_init(loop_->loop(), &l->retry);
    loop_->initHandle(reinterpret_cast<uv_handle_t*>(&l->retry));
    l->retry.data = l;
    uv_poll_start(&l->poll, UV_READABLE, &ServerImpl::onAcceptable);
    struct sockaddr_storage bound;
    socklen_t len = sizeof bound;
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    int port = bound.ss_family == AF_INET6
                   ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                   : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    listener_ = l;
    port_ = port;
    running_ = true;
    res.success = true;
    res.port = port;
    res.message = "Listening on " + std::string(host) + ":" + std::to_string(port);
    return res;
  }

  void stopOnLoop(int code, const std::string& reason, bool hard) {
    if (hard) silent_.store(true);
    if (listener_) {
      closeListener(listener_);
      listener_ = nullptr;
    }
    // Each connection is closed on its own loop.
    for (auto& c : snapshot()) {
      c->loop().dispatch([c, code, reason, hard] {
        if (hard || c->state() != Connection::kOpen)
          c->abort();
        else
          c->close(code, reason);
      });
    }
  }

  // The handle goes with its own hold on the server: freeing it may destroy
  // the server, so nothing of the server is touched in the callback. (One
  // hold per server was dropped by an old listener's late close callback
  // after a stop()+start(), leaving the new listener's callback a dangling
  // server.)
  static void closeListener(Listener* l) {
    // The fd goes now, as uv_close closed a uv_tcp_t's: a start() right
    // after a stop() binds the same port (the poll handle is stopped first:
    // libuv must not poll a closed fd).
    uv_poll_stop(&l->poll);
    ::close(l->fd);
    l->fd = -1;
    auto closed = [](uv_handle_t* h) {
      auto* l = static_cast<Listener*>(h->data);
      if (--l->openHandles == 0) delete l;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&l->poll), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&l->retry), closed);
  }

  // Stops polling the listener and polls it again after kAcceptRetryMs.
  static void restListener(Listener* l) {
    uv_poll_stop(&l->poll);
    uv_timer_start(&l->retry, [](uv_timer_t* t) {
      auto* l = static_cast<Listener*>(t->data);
      openReserve();
      if (uv_poll_start(&l->poll, UV_READABLE, &ServerImpl::onAcceptable) != 0) restListener(l);
    }, kAcceptRetryMs, 0);
  }

  std::vector<std::shared_ptr<Connection>> snapshot() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::shared_ptr<Connection>> conns;
    conns.reserve(conns_.size());
    conns_.forEach([&](const std::shared_ptr<Connection>& c, const Slot&) { conns.push_back(c); });
    return conns;
  }

  // Accepted sockets are spread over the IO loops (a server's connections
  // are not bound to its listener's thread). Each is admitted as a handshake
  // (maxHandshakes, maxConnectionsPerAddress) once its peer's address is
  // known, or refused at once: 503 / 429 on plain TCP, a plain close on TLS
  // (no answer is possible before the TLS handshake, and none is worth one).
  // Up to 64 connections per readiness: one busy listener must not keep its
  // loop from the connections it serves (the socket stays readable, so the
  // rest come at the next turn).
  // A poll error (libuv has stopped the handle) or an accept that keeps
  // failing rests the listener (restListener) instead of leaving a server
  // that says it runs but accepts nothing, or spinning on a listener that
  // stays readable.
  static void onAcceptable(uv_poll_t* h, int status, int) {
    auto* l = static_cast<Listener*>(h->data);
    if (status < 0) {
      restListener(l);
      return;
    }
    for (int i = 0; i < 64; ++i) {
      struct sockaddr_storage peer;
      bool backOff = false;
      int fd = acceptSocket(l->fd, &peer, &backOff);
      if (fd < 0) {
        if (backOff) restListener(l);
        return;
      }
      l->server->accepted(fd, peer);
    }
  }

  void accepted(int fd, const struct sockaddr_storage& peer) {
    uint64_t id;
    bool byAddr;  // admit() counts per address: the peer's address is needed
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = nextId_++;
      byAddr = maxPerAddress_ > 0;
    }
    // Inline mode: every connection on the embedder's loop.
    IoLoop& target = loop_->embedded() ? *loop_ : nextLoop();
    auto c = std::make_shared<Connection>(target, id, settings_);
    std::string addr = byAddr ? addressKey(peer) : std::string();
    Refusal why;
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.insert(c);
      why = admit(id, addr);
    }
    if (&target == loop_) {
      if (c->adopt(fd, true)) refuse(c, why);  // else it closes itself; onConnClosed cleans up
      return;
    }
    target.post([c, fd = PostedFd(fd), why] {
      if (c->adopt(fd.take(), true)) refuse(c, why);
    });
  }

  // A socket given to adopt(): registered here (the settings of the current
  // start are this loop's), then adopted on the loop an accept would pick,
  // admitted as a handshake like an accepted socket, and only then given the
  // bytes its previous owner read. A stop() posted after adopt() runs after
  // this and finds the connection registered.
  void adoptOnLoop(int fd, std::string received) {
    if (!running_.load() || !settings_) {
      ::close(fd);
      return;
    }
    uint64_t id;
    {
      std::lock_guard<std::mutex> lock(mu_);
      id = nextId_++;
    }
    IoLoop& target = loop_->embedded() ? *loop_ : nextLoop();
    std::shared_ptr<ServerImpl> self = shared_from_this();
    auto c = std::make_shared<Connection>(target, id, settings_);
    {
      std::lock_guard<std::mutex> lock(mu_);
      conns_.insert(c);
    }
    target.post([self, c, id, fd = PostedFd(fd), received = std::move(received)]() mutable {
      if (!c->adopt(fd.take())) return;  // closes itself; onConnClosed cleans up
      Refusal why;
      {
        std::lock_guard<std::mutex> lock(self->mu_);
        why = self->admit(id, self->maxPerAddress_ > 0 ? c->peerAddress() : std::string());
      }
      if (why == kAdmitted)
        c->feedReceived(std::move(received));
      else
        refuse(c, why);
    });
  }

  // The listener's loop: an IO thread's, or in inline mode the embedder's
  // (held by loopHold_). Changed only by start() while not running, on the
  // owner thread.
  IoLoop* loop_;
  std::shared_ptr<IoLoop> loopHold_;
  std::shared_ptr<EventSink> sink_;
  uint64_t tag_;
  ConnSettingsPtr settings_;  // of the current start; listener loop only
  Listener* listener_ = nullptr;  // the current one; closed ones free themselves
  std::atomic<bool> running_{false};
  std::atomic<int> port_{0};
  std::atomic<bool> silent_{false};  // cleared: raise no more events
  // Under mu_: connections live on several loops, senders on the owner thread.
  mutable std::mutex mu_;
  uint64_t nextId_ = 1;
  Conns conns_;  // handshaking, open, closing (by the connection's id)
  std::unordered_map<std::string, int> perAddr_;  // handshaking + open sockets per address
  // The address each socket counted in perAddr_ is counted under (an entry
  // here is what marks it counted): only while maxConnectionsPerAddress is set.
  std::unordered_map<uint64_t, std::string> addrOf_;
  int handshaking_ = 0;
  int openCount_ = 0;
  int refused_ = 0;  // refused sockets still closing
  int maxConnections_ = 128;
  int maxHandshakes_ = 512;
  int maxPerAddress_ = 0;
  TopicRegistry topics_;  // under mu_: subscriptions of open connections
  // Session ticket keys kept across starts (start() only; see there).
  uint8_t ticketKeys_[TlsContext::kTicketKeysSize] = {};
  bool ticketKeysMade_ = false;
};

Server::Server(std::shared_ptr<EventSink> sink, uint64_t tag)
    : impl_(std::make_shared<ServerImpl>(std::move(sink), tag)) {}
Server::~Server() {
  if (impl_) impl_->stop(1001, "Server cleared", true);
}
StartResult Server::start(const ServerOptions& options) { return impl_->start(options); }
void Server::stop(int code, const std::string& reason) { impl_->stop(code, reason, false); }
void Server::clear() { impl_->stop(1001, "Server cleared", true); }
bool Server::adopt(int fd, std::string received) { return impl_->adopt(fd, std::move(received)); }
bool Server::running() const { return impl_->running(); }
int Server::port() const { return impl_->port(); }
std::vector<SendResult> Server::send(const std::vector<uint64_t>* conns, const uint8_t* data,
                                     size_t len, bool binary) {
  return impl_->send(conns, data, len, binary);
}
SendResult Server::sendOne(uint64_t conn, const uint8_t* data, size_t len, bool binary) {
  return impl_->sendOne(conn, data, len, binary);
}
std::vector<uint64_t> Server::connections() const { return impl_->connections(); }
uint64_t Server::bufferedAmount(uint64_t conn) const {
  auto c = impl_->find(conn);
  return c ? c->bufferedAmount() : 0;
}
bool Server::closeConnection(uint64_t conn, int code, const std::string& reason) {
  if (!impl_->find(conn)) return false;
  impl_->closeConnection(conn, code, reason);
  return true;
}
void Server::resumeReading() { impl_->resumeReading(); }
bool Server::ping(uint64_t conn, const uint8_t* data, size_t len) {
  auto c = impl_->find(conn);
  return c && running() && c->ping(data, len);
}
void Server::answerVerify(uint64_t conn, VerifyAnswer answer) {
  auto c = impl_->findAny(conn);
  if (!c) return;  // gone: timed out or the peer left
  c->loop().post([c, a = std::move(answer)] { c->answerVerify(a); });
}
void Server::ackClose(uint64_t conn) {
  auto c = impl_->findAny(conn);
  if (!c) return;
  c->loop().post([c] { c->ackClose(); });
}
TopicResult Server::subscribe(uint64_t conn, const std::string& topic) {
  return impl_->subscribe(conn, topic, true);
}
TopicResult Server::unsubscribe(uint64_t conn, const std::string& topic) {
  return impl_->subscribe(conn, topic, false);
}
PublishResult Server::publish(const std::string& topic, const uint8_t* data, size_t len,
                              bool binary) {
  return impl_->publish(topic, data, len, binary);
}
std::vector<std::pair<std::string, size_t>> Server::topics() const { return impl_->topics(); }
std::vector<std::string> Server::topicsOf(uint64_t conn) const { return impl_->topicsOf(conn); }
std::vector<size_t> Server::topicCounts(const std::vector<std::string>& names) const {
  return impl_->topicCounts(names);
}

}  // namespace wsengine
