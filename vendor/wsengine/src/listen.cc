#include "listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <cstring>
#include <mutex>

namespace wsengine {

namespace {

int socketOf(int family) {
#if defined(__linux__)
  return ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
#else
  int fd = ::socket(family, SOCK_STREAM, 0);
  if (fd >= 0 && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
                  fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)) {
    ::close(fd);
    return -1;
  }
  return fd;
#endif
}

int acceptOne(int listenFd, struct sockaddr_storage* peer) {
  socklen_t len = sizeof *peer;
#if defined(__linux__)
  return ::accept4(listenFd, reinterpret_cast<sockaddr*>(peer), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
#else
  int fd = ::accept(listenFd, reinterpret_cast<sockaddr*>(peer), &len);
  if (fd >= 0 && (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
                  fcntl(fd, F_SETFD, FD_CLOEXEC) != 0)) {
    int e = errno;
    ::close(fd);
    errno = e;
    return -1;
  }
  return fd;
#endif
}

// The descriptor kept for accepting (and closing) connections when the
// process has none left: one per process, opened with the first listener.
std::mutex gReserveMu;
int gReserveFd = -1;

int reserveOpen() { return ::open("/", O_RDONLY | O_CLOEXEC); }

// An error accept() reports for one pending connection, not the listener
// (Linux passes the new socket's pending network errors on, and a firewall
// may refuse one with EPERM; accept(2) says to retry as for EAGAIN).
bool connectionError(int e) {
  switch (e) {
    case EINTR:
    case ECONNABORTED:
    case EPERM:
    case EPROTO:
    case ENOPROTOOPT:
    case EOPNOTSUPP:
    case ENETDOWN:
    case ENETUNREACH:
    case EHOSTUNREACH:
#ifdef EHOSTDOWN
    case EHOSTDOWN:
#endif
#ifdef ENONET
    case ENONET:
#endif
      return true;
    default:
      return false;
  }
}

// Out of descriptors: frees the reserve, accepts and closes what is pending
// (bounded), and takes the reserve back. False when nothing could be
// refused while connections wait: even the reserve's number did not give
// accept() a descriptor (another thread took it first, or it lies above a
// lowered limit), and the reserve may then stay lost until a later call.
bool refusePending(int listenFd) {
  std::lock_guard<std::mutex> lock(gReserveMu);
  if (gReserveFd < 0) {
    // Lost earlier. Opened again now, a descriptor came free since: keep it
    // as the reserve, and the next readiness accepts again.
    gReserveFd = reserveOpen();
    return gReserveFd >= 0;
  }
  ::close(gReserveFd);
  gReserveFd = -1;
  int refused = 0;
  bool waiting = false;  // connections left that could not be accepted
  for (int i = 0; i < 1024; ++i) {
    struct sockaddr_storage peer;
    int fd = acceptOne(listenFd, &peer);
    if (fd < 0) {
      if (connectionError(errno)) continue;
      waiting = errno != EAGAIN && errno != EWOULDBLOCK;
      break;
    }
    ::close(fd);
    ++refused;
  }
  gReserveFd = reserveOpen();
  return refused > 0 || !waiting;
}

}  // namespace

void openReserve() {
  std::lock_guard<std::mutex> lock(gReserveMu);
  if (gReserveFd < 0) gReserveFd = reserveOpen();
}

#if defined(__linux__) && defined(SO_REUSEPORT)
bool reusePortSupported() { return true; }
#else
bool reusePortSupported() { return false; }
#endif

int listenSocket(const struct sockaddr_storage& addr, bool reusePort, int backlog,
                 std::string& error, int* code) {
  *code = 0;
  if (reusePort && !reusePortSupported()) {
    error =
        "reusePort is not supported on this platform: it needs Linux SO_REUSEPORT, which spreads "
        "connections over the sockets sharing a port";
    return -1;
  }
  openReserve();
  int fd = socketOf(addr.ss_family);
  if (fd < 0) {
    *code = -errno;
    error = std::string("cannot create a socket: ") + uv_strerror(*code);
    return -1;
  }
  int on = 1;
#if defined(SO_REUSEPORT)
  if (reusePort && ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    // ENOPROTOOPT: a kernel older than 3.9.
    error = std::string("reusePort: the kernel refuses SO_REUSEPORT: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
#endif
  // As uv_tcp_bind: a restarted server binds its port while old connections
  // linger in TIME_WAIT, and an IPv6 socket also takes IPv4 peers.
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
  socklen_t len = sizeof(sockaddr_in);
  if (addr.ss_family == AF_INET6) {
    int off = 0;
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    len = sizeof(sockaddr_in6);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), len) != 0 || ::listen(fd, backlog) != 0) {
    *code = -errno;
    error = uv_strerror(*code);
    ::close(fd);
    return -1;
  }
  return fd;
}

int acceptSocket(int listenFd, struct sockaddr_storage* peer, bool* backOff) {
  *backOff = false;
  // Bounded: each connection error takes one pending connection away, and
  // a long run of them waits for the next readiness.
  for (int i = 0; i < 64; ++i) {
    int fd = acceptOne(listenFd, peer);
    if (fd >= 0) return fd;
    if (connectionError(errno)) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return -1;
    // The listener stays readable while the rest last (out of descriptors
    // with nothing to refuse them with; ENOBUFS, ENOMEM; the listener's own
    // errors): polling it again at once would spin its loop.
    if ((errno == EMFILE || errno == ENFILE) && refusePending(listenFd)) return -1;
    *backOff = true;
    return -1;
  }
  return -1;
}

}  // namespace wsengine
