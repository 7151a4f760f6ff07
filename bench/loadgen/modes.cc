#include "modes.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <utility>

#include "ws_client.h"

namespace loadgen {

namespace {

// Shared frame of every client mode: the loop, the pool, a give-up timer and
// the result line.
class ClientMode : public ConnEvents {
 public:
  explicit ClientMode(const Options& o) : o_(o), loop_(mainLoop()) {}
  ~ClientMode() override = default;

  int run(const ClientConfig& cfg) {
    pool_.reset(new ConnPool(loop_, cfg, this));
    uv_timer_init(loop_, &timeout_);
    timeout_.data = this;
    uv_timer_start(&timeout_, [](uv_timer_t* t) { static_cast<ClientMode*>(t->data)->giveUp(); },
                   static_cast<uint64_t>(o_.timeout * 1000), 0);
    if (!pool_->start(o_.conns, o_.connectConcurrency)) {
      std::string j;
      jsonStr(j, "mode", o_.mode);
      jsonStr(j, "error", pool_->lastError);
      printJson(j);
      return 2;
    }
    uv_run(loop_, UV_RUN_DEFAULT);
    return exitCode_;
  }

  void onOpen(Conn& c) override {
    opened(c);
    if (!started_ && pool_->allSettled()) begin();
  }
  void onLost(Conn& c, const std::string& why) override {
    if (!c.everOpened() && !started_ && pool_->allSettled()) begin();
    lostHook(c, why);
  }

 protected:
  virtual void opened(Conn&) {}
  virtual void lostHook(Conn&, const std::string&) {}
  // Every connection is open or has failed for good.
  virtual void begin() = 0;
  virtual void addResults(std::string& j) = 0;

  void commonResults(std::string& j) {
    jsonStr(j, "mode", o_.mode);
    jsonNum(j, "conns", o_.conns);
    jsonNum(j, "opened", pool_->opened());
    jsonNum(j, "failed", pool_->failed());
    jsonNum(j, "lost", pool_->lost());
    uint64_t contentErrors = 0, pmd = 0;
    for (auto& c : pool_->conns()) {
      contentErrors += c->contentErrors;
      if (c->pmd().accepted) ++pmd;
    }
    jsonNum(j, "content_errors", static_cast<double>(contentErrors));
    jsonNum(j, "deflate_conns", static_cast<double>(pmd));
    if (!pool_->lastError.empty()) jsonStr(j, "last_error", pool_->lastError);
    jsonNum(j, "loadgen_rss", static_cast<double>(rssBytes()));
  }

  void finish(int code = 0) {
    if (finished_) return;
    finished_ = true;
    exitCode_ = code;
    std::string j;
    commonResults(j);
    addResults(j);
    printJson(j);
    pool_->closeAll();
    uv_close(reinterpret_cast<uv_handle_t*>(&timeout_), nullptr);
    uv_stop(loop_);
  }

  void giveUp() {
    timedOut_ = true;
    finish(3);
  }

  // CPU seconds of the server process so far (--server-pid), or < 0.
  double serverCpu() const { return processCpuSeconds(o_.serverPid); }

  // The server's CPU over the measured window(s): a fraction of one core and
  // microseconds per message (an echo counts once: one in, one out).
  void serverResults(std::string& j, double cpuSeconds, double wallSeconds, double messages) {
    if (o_.serverPid <= 0) return;
    if (cpuSeconds < 0 || wallSeconds <= 0 || messages <= 0) {
      jsonStr(j, "server_cpu_error", "server CPU time unreadable");
      return;
    }
    jsonNum(j, "server_cpu", cpuSeconds / wallSeconds);
    jsonNum(j, "server_us_per_msg", cpuSeconds * 1e6 / messages);
  }

