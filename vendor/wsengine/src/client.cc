// The client: URL, DNS off the owner thread, connect with an overall timeout,
// and automatic reconnection with exponential backoff (IXWebSocket's
// behaviour); optionally through an HTTP proxy (proxy.h, tunnel.cc) and
// following redirects (redirect.h). One Connection at a time; everything
// runs on one IO loop.
#include <cmath>
#include <cstring>
#include <mutex>

#include "connection.h"
#include "io_loop.h"
#include "proxy.h"
#include "random.h"
#include "redirect.h"
#include "url.h"
#include "wsengine/wsengine.h"

namespace wsengine {

namespace {

// A uv timer owned by loop-thread code; the handle is freed after uv_close.
class LoopTimer {
 public:
  explicit LoopTimer(IoLoop& loop) : h_(new Handle) {
    uv_timer_init(loop.loop(), &h_->t);
    loop.initHandle(reinterpret_cast<uv_handle_t*>(&h_->t));
    h_->t.data = h_;
  }
  ~LoopTimer() {
    uv_timer_stop(&h_->t);
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->t),
             [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
  }
  void start(uint64_t ms, std::function<void()> fn) {
    h_->fn = std::move(fn);
    uv_timer_start(&h_->t, [](uv_timer_t* t) {
      auto fn = static_cast<Handle*>(t->data)->fn;  // copy: fn may restart us
      fn();
    }, ms, 0);
  }
  void stop() { uv_timer_stop(&h_->t); }

 private:
  struct Handle {
    uv_timer_t t;
    std::function<void()> fn;
  };
  Handle* h_;
};

// ASCII case-insensitive equality of a header name with a lower-case one.
bool sameName(const std::string& name, const char* lower) {
  size_t i = 0;
  for (; i < name.size() && lower[i]; ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return i == name.size() && !lower[i];
}

}  // namespace

class ClientImpl : public ConnectionOwner, public std::enable_shared_from_this<ClientImpl> {
 public:
  ClientImpl(std::shared_ptr<EventSink> sink, uint64_t tag)
      : loop_(&nextLoop()), sink_(std::move(sink)), tag_(tag) {}

  void start(const ClientOptions& opts, std::function<void(ConnectResult)> done) {
    std::shared_ptr<ClientImpl> self = shared_from_this();
    // Inline mode or not is decided per start (see ServerImpl::start).
    IoLoop* want = opts.loop ? opts.loop.get() : (loop_->embedded() ? &nextLoop() : loop_);
    if (want != loop_) {
      // Leave the old loop: its timers and connection are closed there
      // (and what it still had posted for us has run) before we move.
      loop_->runSync([self] { self->leaveLoop(); });
      loop_ = want;
      loopHold_ = opts.loop;
    }
    active_.store(true);
    // Until the posted start runs, a close or a failure of the previous
    // connection is not the client's last (terminal): a start follows.
    postedStarts_.fetch_add(1);
    // The start is posted, a stop in inline mode runs at once: a stop made
    // after this start (same tick) must cancel it, or the start would run
    // after the stop and connect a stopped (or cleared: then forgotten,
    // reconnecting forever) client.
    uint64_t stops = stops_.load();
    loop_->post([self, opts, done, stops]() mutable {
      self->postedStarts_.fetch_sub(1);
      if (self->stops_.load() != stops) {
        ConnectResult r;
        r.errorStr = "Stopped";
        r.uri = opts.url;
        if (done) done(r);
        return;
      }
      self->startOnLoop(opts, std::move(done));
    });
  }

  void stop(int code, const std::string& reason, bool hard) {
    active_.store(false);
    stops_.fetch_add(1);
    std::shared_ptr<ClientImpl> self = shared_from_this();
    // Inline mode: at once (see ServerImpl::stop).
    loop_->dispatch([self, code, reason, hard] { self->stopOnLoop(code, reason, hard); });
  }

