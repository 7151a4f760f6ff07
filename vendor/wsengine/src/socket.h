// A connection's TCP socket without a libuv stream handle.
//
// Why: a uv_tcp_t is 248 bytes (handle links, callbacks, write and shutdown
// queues, its own epoll watcher) and an idle WebSocket connection needs none
// of it but the fd. Here every socket of a loop sits in one epoll set of the
// loop's own (the Poller), which libuv watches as a single fd with one
// uv_poll_t; a socket is its fd, its wanted events and its write queue
// (48 bytes, held there by a static_assert in socket.cc). This is how
// uSockets (uWebSockets) keeps its sockets, and it is what took idle memory
// per connection under uWebSockets.js's (bench/PROFILE.md, "Seventh pass").
//
// The API is libuv's stream API, reduced to what Connection and Outbox use,
// with its semantics kept where they rely on them:
// - a write is tried at once; what the socket does not take is queued and
//   written when it becomes writable; its callback never runs inside
//   write() but later on the loop (as uv_write's);
// - shutdown() sends the FIN once every queued write is out;
// - close() cancels queued writes and a pending shutdown (their callbacks get
//   UV_ECANCELED) and its own callback comes last, later on the loop, after
//   which the Socket's memory may be freed;
// - read callbacks report bytes, UV_EOF or a negative errno (libuv's codes
//   are negative errno values on Unix).
//
// Linux only (nested epoll). Elsewhere the same class keeps one uv_poll_t
// per socket on the heap (WSENGINE_SOCKET_UV_POLL, which a Linux build can
// select to test that path). Threading: the loop's thread only; the fd may
// be written from other threads (Outbox's direct writes) while the socket
// is open, never closed by them.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#if !defined(__linux__) && !defined(WSENGINE_SOCKET_UV_POLL)
#define WSENGINE_SOCKET_UV_POLL 1
#endif

namespace wsengine {

class Poller;
class Socket;

// Work that runs later on the loop (write, shutdown and close callbacks):
// an intrusive list, so a deferred callback costs no allocation. The next
// item and whether this one is a SocketWrite share one word (items are
// 8-byte aligned): every socket has one of these.
struct Deferred {
  uintptr_t link = 0;
  Deferred* next() const { return reinterpret_cast<Deferred*>(link & ~uintptr_t(1)); }
  bool isWrite() const { return link & 1; }
};

struct SocketWrite;
using SocketWriteCb = void (*)(SocketWrite* req, int status);

// One write: the caller owns it (and what bufs point to) until its callback.
struct SocketWrite : Deferred {
  void* data = nullptr;
  std::vector<uv_buf_t> bufs;  // filled by the caller before write()
  // The socket's:
  SocketWrite* nextQueued = nullptr;
  size_t index = 0;  // first buffer not fully written (bufs[index] is advanced in place)
  SocketWriteCb cb = nullptr;
  int status = 0;
};

// What a socket calls back; one table per kind of owner (no per-socket
// function pointers).
struct SocketOps {
  // The buffer for the next read (as uv_alloc_cb).
  void (*alloc)(Socket* s, uv_buf_t* buf);
  // n > 0 bytes in buf, or UV_EOF, or a negative errno (as uv_read_cb; reading
  // has stopped after EOF or an error).
  void (*read)(Socket* s, ssize_t n, const uv_buf_t* buf);
  // connect() finished: 0 or a negative errno.
  void (*connected)(Socket* s, int status);
  // shutdown() finished: 0, a negative errno, or UV_ECANCELED after close().
  void (*shutdown)(Socket* s, int status);
  // close() finished: the fd is closed and nothing refers to the Socket.
  void (*closed)(Socket* s);
};

class Socket : private Deferred {
 public:
  Socket() = default;
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  // Before anything else: the loop's poller, the callbacks, their context.
  void init(Poller* poller, const SocketOps* ops, void* data) {
    poller_ = poller;
    ops_ = ops;
    data_ = data;
  }
  void* data() const { return data_; }

