#include "socket.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstring>

#if !WSENGINE_SOCKET_UV_POLL
#include <sys/epoll.h>
#endif

namespace wsengine {

namespace {

// As many reads per readiness as libuv's streams do: one socket that always
// has data must not keep its loop from the others.
constexpr int kReadsPerEvent = 32;

// Buffers per sendmsg, as libuv's writev (IOV_MAX is 1024 on Linux): a
// queued write of many frames goes out in as few calls as the kernel takes.
#if defined(IOV_MAX) && IOV_MAX < 1024
constexpr size_t kMaxIov = IOV_MAX;
#else
constexpr size_t kMaxIov = 1024;
#endif

int setNonBlockingCloexec(int fd) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0 || (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)) return -errno;
  int fd_fl = fcntl(fd, F_GETFD);
  if (fd_fl < 0 || (!(fd_fl & FD_CLOEXEC) && fcntl(fd, F_SETFD, fd_fl | FD_CLOEXEC) < 0))
    return -errno;
  return 0;
}

}  // namespace

// ------------------------------------------------------------------ Socket

#if !WSENGINE_SOCKET_UV_POLL && UINTPTR_MAX == 0xFFFFFFFFFFFFFFFFu
// Every connection holds one (bench/PROFILE.md, seventh pass): keep it small.
static_assert(sizeof(Socket) == 48, "Socket grew: per-connection memory");
#endif

int Socket::open(int fd, bool flagsSet) {
  int rc = flagsSet ? 0 : setNonBlockingCloexec(fd);
  if (rc != 0) return rc;
  fd_ = fd;
  return 0;
}

int Socket::connect(const struct sockaddr* addr) {
  int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  socklen_t len = addr->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
  int rc;
  do {
    rc = ::connect(fd, addr, len);
  } while (rc < 0 && errno == EINTR);
  if (rc < 0 && errno != EINPROGRESS) {
    int err = -errno;
    ::close(fd);
    return err;
  }
  fd_ = fd;
  // Done at once (loopback can) or not: the result comes from the poller
  // either way, as uv_tcp_connect's callback never runs inside the call.
  flags_ |= kConnecting;
  updateInterest();
  return 0;
}

int Socket::readStart() {
  if (fd_ < 0 || (flags_ & kClosing)) return UV_EINVAL;
  flags_ |= kReading;
  updateInterest();
  return 0;
}

void Socket::readStop() {
  if (!(flags_ & kReading)) return;
  flags_ &= static_cast<uint8_t>(~kReading);
  updateInterest();
}

int Socket::write(SocketWrite* req, SocketWriteCb cb) {
  if (fd_ < 0 || (flags_ & kClosing)) return UV_EBADF;
  if (flags_ & (kShutdownWanted | kShutdownDone)) return UV_EPIPE;
  req->cb = cb;
  req->index = 0;
  req->status = 0;
  req->nextQueued = nullptr;
  req->link = 1;  // a write
  // Appended by a walk: a queue holds the write in progress and the few
  // behind it (Outbox waits while the socket is full), and a tail pointer
  // would be 8 more bytes in every socket.
  bool first = writeHead_ == nullptr;
  if (first) {
    writeHead_ = req;
  } else {
    SocketWrite* last = writeHead_;
    while (last->nextQueued) last = last->nextQueued;
    last->nextQueued = req;
  }
  if (first && !(flags_ & kConnecting)) {
    doWrites();
  } else {
    updateInterest();
  }
  return 0;
}

size_t Socket::writeQueueSize() const {
  size_t n = 0;
  for (const SocketWrite* w = writeHead_; w; w = w->nextQueued)
    for (size_t i = w->index; i < w->bufs.size(); ++i) n += w->bufs[i].len;
  return n;
}

int Socket::shutdown() {
  // While connecting too, as libuv (the stream is not writable yet).
  if (fd_ < 0 || (flags_ & (kClosing | kConnecting | kShutdownWanted | kShutdownDone)))
    return UV_ENOTCONN;
  flags_ |= kShutdownWanted;
  maybeShutdown();
  return 0;
}