  SendResult send(const uint8_t* data, size_t len, bool binary) {
    // After stop() nothing more is sent, even before the close handshake runs.
    std::shared_ptr<Connection> c = active_.load() ? current() : nullptr;
    if (!c) {
      SendResult r;
      r.payloadSize = len;
      r.message = "Not connected";
      return r;
    }
    SendResult r = c->send(data, len, binary);
    r.conn = 0;
    return r;
  }

  std::shared_ptr<Connection> current() const {
    std::lock_guard<std::mutex> lock(mu_);
    return conn_;
  }
  bool open() const {
    auto c = current();
    return c && c->state() == Connection::kOpen;
  }
  bool active() const { return active_.load(); }

  void resumeReading() {
    std::shared_ptr<ClientImpl> self = shared_from_this();
    loop_->post([self] {
      if (auto c = self->current()) c->resumeReading();
    });
  }

  // ConnectionOwner (loop thread)
  void onConnOpen(Connection* c) override {
    if (c != current().get()) return;
    timeoutTimer_->stop();
    // The retry count (the backoff) is not reset here: only a connection
    // that stays open kStableOpenMs clears it (onConnClosed). A server that
    // accepts and closes at once must meet the same growing waits as one that
    // refuses, or its clients reconnect every millisecond.
    openedAtMs_ = uv_now(loop_->loop());
    ConnectResult r;
    r.success = true;
    r.httpStatus = c->responseStatus();
    r.uri = hopUrl_;
    r.redirects = redirects_;
    std::shared_ptr<const PeerInfo> peer = c->peerInfo();
    r.protocol = peer->protocol;
    Headers headers = c->takePeerHeaders();
    r.headers = headers;
    // The open event is queued before the start's result: the two can reach
    // JavaScript in different deliveries, and code after `await start()`
    // may rely on the open event having been handled (its state set up, or
    // the client cleared from inside it).
    Event ev;
    ev.type = EventType::Open;
    ev.peer = std::move(peer);
    ev.uri = hopUrl_;
    ev.headers = std::move(headers);
    emit(std::move(ev));
    reportStart(r);
  }

  void onConnFailed(Connection* c, int httpStatus, const std::string& error) override {
    if (c != current().get()) return;
    // The TCP connect itself failed and the host has more addresses: try the
    // next one (e.g. ::1 refused, 127.0.0.1 listening) within the same attempt.
    if (!c->tcpConnected() && addrIndex_ + 1 < addrs_.size()) {
      ++addrIndex_;
      setConn(nullptr);
      connectCurrentAddress();
      return;
    }
    if (useProxy_ && !c->tcpConnected()) {
      attemptFailed(0, "Cannot connect to proxy " + proxy_.authority() + ": " + error);
      return;
    }
    // A redirect answer to the upgrade (not the proxy's answer to CONNECT:
    // the upgrade response status is 0 then).
    int upgradeStatus = c->responseStatus();
    // The server's answer to the upgrade, or the proxy's refusal of CONNECT,
    // whatever its status: its headers go to the start's status
    // (WWW-Authenticate with a 401, Retry-After with a 429 or 503, a Location
    // not followed, Proxy-Authenticate with a proxy's 407).
    Headers answer = upgradeStatus != 0 || c->tunneling() ? c->takePeerHeaders() : Headers();
    if (isRedirectStatus(upgradeStatus) && !c->tunneling()) {
      std::string location;
      bool hasLocation = false;
      for (const auto& h : answer) {
        if (sameName(h.first, "location")) {
          location = h.second;
          hasLocation = true;
          break;
        }
      }
      if (!opts_.followRedirects) {
        attemptFailed(httpStatus, error + (hasLocation ? " (a redirect to '" + location + "'" : " (a redirect") +
                                      "; followRedirects is off)", std::move(answer));
        return;
      }
      std::string next, why;
      WsUrl nextUrl;
      if (!nextRedirect(hopUrl_, url_, hasLocation, location, redirects_, opts_.maxRedirects, next,
                        nextUrl, why)) {
        attemptFailed(httpStatus, why);
        return;
      }
      // The failed connection closes itself; the attempt (and its timeout)
      // goes on with the next hop.
      setConn(nullptr);
      ++redirects_;
      hopUrl_ = next;
      url_ = nextUrl;
      connectHop();
      return;
    }
    attemptFailed(httpStatus, error, std::move(answer));
  }