  // What the rest of the machine did over the measured window(s): its busy
  // and steal time as fractions of one core, and other_cpu, the busy time of
  // every process but the server and this generator. On a machine shared with
  // other work (a build, a test suite), the server and the generator may have
  // had less than the machine: the runner re-measures such a window.
  struct MachineWindow {
    bool ok = true;
    double busy = 0, steal = 0;
    MachineCpu start;
    void begin() { start = machineCpu(); }
    void end() {
      MachineCpu m = machineCpu();
      if (!start.ok || !m.ok) {
        ok = false;
        return;
      }
      busy += m.busy - start.busy;
      steal += m.steal - start.steal;
    }
  };
  void machineResults(std::string& j, const MachineWindow& m, double wallSeconds, double ownCpuSeconds,
                      double serverCpuSeconds) {
    if (!m.ok || wallSeconds <= 0) return;
    jsonNum(j, "machine_busy", m.busy / wallSeconds);
    jsonNum(j, "machine_steal", m.steal / wallSeconds);
    if (o_.serverPid > 0 && serverCpuSeconds >= 0)
      jsonNum(j, "other_cpu", (m.busy - ownCpuSeconds - serverCpuSeconds) / wallSeconds);
  }

  // A one-shot timer owned by the mode.
  void after(uv_timer_t* t, double seconds, void (*cb)(uv_timer_t*)) {
    uv_timer_init(loop_, t);
    t->data = this;
    uv_timer_start(t, cb, static_cast<uint64_t>(seconds * 1000), 0);
  }

  Options o_;
  uv_loop_t* loop_;
  std::unique_ptr<ConnPool> pool_;
  uv_timer_t timeout_;
  bool started_ = false;
  bool finished_ = false;
  bool timedOut_ = false;
  int exitCode_ = 0;
};

// ---- echo: K messages in flight per connection, one new per echo ----------
class EchoMode : public ClientMode {
 public:
  explicit EchoMode(const Options& o) : ClientMode(o), payload_(makePayload(o.size, o.text)) {
    for (int i = 0; i < kCopies; ++i)
      plain_.push_back(buildClientFrame(payload_.data(), payload_.size(), opcode(), false));
  }

  int start() {
    ClientConfig cfg;
    if (!parseUrl(o_.url, &cfg.url)) return badUrl();
    cfg.offerDeflate = o_.deflate;
    cfg.expect = payload_.data();
    cfg.expectLen = payload_.size();
    return run(cfg);
  }

  void onMessage(Conn& c, const uint8_t*, size_t len, bool) override {
    if (len != o_.size) ++lenErrors_;
    ++msgs_;
    bytes_ += len;
    if (!stopping_) ++c.userCounter;  // owed: sent from onReadDone
  }

  void onReadDone(Conn& c) override {
    while (c.userCounter > 0 && !stopping_) {
      unsigned n = static_cast<unsigned>(std::min<uint64_t>(c.userCounter, kMaxBufs));
      c.userCounter -= n;
      sendFrames(c, n);
    }
  }

 private:
  static constexpr int kCopies = 8;  // distinct mask keys, cycled
  static constexpr unsigned kMaxBufs = 64;

  int badUrl() {
    std::fprintf(stderr, "loadgen: bad url %s\n", o_.url.c_str());
    return 64;
  }
  uint8_t opcode() const { return o_.text ? wsengine::kText : wsengine::kBinary; }

  void opened(Conn& c) override {
    if (c.pmd().accepted && compressed_.empty()) {
      // Offered client_no_context_takeover: every message compresses alone.
      std::vector<uint8_t> z = compressAlone(payload_.data(), payload_.size(), c.pmd().clientMaxWindowBits);
      for (int i = 0; i < kCopies; ++i) compressed_.push_back(buildClientFrame(z.data(), z.size(), opcode(), true));
    }
    if (started_) return;  // late (retried) connections join idle
  }

  void begin() override {
    started_ = true;
    for (auto& c : pool_->conns())
      if (c->isOpen()) sendFrames(*c, static_cast<unsigned>(o_.inflight));
    after(&phase_, o_.warmup, [](uv_timer_t* t) { static_cast<EchoMode*>(t->data)->measureStart(); });
  }

