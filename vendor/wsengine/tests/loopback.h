// A connected loopback TCP pair for tests that drive one end themselves.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

// A listening socket on 127.0.0.1 and a free port (in *a); -1 on failure.
inline int listenLoopback(sockaddr_in* a) {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  std::memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof *a;
  if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(a), sizeof *a) != 0 || ::listen(l, 4) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(a), &len) != 0) {
    if (l >= 0) ::close(l);
    return -1;
  }
  return l;
}

// out: the accepted end; in: the connecting end (both blocking). False
// when the pair could not be made.
inline bool socketPair(int* out, int* in) {
  sockaddr_in a;
  int l = listenLoopback(&a);
  if (l < 0) return false;
  *in = ::socket(AF_INET, SOCK_STREAM, 0);
  bool ok = ::connect(*in, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  *out = ok ? ::accept(l, nullptr, nullptr) : -1;
  ::close(l);
  return ok && *out >= 0;
}