  void onConnClosed(Connection* c, bool wasOpen, int code, const std::string& reason,
                    bool remote) override {
    if (c != current().get()) return;
    setConn(nullptr);
    // A start waiting for this close (startOnLoop) runs once its close event
    // is out: the application sees this connection's close before anything of
    // the new one, and the close is not the client's last (terminal).
    std::unique_ptr<ClientOptions> restart = std::move(pendingOpts_);
    bool again = wasOpen && !restart && opts_.enableAutomaticReconnection && !stopped_;
    double wait = 0;
    if (again) {
      if (uv_now(loop_->loop()) - openedAtMs_ >= kStableOpenMs) retries_ = 0;
      wait = waitFor(retries_);
      ++retries_;
    }
    if (wasOpen && !silent_) {
      Event ev;
      ev.type = EventType::Close;
      ev.code = code;
      ev.reason = reason;
      ev.remote = remote;
      // A start posted and not yet run supersedes the retry: none announced.
      const bool startPosted = postedStarts_.load() != 0;
      if (again && !startPosted) {
        ev.waitTime = wait;
        ev.retries = retries_;
      }
      ev.terminal = !again && !restart && !startPosted;
      emit(std::move(ev));
    }
    if (restart) {
      auto done = std::move(pendingDone_);
      pendingDone_ = nullptr;
      startOnLoop(*restart, std::move(done));
      return;
    }
    if (!wasOpen) return;  // reported through onConnFailed or the timeout
    if (again) {
      scheduleRetry(wait);
    } else {
      active_.store(false);
    }
  }

 private:
  void startOnLoop(const ClientOptions& opts, std::function<void(ConnectResult)> done) {
    if (!timeoutTimer_) {
      timeoutTimer_.reset(new LoopTimer(*loop_));
      retryTimer_.reset(new LoopTimer(*loop_));
    }
    // A restart: drop whatever the previous start left.
    retryTimer_->stop();
    timeoutTimer_->stop();
    ++attemptId_;
    settlePending("Superseded by a new start");
    std::shared_ptr<Connection> open = current();
    if (open && !silent_ && open->wasOpen() && !open->finished()) {
      // The application saw this connection open: it ends with a close
      // handshake (begun here, or by a stop() or the peer before this start)
      // and a close event, as after stop(), and this start runs after that
      // event (onConnClosed, also when the socket is already closed and only
      // its finish is to come); the connection's close deadline bounds the
      // wait.
      pendingOpts_.reset(new ClientOptions(opts));
      pendingDone_ = std::move(done);
      stopped_ = false;
      if (open->state() == Connection::kOpen) open->close(1000, "Client restarted");
      return;
    }
    if (auto c = current()) {
      setConn(nullptr);
      c->abort();
    }
    if (startDone_) {
      ConnectResult r;
      r.errorStr = "Superseded by a new start";
      r.uri = hopUrl_;
      auto d = std::move(startDone_);
      startDone_ = nullptr;
      d(r);
    }
    opts_ = opts;
    startDone_ = std::move(done);
    stopped_ = false;
    silent_ = false;
    retries_ = 0;
    active_.store(true);
    hopUrl_ = opts_.url;
    redirects_ = 0;
    std::string err;
    if (!parseWsUrl(opts_.url, origUrl_, err)) {
      // Retrying cannot fix a bad URL: fail once, for good.
      failAttempt(0, err, /*final=*/true);
      return;
    }
    if (!checkProxyOption(opts_.proxy, err)) {
      failAttempt(0, err, true);
      return;
    }
    // What every hop of this start shares; connectHop() adds the rest.
    auto base = startSettings(weak_from_this(), sink_, tag_, /*server=*/false, opts_);
    base->closeTimeout = opts_.closeTimeout;
    baseSettings_ = std::move(base);
    tlsCtx_.reset();
    if (origUrl_.secure || opts_.tls.enabled) {
      tlsCtx_ = makeTls(err);
      if (!tlsCtx_) {
        failAttempt(0, err, true);
        return;
      }
    }
    attempt();
  }