void Socket::close() {
  if (flags_ & kClosing) return;
  flags_ = static_cast<uint8_t>((flags_ | kClosing) & ~(kReading | kConnecting));
  if (fd_ >= 0) {
    // Out of the set before the fd goes: a duplicate of the fd elsewhere
    // would keep the registration (and its events) alive.
    if (interest_) poller_->watch(this, 0);
    ::close(fd_);
    fd_ = -1;
  }
#if WSENGINE_SOCKET_UV_POLL
  if (poll_) {
    uv_close(reinterpret_cast<uv_handle_t*>(poll_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    poll_ = nullptr;
  }
#endif
  while (SocketWrite* w = writeHead_) {
    writeHead_ = w->nextQueued;
    finishWrite(w, UV_ECANCELED);
  }
  if (flags_ & kShutdownWanted) {
    flags_ = static_cast<uint8_t>((flags_ & ~kShutdownWanted) | kShutdownDone);
    shutdownStatus_ = UV_ECANCELED;
  }
  // The close callback comes after the cancelled writes' callbacks.
  if (flags_ & kQueued) flags_ |= kRequeue;
  else queueSelf();
}

void Socket::setNoDelay() {
  int one = 1;
  if (fd_ >= 0) setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

bool Socket::peerName(struct sockaddr_storage* ss) const {
  if (fd_ < 0) return false;
  socklen_t len = sizeof *ss;
  return getpeername(fd_, reinterpret_cast<sockaddr*>(ss), &len) == 0;
}

void Socket::updateInterest() {
  if (flags_ & kClosing) return;
  uint8_t want = 0;
  if (flags_ & kReading) want |= Poller::kIn;
  if ((flags_ & kConnecting) || writeHead_) want |= Poller::kOut;
  if (want == interest_) return;
  if (!poller_->watch(this, want)) {
    // epoll refused (ENOMEM, ENOSPC: the user's epoll watch limit). The
    // socket cannot be served: what waits on it fails, later on the loop
    // (this runs inside connect(), readStart() and write(), which never
    // call back).
    if (flags_ & kFailed) return;
    flags_ |= kFailed;
    if (!(flags_ & kShutdownDone)) shutdownStatus_ = static_cast<int16_t>(-errno);
    queueSelf();
  }
}

void Socket::reportFailure(int err) {
  // The pending connect, else the write in progress (nothing will write the
  // queue: the rest waits for close, as after a failed write) and the reads.
  if (flags_ & kConnecting) {
    flags_ &= static_cast<uint8_t>(~kConnecting);
    ops_->connected(this, err);
    return;
  }
  if (SocketWrite* w = writeHead_) {
    writeHead_ = w->nextQueued;
    finishWrite(w, err);
  }
  if (flags_ & kReading) {
    flags_ &= static_cast<uint8_t>(~kReading);
    uv_buf_t none = uv_buf_init(nullptr, 0);
    ops_->read(this, err, &none);
  }
}

void Socket::onEvents(uint32_t events) {
  if (flags_ & kClosing) return;  // closed earlier in this batch
  const bool err = events & Poller::kErrorEvents;
  if (flags_ & kConnecting) {
    if (!(events & Poller::kOut) && !err) return;
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0) soerr = errno;
    if (soerr == EINPROGRESS) return;
    flags_ &= static_cast<uint8_t>(~kConnecting);
    updateInterest();
    ops_->connected(this, -soerr);
    return;  // the next readiness reports the rest
  }
  if ((flags_ & kReading) && ((events & Poller::kIn) || err)) doRead();
  if (flags_ & kClosing) return;
  if (writeHead_ && ((events & Poller::kOut) || err)) doWrites();
}

void Socket::doRead() {
  for (int i = 0; i < kReadsPerEvent; ++i) {
    if ((flags_ & (kReading | kClosing)) != kReading) return;
    uv_buf_t buf = uv_buf_init(nullptr, 0);
    ops_->alloc(this, &buf);
    if (buf.base == nullptr || buf.len == 0) {
      readStop();
      ops_->read(this, UV_ENOBUFS, &buf);
      return;
    }
    ssize_t n;
    do {
      n = ::read(fd_, buf.base, buf.len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ops_->read(this, 0, &buf);  // the buffer is not used (as libuv does)
        return;
      }
      int e = -errno;
      readStop();
      ops_->read(this, e, &buf);
      return;
    }
    if (n == 0) {
      readStop();
      ops_->read(this, UV_EOF, &buf);
      return;
    }
    ops_->read(this, n, &buf);
    if (static_cast<size_t>(n) < buf.len) return;  // drained for now
  }
}

void Socket::doWrites() {
  struct iovec iov[kMaxIov];
  while (SocketWrite* w = writeHead_) {
    size_t count = 0;
    for (size_t i = w->index; i < w->bufs.size() && count < kMaxIov; ++i) {
      iov[count].iov_base = w->bufs[i].base;
      iov[count].iov_len = w->bufs[i].len;
      ++count;
    }
    ssize_t n = 0;
    if (count > 0) {
      struct msghdr msg;
      std::memset(&msg, 0, sizeof msg);
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      do {
        n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
      } while (n < 0 && errno == EINTR);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        // As libuv: this write fails; the queue behind it waits for close.
        int e = -errno;
        writeHead_ = w->nextQueued;
        finishWrite(w, e);
        break;
      }
    }
    size_t left = static_cast<size_t>(n);
    while (w->index < w->bufs.size()) {
      uv_buf_t& b = w->bufs[w->index];
      if (left < b.len) {
        b.base += left;
        b.len -= left;
        left = 0;
        break;
      }
      left -= b.len;
      ++w->index;
    }
    if (w->index < w->bufs.size()) {
      if (static_cast<size_t>(n) == 0) break;
      continue;  // more iovecs than one call took, or a partial write: try again
    }
    writeHead_ = w->nextQueued;
    finishWrite(w, 0);
  }
  if (!writeHead_) maybeShutdown();
  updateInterest();
}

void Socket::finishWrite(SocketWrite* req, int status) {
  req->status = status;
  req->nextQueued = nullptr;
  poller_->defer(req);
}

void Socket::maybeShutdown() {
  if (!(flags_ & kShutdownWanted) || writeHead_ || (flags_ & (kConnecting | kClosing))) return;
  int rc = ::shutdown(fd_, SHUT_WR);
  shutdownStatus_ = static_cast<int16_t>(rc == 0 ? 0 : -errno);
  flags_ = static_cast<uint8_t>((flags_ & ~kShutdownWanted) | kShutdownDone);
  queueSelf();
}

void Socket::queueSelf() {
  if (flags_ & kQueued) return;
  flags_ |= kQueued;
  link = 0;  // not a write
  poller_->defer(this);
}

void Socket::runDeferred() {
  flags_ &= static_cast<uint8_t>(~kQueued);
  // A refusal that came while a shutdown's status held the field has no
  // errno of its own left: ENOMEM stands for it.
  int failure = (flags_ & kShutdownDone) ? UV_ENOMEM : shutdownStatus_;
  if (flags_ & kShutdownDone) {
    flags_ &= static_cast<uint8_t>(~kShutdownDone);
    ops_->shutdown(this, shutdownStatus_);
  }
  if ((flags_ & (kFailed | kClosing)) == kFailed) {
    flags_ &= static_cast<uint8_t>(~kFailed);
    reportFailure(failure);
  }
  if (!(flags_ & kClosing)) return;
  if (flags_ & kRequeue) {
    flags_ &= static_cast<uint8_t>(~kRequeue);
    queueSelf();
    return;
  }
  if (flags_ & kQueued) return;  // closed by the shutdown callback: queued again
  ops_->closed(this);  // the last use of this Socket
}

// ------------------------------------------------------------------ Poller

Poller::Poller(uv_loop_t* loop, bool embedded) : loop_(loop), embedded_(embedded) {
  idle_ = new uv_idle_t;
  uv_idle_init(loop_, idle_);
  idle_->data = this;
  if (embedded_) uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
  ++openHandles_;
#if !WSENGINE_SOCKET_UV_POLL
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epfd_ >= 0) {
    poll_ = new uv_poll_t;
    uv_poll_init(loop_, poll_, epfd_);
    poll_->data = this;
    if (embedded_) uv_unref(reinterpret_cast<uv_handle_t*>(poll_));
    ++openHandles_;
    uv_poll_start(poll_, UV_READABLE, &Poller::onPoll);
  }
#endif
}