  void measureStart() {
    msgs0_ = msgs_;
    bytes0_ = bytes_;
    machine_.begin();
    srv0_ = serverCpu();
    cpu0_ = cpuSeconds();
    t0_ = nowNs();
    uv_timer_start(&phase_, [](uv_timer_t* t) { static_cast<EchoMode*>(t->data)->measureEnd(); },
                   static_cast<uint64_t>(o_.duration * 1000), 0);
  }

  void measureEnd() {
    seconds_ = (nowNs() - t0_) / 1e9;
    cpu_ = cpuSeconds() - cpu0_;
    double srv1 = serverCpu();
    machine_.end();
    srvCpu_ = srv0_ >= 0 && srv1 >= 0 ? srv1 - srv0_ : -1;
    msgs1_ = msgs_;
    bytes1_ = bytes_;
    stopping_ = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&phase_), nullptr);
    finish(lenErrors_ ? 4 : 0);
  }

  void sendFrames(Conn& c, unsigned n) {
    const auto& set = c.pmd().accepted ? compressed_ : plain_;
    uv_buf_t bufs[kMaxBufs];
    for (unsigned i = 0; i < n; ++i) {
      const auto& f = set[next_++ % kCopies];
      bufs[i] = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(f.data())), static_cast<unsigned>(f.size()));
    }
    c.writeStatic(bufs, n);
  }

  void addResults(std::string& j) override {
    jsonNum(j, "size", static_cast<double>(o_.size));
    jsonNum(j, "inflight", o_.inflight);
    jsonNum(j, "text", o_.text);
    if (seconds_ > 0) {
      jsonNum(j, "seconds", seconds_);
      jsonNum(j, "msgs", static_cast<double>(msgs1_ - msgs0_));
      jsonNum(j, "msgs_per_s", (msgs1_ - msgs0_) / seconds_);
      jsonNum(j, "bytes_per_s", (bytes1_ - bytes0_) / seconds_);
      jsonNum(j, "loadgen_cpu", cpu_ / seconds_);
      serverResults(j, srvCpu_, seconds_, static_cast<double>(msgs1_ - msgs0_));
      machineResults(j, machine_, seconds_, cpu_, srvCpu_);
    }
    jsonNum(j, "len_errors", static_cast<double>(lenErrors_));
    if (!compressed_.empty()) jsonNum(j, "wire_size", static_cast<double>(compressed_[0].size()));
    // What the server's replies weigh on the wire (payload bytes, after its
    // compression if any), averaged over every reply.
    uint64_t wire = 0, n = 0;
    for (auto& c : pool_->conns()) {
      wire += c->wireBytes;
      n += c->messages;
    }
    if (n) jsonNum(j, "reply_wire_size", static_cast<double>(wire) / n);
  }

  std::vector<uint8_t> payload_;
  std::vector<std::vector<uint8_t>> plain_, compressed_;
  MachineWindow machine_;
  uv_timer_t phase_;
  uint64_t next_ = 0;
  uint64_t msgs_ = 0, bytes_ = 0, lenErrors_ = 0;
  uint64_t msgs0_ = 0, bytes0_ = 0, msgs1_ = 0, bytes1_ = 0, t0_ = 0;
  double cpu0_ = 0, cpu_ = 0, seconds_ = 0, srv0_ = -1, srvCpu_ = -1;
  bool stopping_ = false;
};

// ---- broadcast: trigger the server, time until everyone has every message --
class BroadcastMode : public ClientMode {
 public:
  explicit BroadcastMode(const Options& o) : ClientMode(o) {}

  int start() {
    ClientConfig cfg;
    if (!parseUrl(o_.url, &cfg.url)) return 64;
    return run(cfg);
  }

  void onMessage(Conn& c, const uint8_t*, size_t len, bool) override {
    if (len != o_.size) ++lenErrors_;
    ++c.userCounter;
    ++delivered_;
    if (c.userCounter == target_) {
      if (++done_ == pool_->opened() - pool_->lost()) burstDone();
    }
  }

 private:
  // One burst warms up the server (JIT, buffers); the next o_.bursts count.
  static constexpr int kWarmBursts = 1;