  void stopOnLoop(int code, const std::string& reason, bool hard) {
    stopped_ = true;
    if (hard) silent_ = true;
    ++attemptId_;  // late DNS answers are ignored
    settlePending("Stopped");
    if (retryTimer_) retryTimer_->stop();
    if (timeoutTimer_) timeoutTimer_->stop();
    if (startDone_) {
      ConnectResult r;
      r.errorStr = "Stopped";
      r.uri = hopUrl_;
      reportStart(r);
    }
    std::shared_ptr<Connection> c = current();
    if (c) {
      if (!hard && c->state() == Connection::kOpen) {
        c->close(code, reason);  // its close event arrives when done (terminal)
      } else if (!hard && c->wasOpen() && !c->finished()) {
        // Already closing (a restart, an earlier stop, the peer): its close
        // handshake goes on and its close event arrives when done.
      } else {
        setConn(nullptr);
        c->abort();
      }
    }
    if (hard) {
      // Cleared: free the timers now (we are on the loop thread).
      retryTimer_.reset();
      timeoutTimer_.reset();
    }
  }

  // On the old loop, when a start moves the client to another one.
  void leaveLoop() {
    ++attemptId_;  // late DNS answers are ignored
    settlePending("Superseded by a new start");
    retryTimer_.reset();
    timeoutTimer_.reset();
    if (auto c = current()) {
      // A connection cannot follow the client to another loop: it is
      // dropped, and one the application saw open still gets its close event
      // (before anything of the new start, which is posted after this).
      bool announce = !silent_ && c->wasOpen() && !c->finished();
      setConn(nullptr);
      c->abort();
      if (announce) {
        Event ev;
        ev.type = EventType::Close;
        ev.code = 1006;
        ev.reason = "Client restarted on another loop";
        ev.remote = false;
        ev.terminal = false;
        emit(std::move(ev));
      }
    }
  }

  void attempt() {
    uint64_t id = ++attemptId_;
    addrs_.clear();
    addrIndex_ = 0;
    double timeout = opts_.timeout > 0 ? opts_.timeout : 20.0;
    std::weak_ptr<ClientImpl> weak = shared_from_this();
    timeoutTimer_->start(secondsToMs(timeout), [weak, id, timeout] {
      auto self = weak.lock();
      if (!self || id != self->attemptId_) return;
      if (auto c = self->current()) {
        self->setConn(nullptr);
        c->abort();
      }
      char buf[96];
      std::snprintf(buf, sizeof buf, "Connection timed out after %g s", timeout);
      self->attemptFailed(0, buf);
    });
    // Every attempt (reconnections included) starts from the url given.
    url_ = origUrl_;
    hopUrl_ = opts_.url;
    redirects_ = 0;
    leftOrigin_ = false;
    connectHop();
  }

  std::shared_ptr<TlsContext> makeTls(std::string& err) {
    TlsOptions t = opts_.tls;
    t.enabled = true;
    return TlsContext::createClient(t, err);
  }