Poller::~Poller() {
  if (epfd_ >= 0) ::close(epfd_);
}

void Poller::close() {
  if (closing_) return;
  closing_ = true;
  // Both handles close now, so the one turn of the loop an embedder gives
  // (wsengine.h, embedLoop) completes them; the callbacks still deferred
  // (sockets closed just before) run in the idle handle's close callback.
  auto onClosed = [](uv_handle_t* h) {
    auto* self = static_cast<Poller*>(h->data);
    if (h->type == UV_IDLE) {
      while (self->head_) self->runDeferred();
      delete reinterpret_cast<uv_idle_t*>(h);
    } else {
      delete reinterpret_cast<uv_poll_t*>(h);
    }
    if (--self->openHandles_ == 0) delete self;
  };
  if (idle_) {
    uv_idle_stop(idle_);
    uv_close(reinterpret_cast<uv_handle_t*>(idle_), onClosed);
    idle_ = nullptr;
  }
  if (poll_) {
    uv_poll_stop(poll_);
    uv_close(reinterpret_cast<uv_handle_t*>(poll_), onClosed);
    poll_ = nullptr;
  }
}

void Poller::defer(Deferred* d) {
  d->link &= 1;  // the end of the list, still of its kind
  if (tail_) tail_->link = (tail_->link & 1) | reinterpret_cast<uintptr_t>(d);
  else head_ = d;
  tail_ = d;
  if (idle_ && !uv_is_active(reinterpret_cast<uv_handle_t*>(idle_)))
    uv_idle_start(idle_, &Poller::onIdle);
}