  void begin() override {
    started_ = true;
    // Give the server a moment to file the last connections as open.
    after(&pause_, 0.3, [](uv_timer_t* t) { static_cast<BroadcastMode*>(t->data)->trigger(); });
  }

  void trigger() {
    Conn* first = nullptr;
    for (auto& c : pool_->conns())
      if (c->isOpen()) {
        first = c.get();
        break;
      }
    if (!first) return finish(5);
    done_ = 0;
    target_ += static_cast<uint64_t>(o_.count);
    machine_.begin();
    srv0_ = serverCpu();
    cpu0_ = cpuSeconds();
    t0_ = nowNs();
    std::string cmd = "bcast " + std::to_string(o_.count) + " " + std::to_string(o_.size);
    first->sendMessage(reinterpret_cast<const uint8_t*>(cmd.data()), cmd.size(), false);
  }

  void burstDone() {
    double s = (nowNs() - t0_) / 1e9;
    if (burst_ >= kWarmBursts) {
      times_.push_back(s);
      cpu_ += cpuSeconds() - cpu0_;
      double srv1 = serverCpu();
      machine_.end();
      if (srv0_ < 0 || srv1 < 0) srvOk_ = false;
      else srvCpu_ += srv1 - srv0_;
    }
    ++burst_;
    if (burst_ == kWarmBursts + o_.bursts) {
      uv_close(reinterpret_cast<uv_handle_t*>(&pause_), nullptr);
      return finish(lenErrors_ ? 4 : 0);
    }
    uv_timer_start(&pause_, [](uv_timer_t* t) { static_cast<BroadcastMode*>(t->data)->trigger(); }, 100, 0);
  }

  void addResults(std::string& j) override {
    jsonNum(j, "size", static_cast<double>(o_.size));
    jsonNum(j, "count", o_.count);
    std::vector<double> sorted = times_;
    std::sort(sorted.begin(), sorted.end());
    if (!sorted.empty()) {
      double med = quantile(sorted, 0.5);
      double total = 0;
      for (double t : times_) total += t;
      jsonNum(j, "bursts", static_cast<double>(times_.size()));
      jsonNum(j, "completion_ms", med * 1000);
      jsonNum(j, "completion_ms_min", sorted.front() * 1000);
      jsonNum(j, "completion_ms_max", sorted.back() * 1000);
      jsonNum(j, "receivers", pool_->opened() - pool_->lost());
      jsonNum(j, "deliveries_per_s", (pool_->opened() - pool_->lost()) * double(o_.count) / med);
      jsonNum(j, "loadgen_cpu", cpu_ / total);
      serverResults(j, srvOk_ ? srvCpu_ : -1, total,
                    double(pool_->opened() - pool_->lost()) * o_.count * times_.size());
      machineResults(j, machine_, total, cpu_, srvOk_ ? srvCpu_ : -1);
    }
    jsonNum(j, "delivered", static_cast<double>(delivered_));
    jsonNum(j, "len_errors", static_cast<double>(lenErrors_));
  }

  uv_timer_t pause_;
  MachineWindow machine_;
  uint64_t target_ = 0, delivered_ = 0, lenErrors_ = 0, t0_ = 0;
  int done_ = 0, burst_ = 0;
  double cpu0_ = 0, cpu_ = 0, srv0_ = -1, srvCpu_ = 0;
  bool srvOk_ = true;
  std::vector<double> times_;
};

// ---- latency: a fixed send rate, RTT from the send time carried in the payload
class LatencyMode : public ClientMode {
 public:
  explicit LatencyMode(const Options& o) : ClientMode(o), payload_(makePayload(std::max<size_t>(o.size, 16), false)) {}

  int start() {
    ClientConfig cfg;
    if (!parseUrl(o_.url, &cfg.url)) return 64;
    cfg.collect = true;
    return run(cfg);
  }