  // A connected socket (accepted or adopted): made non-blocking and
  // close-on-exec unless `flagsSet` says it is already (accept4 with
  // SOCK_NONBLOCK | SOCK_CLOEXEC: two fcntl calls per accept saved).
  // Returns 0 or a negative errno (fd left open).
  int open(int fd, bool flagsSet = false);
  // Starts a non-blocking connect; ops->connected reports how it ended,
  // unless close() comes first (then no callback). Returns 0 or a negative
  // errno (then no callback).
  int connect(const struct sockaddr* addr);
  // 0 or a negative errno. Reads are reported until readStop(), EOF or an
  // error.
  int readStart();
  void readStop();
  bool reading() const { return flags_ & kReading; }
  // Returns 0 (the callback follows later, whatever happens) or a negative
  // errno (no callback).
  int write(SocketWrite* req, SocketWriteCb cb);
  // Bytes of queued writes not yet taken by the kernel (a walk of the queue:
  // for tests and diagnostics).
  size_t writeQueueSize() const;
  // Some queued write is not fully taken by the kernel yet (libuv's
  // write_queue_size > 0; a write taken whole leaves the queue at once).
  bool writesPending() const { return writeHead_ != nullptr; }
  // After the queued writes: the FIN (shutdown(SHUT_WR)). 0 or a negative
  // errno (then no callback): UV_ENOTCONN while connecting, closing, or
  // after an earlier shutdown().
  int shutdown();
  void close();
  bool closing() const { return flags_ & kClosing; }
  int fd() const { return fd_; }
  void setNoDelay();
  // getpeername; false when unknown.
  bool peerName(struct sockaddr_storage* ss) const;

  // --- Poller ---
  void onEvents(uint32_t events);
  void runDeferred();  // the shutdown and close callbacks

 private:
  friend class Poller;
  enum : uint8_t {
    kReading = 1,
    kConnecting = 2,
    kShutdownWanted = 4,  // shutdown() called, not done yet
    kShutdownDone = 8,    // callback pending with shutdownStatus_
    kClosing = 16,
    kQueued = 32,  // this socket is in the poller's deferred list
    kRequeue = 64,  // closed while queued: run again after the cancelled writes
    kFailed = 128,  // epoll refused the socket: reported from runDeferred
  };
  void updateInterest();
  void doRead();
  // Writes queued requests; false when the socket failed (requests finished).
  void doWrites();
  void finishWrite(SocketWrite* req, int status);
  void maybeShutdown();
  void queueSelf();
  // epoll refused the socket (updateInterest): fails what waits on it.
  void reportFailure(int err);

  Poller* poller_ = nullptr;
  const SocketOps* ops_ = nullptr;
  void* data_ = nullptr;
  SocketWrite* writeHead_ = nullptr;
  int fd_ = -1;
  uint8_t flags_ = 0;
  uint8_t interest_ = 0;  // events registered (kIn | kOut), 0 when not in the set
  // The shutdown's status; with kFailed and no shutdown callback pending,
  // the errno epoll refused the socket with.
  int16_t shutdownStatus_ = 0;
#if WSENGINE_SOCKET_UV_POLL
  uv_poll_t* poll_ = nullptr;  // heap, freed by its close callback
#endif
};

// The loop's epoll set (or, with WSENGINE_SOCKET_UV_POLL, the per-socket
// poll handles' dispatcher) and its deferred callbacks. One per IoLoop, made
// at first use; loop thread only.
class Poller {
 public:
  // embedded: the loop is an embedder's (its handles are unref'ed).
  Poller(uv_loop_t* loop, bool embedded);
  // The loop is going away (an embedder's loop): closes its handles; the
  // callbacks still deferred run in their close callbacks, then the Poller
  // frees itself.
  void close();
  uv_loop_t* loop() const { return loop_; }
  bool embedded() const { return embedded_; }

  // --- Socket ---
  // Registers, changes or removes (events 0) the socket's interest; false
  // with errno set when epoll refuses.
  bool watch(Socket* s, uint8_t events);
  void defer(Deferred* d);

  static constexpr uint8_t kIn = 1;
  static constexpr uint8_t kOut = 2;
  static constexpr uint32_t kErrorEvents = 4;  // for Socket::onEvents: error or hang-up

 private:
  ~Poller();
  static void onPoll(uv_poll_t* h, int status, int events);
#if WSENGINE_SOCKET_UV_POLL
  static void onSocketPoll(uv_poll_t* h, int status, int events);
#endif
  static void onIdle(uv_idle_t* h);
  void runDeferred();

  uv_loop_t* loop_;
  bool embedded_;
  bool closing_ = false;
  int epfd_ = -1;
  uv_poll_t* poll_ = nullptr;
  uv_idle_t* idle_ = nullptr;
  int openHandles_ = 0;
  Deferred* head_ = nullptr;
  Deferred* tail_ = nullptr;
};

}  // namespace wsengine