void Poller::onIdle(uv_idle_t* h) {
  auto* self = static_cast<Poller*>(h->data);
  self->runDeferred();
  if (!self->head_) uv_idle_stop(h);
}

void Poller::runDeferred() {
  // What is deferred while these run waits for the next turn of the loop
  // (libuv's pending queue behaves the same).
  Deferred* d = head_;
  head_ = tail_ = nullptr;
  while (d) {
    Deferred* next = d->next();
    if (d->isWrite()) {
      auto* w = static_cast<SocketWrite*>(d);
      w->cb(w, w->status);  // may free w
    } else {
      static_cast<Socket*>(d)->runDeferred();  // may free the socket
    }
    d = next;
  }
}

#if !WSENGINE_SOCKET_UV_POLL

bool Poller::watch(Socket* s, uint8_t events) {
  if (epfd_ < 0) {
    errno = EBADF;
    return false;
  }
  struct epoll_event ev;
  std::memset(&ev, 0, sizeof ev);
  ev.events = (events & kIn ? EPOLLIN : 0u) | (events & kOut ? EPOLLOUT : 0u);
  ev.data.ptr = s;
  int op = events == 0 ? EPOLL_CTL_DEL : s->interest_ == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
  if (epoll_ctl(epfd_, op, s->fd_, &ev) != 0) return false;
  s->interest_ = events;
  return true;
}

void Poller::onPoll(uv_poll_t* h, int status, int) {
  auto* self = static_cast<Poller*>(h->data);
  if (status < 0) return;
  struct epoll_event evs[128];
  int n;
  do {
    n = epoll_wait(self->epfd_, evs, 128, 0);
  } while (n < 0 && errno == EINTR);
  // A socket closed by an earlier one's callback in this batch is still in
  // memory (its close callback is deferred) and ignores its events.
  for (int i = 0; i < n; ++i) {
    uint32_t e = evs[i].events;
    uint32_t mapped = (e & EPOLLIN ? kIn : 0u) | (e & EPOLLOUT ? kOut : 0u) |
                      (e & (EPOLLERR | EPOLLHUP) ? kErrorEvents : 0u);
    static_cast<Socket*>(evs[i].data.ptr)->onEvents(mapped);
  }
}

#else  // WSENGINE_SOCKET_UV_POLL: one uv_poll_t per socket

void Poller::onSocketPoll(uv_poll_t* h, int status, int events) {
  auto* s = static_cast<Socket*>(h->data);
  // An error stops the handle (libuv): the next wanted events start it again.
  if (status < 0) s->interest_ = 0;
  uint32_t mapped = (events & UV_READABLE ? Poller::kIn : 0u) |
                    (events & UV_WRITABLE ? Poller::kOut : 0u) |
                    (events & UV_DISCONNECT ? Poller::kIn : 0u) |
                    (status < 0 ? Poller::kErrorEvents : 0u);
  s->onEvents(mapped);
  // onEvents restarts the handle only when the wanted events changed (a
  // connect still in progress, a read that found nothing): do it here. The
  // Socket is still in memory if onEvents closed it (its close callback is
  // deferred).
  if (status < 0 && !s->closing()) s->updateInterest();
}

bool Poller::watch(Socket* s, uint8_t events) {
  if (!s->poll_) {
    if (events == 0) return true;
    s->poll_ = new uv_poll_t;
    int rc = uv_poll_init(loop_, s->poll_, s->fd_);
    if (rc != 0) {  // e.g. UV_EPERM: not a file epoll takes
      delete s->poll_;
      s->poll_ = nullptr;
      errno = -rc;
      return false;
    }
    s->poll_->data = s;
    if (embedded_) uv_unref(reinterpret_cast<uv_handle_t*>(s->poll_));
  }
  if (events == 0) {
    uv_poll_stop(s->poll_);
  } else {
    int mask = (events & kIn ? UV_READABLE : 0) | (events & kOut ? UV_WRITABLE : 0);
    int rc = uv_poll_start(s->poll_, mask, &onSocketPoll);
    if (rc != 0) {
      errno = -rc;
      return false;
    }
  }
  s->interest_ = events;
  return true;
}

void Poller::onPoll(uv_poll_t*, int, int) {}

#endif

}  // namespace wsengine
