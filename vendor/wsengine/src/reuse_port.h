// reusePort (ServerOptions::reusePort): several listening sockets, in one
// process or several, bound to the same address and port, the kernel
// spreading new connections over them. Linux's SO_REUSEPORT (3.9+) does that
// balancing; the BSDs' and macOS's option of the same name only lets the last
// socket take every connection, so there the option is refused instead of
// silently doing something else.
#pragma once

#include <uv.h>

#include <string>

namespace wsengine {

// Whether this build can honour reusePort.
bool reusePortSupported();

// Gives `tcp` (initialised, not yet bound) a socket of `family` with
// SO_REUSEPORT set, ready for uv_tcp_bind. False with a readable error when
// the platform or the kernel refuses.
bool openReusePortSocket(uv_tcp_t* tcp, int family, std::string& error);

}  // namespace wsengine