  // Connects to url_ (directly or through its proxy) within the current
  // attempt: the settings of this hop, then DNS and connect.
  void connectHop() {
    uint64_t id = attemptId_;
    std::string err;
    useProxy_ = false;
    std::string proxyText = opts_.proxy, variable;
    if (proxyText == "env") {
      proxyText = proxyFromEnv(opts_.proxyEnv, url_.secure, url_.host, url_.port, variable);
    }
    if (!proxyText.empty()) {
      if (!parseProxyUrl(proxyText, proxy_, err)) {
        attemptFailed(0, variable.empty() ? err : err + " (from " + variable + ")");
        return;
      }
      useProxy_ = true;
    }
    bool tls = url_.secure || opts_.tls.enabled;
    if (tls && !tlsCtx_) {
      // A redirect from ws:// to wss://.
      tlsCtx_ = makeTls(err);
      if (!tlsCtx_) {
        attemptFailed(0, err);
        return;
      }
    }
    auto s = std::make_shared<ConnSettings>(*baseSettings_);
    if (tls) s->tls = tlsCtx_;
    // tls.servername names the url's host; a redirect's hop to another host
    // is verified against its own name.
    bool ownName = !opts_.tls.servername.empty() && sameHost(origUrl_, url_);
    s->tlsHost = ownName ? opts_.tls.servername : url_.host;
    s->tlsPeer = (url_.ipv6 ? "[" + url_.host + "]" : url_.host) + ":" + std::to_string(url_.port);
    s->hostHeader = url_.hostHeader();
    s->target = url_.target;
    if (!sameHost(origUrl_, url_)) leftOrigin_ = true;
    s->extraHeaders = hopHeaders(opts_.extraHeaders, origUrl_, url_, leftOrigin_);
    if (useProxy_) {
      s->proxyConnect = buildConnectRequest(url_.host, url_.port, url_.ipv6, proxy_.authorization);
    }
    settings_ = std::move(s);

    addrs_.clear();
    addrIndex_ = 0;
    const std::string& host = useProxy_ ? proxy_.host : url_.host;
    const int hostPort = useProxy_ ? proxy_.port : url_.port;
    const std::string what = useProxy_ ? "proxy host" : "host";
    std::weak_ptr<ClientImpl> weak = shared_from_this();
    struct sockaddr_storage ss;
    std::memset(&ss, 0, sizeof ss);
    if (uv_ip4_addr(host.c_str(), hostPort, reinterpret_cast<sockaddr_in*>(&ss)) == 0 ||
        uv_ip6_addr(host.c_str(), hostPort, reinterpret_cast<sockaddr_in6*>(&ss)) == 0) {
      addrs_.push_back(ss);
      connectCurrentAddress();
      return;
    }
    // The lookup's outcome, handled on this client's loop.
    auto resolved = [weak, id, what, host](int status, std::vector<sockaddr_storage> addrs) {
      auto self = weak.lock();
      if (!self || id != self->attemptId_) return;
      if (status != 0 || addrs.empty()) {
        self->attemptFailed(0, "Cannot resolve " + what + " '" + host + "': " +
                                   uv_strerror(status != 0 ? status : UV_EAI_NONAME));
        return;
      }
      self->addrs_ = std::move(addrs);
      self->connectCurrentAddress();
    };
    // Inline mode: the request runs on the first IO loop and its answer is
    // posted back. A request pending on the embedder's loop would keep it
    // from closing (uv_loop_close refuses active requests: a worker thread
    // ending during a lookup would abort); a post to a closed embedded loop
    // is simply dropped.
    IoLoop* reqLoop = loop_->embedded() ? &firstLoop() : loop_;
    std::function<void(int, std::vector<sockaddr_storage>)> done;
    if (reqLoop == loop_) {
      done = resolved;
    } else {
      std::shared_ptr<IoLoop> back = loopHold_;
      done = [back, resolved](int status, std::vector<sockaddr_storage> addrs) {
        back->post([resolved, status, addrs = std::move(addrs)]() mutable {
          resolved(status, std::move(addrs));
        });
      };
    }
    std::string port = std::to_string(hostPort);
    reqLoop->dispatch([reqLoop, host, port, done]() {
      struct Lookup {
        uv_getaddrinfo_t req;
        std::function<void(int, std::vector<sockaddr_storage>)> done;
      };
      auto* lk = new Lookup{{}, done};
      lk->req.data = lk;
      struct addrinfo hints;
      std::memset(&hints, 0, sizeof hints);
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      int rc = uv_getaddrinfo(
          reqLoop->loop(), &lk->req,
          [](uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
            auto* lk = static_cast<Lookup*>(req->data);
            std::vector<sockaddr_storage> addrs;
            for (auto* ai = status == 0 ? res : nullptr; ai; ai = ai->ai_next) {
              struct sockaddr_storage s;
              std::memset(&s, 0, sizeof s);
              std::memcpy(&s, ai->ai_addr, ai->ai_addrlen);
              addrs.push_back(s);
            }
            if (res) uv_freeaddrinfo(res);
            auto fn = std::move(lk->done);
            delete lk;
            fn(status, std::move(addrs));
          },
          host.c_str(), port.c_str(), &hints);
      if (rc != 0) {
        auto fn = std::move(lk->done);
        delete lk;
        fn(rc, {});
      }
    });
  }