  void onMessage(Conn&, const uint8_t* data, size_t len, bool) override {
    uint64_t now = nowNs();
    if (len != payload_.size() || std::memcmp(data + 16, payload_.data() + 16, len - 16) != 0) {
      ++lenErrors_;
      return;
    }
    uint64_t sentAt, seq;
    std::memcpy(&sentAt, data, 8);
    std::memcpy(&seq, data + 8, 8);
    ++received_;
    if (seq >= firstMeasured_ && seq < lastMeasured_) {
      rtts_.push_back((now - sentAt) / 1e3);  // microseconds
      if (!o_.dump.empty()) trace_.emplace_back((sentAt - tStart_) / 1e3, (now - sentAt) / 1e3);
      ++measuredReceived_;
    }
    if (sendingDone_ && received_ == sent_) finishRun();
  }

 private:
  void begin() override {
    started_ = true;
    for (auto& c : pool_->conns())
      if (c->isOpen()) live_.push_back(c.get());
    if (live_.empty()) return finish(5);
    tStart_ = nowNs();
    cpu0_ = cpuSeconds();
    uv_timer_init(loop_, &tick_);
    tick_.data = this;
    uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<LatencyMode*>(t->data)->tickSend(); }, 1, 1);
  }

  void tickSend() {
    uint64_t now = nowNs();
    double elapsed = (now - tStart_) / 1e9;
    if (elapsed >= o_.warmup && firstMeasured_ == UINT64_MAX) {
      firstMeasured_ = sent_;
      machine_.begin();
      cpuM0_ = cpuSeconds();
      srv0_ = serverCpu();
      tMeasure_ = now;
    }
    if (elapsed >= o_.warmup + o_.duration) {
      lastMeasured_ = sent_;
      double srv1 = serverCpu();
      machine_.end();
      cpuM_ = cpuSeconds() - cpuM0_;
      if (srv0_ >= 0 && srv1 >= 0) srvCpu_ = srv1 - srv0_;
      srvSeconds_ = (now - tMeasure_) / 1e9;
      measuredSeconds_ = elapsed - o_.warmup;
      sendingDone_ = true;
      uv_timer_stop(&tick_);
      // Echoes still on the way get a bounded wait.
      uv_timer_start(&tick_, [](uv_timer_t* t) { static_cast<LatencyMode*>(t->data)->finishRun(); }, 1000, 0);
      if (received_ == sent_) finishRun();
      return;
    }
    uint64_t due = static_cast<uint64_t>(elapsed * o_.rate);
    while (sent_ < due) {
      Conn* c = live_[sent_ % live_.size()];
      uint64_t at = nowNs();
      std::memcpy(payload_.data(), &at, 8);
      std::memcpy(payload_.data() + 8, &sent_, 8);
      c->sendMessage(payload_.data(), payload_.size(), true);
      ++sent_;
    }
  }

  void finishRun() {
    if (finished_) return;
    cpuSeconds_ = cpuSeconds() - cpu0_;
    uv_timer_stop(&tick_);
    uv_close(reinterpret_cast<uv_handle_t*>(&tick_), nullptr);
    finish(lenErrors_ ? 4 : 0);
  }

  void addResults(std::string& j) override {
    if (!o_.dump.empty()) {
      if (FILE* f = std::fopen(o_.dump.c_str(), "w")) {
        for (auto& t : trace_) std::fprintf(f, "%.1f %.1f\n", t.first, t.second);
        std::fclose(f);
      }
    }
    std::sort(rtts_.begin(), rtts_.end());
    jsonNum(j, "size", static_cast<double>(payload_.size()));
    jsonNum(j, "rate", o_.rate);
    jsonNum(j, "sent", static_cast<double>(sent_));
    jsonNum(j, "received", static_cast<double>(received_));
    uint64_t expected = lastMeasured_ > firstMeasured_ ? lastMeasured_ - firstMeasured_ : 0;
    jsonNum(j, "measured", static_cast<double>(rtts_.size()));
    jsonNum(j, "missing", static_cast<double>(expected - std::min<uint64_t>(expected, measuredReceived_)));
    if (!rtts_.empty()) {
      jsonNum(j, "p50_us", quantile(rtts_, 0.5));
      jsonNum(j, "p90_us", quantile(rtts_, 0.9));
      jsonNum(j, "p99_us", quantile(rtts_, 0.99));
      jsonNum(j, "p999_us", quantile(rtts_, 0.999));
      jsonNum(j, "max_us", rtts_.back());
      jsonNum(j, "achieved_rate", rtts_.size() / measuredSeconds_);
    }
    double wall = (nowNs() - tStart_) / 1e9;
    jsonNum(j, "loadgen_cpu", cpuSeconds_ / wall);
    serverResults(j, srvCpu_, srvSeconds_, static_cast<double>(expected));
    machineResults(j, machine_, srvSeconds_, cpuM_, srvCpu_);
    jsonNum(j, "len_errors", static_cast<double>(lenErrors_));
  }

  std::vector<uint8_t> payload_;
  std::vector<Conn*> live_;
  std::vector<double> rtts_;
  std::vector<std::pair<double, double>> trace_;  // --dump: (sent at, rtt) in microseconds
  uv_timer_t tick_;
  uint64_t tStart_ = 0, sent_ = 0, received_ = 0, measuredReceived_ = 0, lenErrors_ = 0;
  uint64_t firstMeasured_ = UINT64_MAX, lastMeasured_ = UINT64_MAX;
  double cpu0_ = 0, cpuSeconds_ = 0, measuredSeconds_ = 0;
  double cpuM0_ = 0, cpuM_ = 0;  // this generator's CPU over the measured window
  MachineWindow machine_;
  double srv0_ = -1, srvCpu_ = -1, srvSeconds_ = 0;
  uint64_t tMeasure_ = 0;
  bool sendingDone_ = false;
};

