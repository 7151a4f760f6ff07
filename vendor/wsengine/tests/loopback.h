// A connected loopback TCP pair for tests that drive one end themselves.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

// out: the accepted end; in: the connecting end (both blocking). False
// when the pair could not be made.
inline bool socketPair(int* out, int* in) {
  int l = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (l < 0 || ::bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(l, 1) != 0 ||
      ::getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    return false;
  *in = ::socket(AF_INET, SOCK_STREAM, 0);
  bool ok = ::connect(*in, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  *out = ok ? ::accept(l, nullptr, nullptr) : -1;
  ::close(l);
  return ok && *out >= 0;
}