  void connectCurrentAddress() {
    auto c = std::make_shared<Connection>(*loop_, 0, settings_);
    setConn(c);
    c->connect(reinterpret_cast<const sockaddr*>(&addrs_[addrIndex_]));
  }

  // `answer`: the headers of the server's non-101 answer, if one came.
  void attemptFailed(int httpStatus, const std::string& error, Headers answer = Headers()) {
    timeoutTimer_->stop();
    if (auto c = current()) {
      setConn(nullptr);
      c->abort();
    }
    failAttempt(httpStatus, error, false, std::move(answer));
  }

  void failAttempt(int httpStatus, const std::string& error, bool final, Headers answer = Headers()) {
    ++attemptId_;
    ConnectResult r;
    r.httpStatus = httpStatus;
    r.errorStr = error;
    r.headers = std::move(answer);
    r.uri = hopUrl_;
    r.redirects = redirects_;
    reportStart(r);
    bool again = !final && opts_.enableAutomaticReconnection && !stopped_;
    double wait = again ? waitFor(retries_) : 0;
    ++retries_;
    if (!silent_) {
      Event ev;
      ev.type = EventType::Error;
      ev.reason = error;
      ev.httpStatus = httpStatus;
      ev.retries = retries_;
      ev.waitTime = wait;
      ev.terminal = !again && postedStarts_.load() == 0;
      emit(std::move(ev));
    }
    if (again)
      scheduleRetry(wait);
    else
      active_.store(false);
  }

  // Exponential backoff: min * 2^n, capped at max (IXWebSocket's knobs);
  // with reconnectionJitter j, a uniform draw from [w * (1 - j), w]: the
  // clients one restart cut off spread their retries over that window
  // instead of arriving together, and none waits longer than without it.
  double waitFor(int retries) const {
    double minW = opts_.minWaitBetweenReconnectionRetries;
    double maxW = opts_.maxWaitBetweenReconnectionRetries;
    if (minW < 1) minW = 1;
    double w = minW * std::pow(2.0, std::min(retries, 40));
    w = w > maxW ? std::max(maxW, minW) : w;
    double j = std::min(std::max(opts_.reconnectionJitter, 0.0), 1.0);
    if (j > 0) {
      uint32_t r = 0;
      randomBytes(reinterpret_cast<uint8_t*>(&r), sizeof r);
      w *= 1.0 - j * (r / 4294967296.0);
    }
    return w;
  }

  void scheduleRetry(double waitMs) {
    if (!retryTimer_) return;
    std::weak_ptr<ClientImpl> weak = shared_from_this();
    uint64_t id = attemptId_;
    retryTimer_->start(static_cast<uint64_t>(waitMs), [weak, id] {
      auto self = weak.lock();
      // active_ as well as stopped_: stop() clears active_ on its own thread
      // and posts the rest here, and libuv runs a timer that fell due before
      // that post. Once stop() has returned, no new attempt starts.
      if (!self || self->stopped_ || !self->active_.load() || id != self->attemptId_) return;
      self->attempt();
    });
  }

  // A start still waiting for a close (startOnLoop) ends without running:
  // a newer start supersedes it, or a stop cancels it.
  void settlePending(const char* why) {
    if (!pendingOpts_) return;
    ConnectResult r;
    r.errorStr = why;
    r.uri = pendingOpts_->url;
    pendingOpts_.reset();
    auto d = std::move(pendingDone_);
    pendingDone_ = nullptr;
    if (d) d(r);
  }

  void reportStart(const ConnectResult& r) {
    if (!startDone_) return;
    auto d = std::move(startDone_);
    startDone_ = nullptr;
    d(r);
  }

  void emit(Event&& ev) {
    ev.owner = tag_;
    ev.conn = 0;
    sink_->push(std::move(ev));
  }