// ---- idle: open N connections, report, hold them until told to stop --------
class IdleMode : public ClientMode {
 public:
  explicit IdleMode(const Options& o) : ClientMode(o) {}

  int start() {
    ClientConfig cfg;
    if (!parseUrl(o_.url, &cfg.url)) return 64;
    t0_ = nowNs();
    uv_signal_init(loop_, &sig_);
    sig_.data = this;
    uv_signal_start(&sig_, [](uv_signal_t* s, int) { static_cast<IdleMode*>(s->data)->stop(); }, SIGTERM);
    uv_unref(reinterpret_cast<uv_handle_t*>(&sig_));
    return run(cfg);
  }

  void onMessage(Conn&, const uint8_t*, size_t, bool) override {}

 private:
  void begin() override {
    started_ = true;
    uv_timer_stop(&timeout_);  // held until SIGTERM or --duration
    openSeconds_ = (nowNs() - t0_) / 1e9;
    std::string j;
    jsonStr(j, "event", "ready");
    jsonNum(j, "opened", pool_->opened());
    jsonNum(j, "failed", pool_->failed());
    jsonNum(j, "open_seconds", openSeconds_);
    if (!pool_->lastError.empty()) jsonStr(j, "last_error", pool_->lastError);
    printJson(j);
    after(&hold_, o_.duration, [](uv_timer_t* t) { static_cast<IdleMode*>(t->data)->stop(); });
  }

  void stop() {
    if (finished_) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&sig_), nullptr);
    if (started_) uv_close(reinterpret_cast<uv_handle_t*>(&hold_), nullptr);
    finish(0);
  }

  void addResults(std::string& j) override {
    jsonNum(j, "open_seconds", openSeconds_);
    jsonNum(j, "held_seconds", (nowNs() - t0_) / 1e9 - openSeconds_);
  }

  uv_signal_t sig_;
  uv_timer_t hold_;
  uint64_t t0_ = 0;
  double openSeconds_ = 0;
};

}  // namespace

int runEcho(const Options& o) { return EchoMode(o).start(); }
int runBroadcast(const Options& o) { return BroadcastMode(o).start(); }
int runLatency(const Options& o) { return LatencyMode(o).start(); }
int runIdle(const Options& o) { return IdleMode(o).start(); }

}  // namespace loadgen
