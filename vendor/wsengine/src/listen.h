// A server's listening socket and its accepts, without a libuv stream
// handle: the server polls the fd (one uv_poll_t per listener) and accepts
// itself, so an accepted socket goes straight to a connection's Socket
// (socket.h), with its peer's address from accept().
//
// reusePort (ServerOptions::reusePort): several listening sockets, in one
// process or several, bound to the same address and port, the kernel
// spreading new connections over them. Linux's SO_REUSEPORT (3.9+) does that
// balancing; the BSDs' and macOS's option of the same name only lets the last
// socket take every connection, so there the option is refused instead of
// silently doing something else.
#pragma once

#include <sys/socket.h>

#include <string>

namespace wsengine {

// Whether this build can honour reusePort.
bool reusePortSupported();

// A non-blocking, close-on-exec socket bound to `addr` and listening (as
// libuv's uv_tcp_bind + uv_listen: SO_REUSEADDR, IPv6 sockets dual-stack),
// with SO_REUSEPORT when asked. Returns the fd, or -1 with `error` set
// (reusePort's own refusals say "reusePort: ..."; a bind or listen failure
// gives the negative errno in *code for the caller's message).
int listenSocket(const struct sockaddr_storage& addr, bool reusePort, int backlog,
                 std::string& error, int* code);

// accept() of one pending connection, non-blocking and close-on-exec. >= 0:
// the fd (*peer its address). -1: nothing to accept now. Connections that
// failed before their accept (aborted, or a network error accept() passes
// on) are skipped. Out of file descriptors (EMFILE, ENFILE),
// the pending connections are accepted and closed at once with a descriptor
// kept in reserve for this (as libuv does), so that a full process refuses
// them instead of polling the listener in a busy loop. *backOff: -1 with the
// listener still readable (out of descriptors with none to refuse them with,
// out of memory or buffers, or an error of the listener itself): the caller
// stops polling it for a while, as polling it at once would spin.
int acceptSocket(int listenFd, struct sockaddr_storage* peer, bool* backOff);

// Opens the reserve descriptor unless it is open (listenSocket does; a
// listener resting after a backOff does before it polls again, as the
// reserve may have been lost while descriptors ran out).
void openReserve();

}  // namespace wsengine