  void setConn(std::shared_ptr<Connection> c) {
    std::lock_guard<std::mutex> lock(mu_);
    conn_ = std::move(c);
  }

  // An IO thread's loop, or in inline mode the embedder's (held by
  // loopHold_). Changed only by start(), on the owner thread, after the old
  // loop let go (leaveLoop).
  IoLoop* loop_;
  std::shared_ptr<IoLoop> loopHold_;
  std::shared_ptr<EventSink> sink_;
  uint64_t tag_;
  ClientOptions opts_;
  WsUrl origUrl_;       // opts_.url, parsed: where every attempt starts
  WsUrl url_;           // the current hop's (after redirects)
  std::string hopUrl_;  // its text, for the status and the open event
  int redirects_ = 0;   // followed in the current attempt
  bool leftOrigin_ = false;  // a hop of the current attempt went to another host (hopHeaders)
  bool useProxy_ = false;  // the current hop goes through proxy_
  ProxyUrl proxy_;
  std::shared_ptr<TlsContext> tlsCtx_;          // of the current start; made when first needed
  std::shared_ptr<const ConnSettings> baseSettings_;  // of the current start
  ConnSettingsPtr settings_;  // of the current hop
  std::function<void(ConnectResult)> startDone_;
  // A start waiting for the close of the connection the application saw
  // open (startOnLoop); onConnClosed runs it.
  std::unique_ptr<ClientOptions> pendingOpts_;
  std::function<void(ConnectResult)> pendingDone_;
  std::unique_ptr<LoopTimer> timeoutTimer_;
  std::unique_ptr<LoopTimer> retryTimer_;
  std::vector<struct sockaddr_storage> addrs_;
  size_t addrIndex_ = 0;
  // Atomic: a DNS answer the old loop still delivers after a start moved the
  // client to another loop (leaveLoop) reads it there while the new loop
  // writes it; it can only find a stale id then.
  std::atomic<uint64_t> attemptId_{0};
  // Attempts since the last connection that stayed open kStableOpenMs (or
  // since start): the exponent of the backoff.
  int retries_ = 0;
  // How long a connection must stay open for the next reconnection to start
  // the backoff again from minWaitBetweenReconnectionRetries (the minimum
  // uptime of reconnecting-websocket and similar clients).
  static constexpr uint64_t kStableOpenMs = 5000;
  uint64_t openedAtMs_ = 0;  // uv_now of the last open
  bool stopped_ = false;
  bool silent_ = false;
  std::atomic<bool> active_{false};
  std::atomic<int> postedStarts_{0};  // start() calls whose posted part has not run
  std::atomic<uint64_t> stops_{0};  // stop() calls: a start posted before one is void
  mutable std::mutex mu_;
  std::shared_ptr<Connection> conn_;
};

Client::Client(std::shared_ptr<EventSink> sink, uint64_t tag)
    : impl_(std::make_shared<ClientImpl>(std::move(sink), tag)) {}
Client::~Client() {
  if (impl_) impl_->stop(1000, "Client cleared", true);
}
void Client::start(const ClientOptions& options, std::function<void(ConnectResult)> done) {
  impl_->start(options, std::move(done));
}
void Client::stop(int code, const std::string& reason) { impl_->stop(code, reason, false); }
void Client::clear() { impl_->stop(1000, "Client cleared", true); }
bool Client::open() const { return impl_->open(); }
bool Client::active() const { return impl_->active(); }
SendResult Client::send(const uint8_t* data, size_t len, bool binary) {
  return impl_->send(data, len, binary);
}
uint64_t Client::bufferedAmount() const {
  auto c = impl_->current();
  return c ? c->bufferedAmount() : 0;
}
void Client::resumeReading() { impl_->resumeReading(); }
bool Client::ping(const uint8_t* data, size_t len) {
  auto c = impl_->active() ? impl_->current() : nullptr;
  return c && c->ping(data, len);
}
void Client::ackClose() {
  auto c = impl_->current();
  if (!c) return;
  c->loop().post([c] { c->ackClose(); });
}

}  // namespace wsengine
