#include "reuse_port.h"

#include <cerrno>
#include <cstring>

#ifndef _WIN32
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace wsengine {

#if defined(__linux__) && defined(SO_REUSEPORT)

bool reusePortSupported() { return true; }

bool openReusePortSocket(uv_tcp_t* tcp, int family, std::string& error) {
  int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::string("reusePort: cannot create a socket: ") + std::strerror(errno);
    return false;
  }
  int on = 1;
  if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
    // ENOPROTOOPT: a kernel older than 3.9.
    error = std::string("reusePort: the kernel refuses SO_REUSEPORT: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  // libuv binds this socket (uv_tcp_bind uses the one the handle has and
  // sets SO_REUSEADDR itself) and closes it with the handle.
  int rc = uv_tcp_open(tcp, fd);
  if (rc != 0) {
    error = std::string("reusePort: ") + uv_strerror(rc);
    ::close(fd);
    return false;
  }
  return true;
}

#else

bool reusePortSupported() { return false; }

bool openReusePortSocket(uv_tcp_t*, int, std::string& error) {
  error =
      "reusePort is not supported on this platform: it needs Linux SO_REUSEPORT, which spreads "
      "connections over the sockets sharing a port";
  return false;
}

#endif

}  // namespace wsengine
