// A raw TCP peer for engine tests: a blocking loopback socket that does the
// client side of the opening handshake by hand and reads exact byte counts
// with a deadline, so a test can see precisely what the engine wrote; and
// frames encoded by hand, for it or for a Receiver fed without a socket.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>

namespace rawpeer {

using Clock = std::chrono::steady_clock;

inline int msLeft(Clock::time_point deadline) {
  auto d = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return d > 0 ? static_cast<int>(d) : 0;
}

class Peer {
 public:
  Peer() = default;
  ~Peer() { closeNow(); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;

  bool connectTo(int port) { return open() && connectOpened(port); }
  // The two steps of connectTo: the socket, then the connection.
  bool open() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    return fd_ >= 0;
  }
  bool connectOpened(int port) {
    sockaddr_in a;
    std::memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }

  // Sends a valid upgrade request and reads the head of the answer.
  bool handshake(std::string* head = nullptr) {
    static const char kReq[] =
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    if (!sendAll(kReq, sizeof kReq - 1)) return false;
    std::string h;
    auto deadline = Clock::now() + std::chrono::seconds(5);
    while (h.find("\r\n\r\n") == std::string::npos) {
      char c;
      if (!readExact(&c, 1, deadline)) return false;
      h.push_back(c);
    }
    if (head) *head = h;
    return h.compare(0, 12, "HTTP/1.1 101") == 0;
  }

  bool sendAll(const void* p, size_t n) {
    const char* c = static_cast<const char*>(p);
    while (n > 0) {
      ssize_t w = ::send(fd_, c, n, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) return false;
      c += w;
      n -= static_cast<size_t>(w);
    }
    return true;
  }

  // Reads exactly n bytes into p (or discards them when p is null) before
  // the deadline.
  bool readExact(void* p, size_t n, Clock::time_point deadline) {
    char scratch[1 << 16];
    char* out = static_cast<char*>(p);
    while (n > 0) {
      pollfd pfd{fd_, POLLIN, 0};
      int pr = ::poll(&pfd, 1, msLeft(deadline));
      if (pr < 0 && errno == EINTR) continue;
      if (pr <= 0) return false;
      size_t want = out ? n : std::min(n, sizeof scratch);
      ssize_t r = ::recv(fd_, out ? out : scratch, want, 0);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) return false;
      if (out) out += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }

  // Reads one unmasked frame header; the payload is left to the caller.
  bool readHeader(uint8_t* opcode, bool* fin, uint64_t* len, Clock::time_point deadline) {
    uint8_t h[2];
    if (!readExact(h, 2, deadline)) return false;
    *fin = (h[0] & 0x80) != 0;
    *opcode = h[0] & 0x0F;
    uint64_t l = h[1] & 0x7F;
    if (l == 126) {
      uint8_t e[2];
      if (!readExact(e, 2, deadline)) return false;
      l = (uint64_t(e[0]) << 8) | e[1];
    } else if (l == 127) {
      uint8_t e[8];
      if (!readExact(e, 8, deadline)) return false;
      l = 0;
      for (int i = 0; i < 8; ++i) l = (l << 8) | e[i];
    }
    *len = l;
    return true;
  }

  void closeNow() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// One frame as it goes on the wire (RFC 6455 §5.2): masked with `key` when
// it is not null (client to server), else unmasked (server to client).
inline std::string encodeFrame(uint8_t opcode, const std::string& payload, const uint8_t* key,
                               bool fin = true, bool rsv1 = false) {
  std::string f;
  f.push_back(static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode));
  const uint8_t maskBit = key ? 0x80 : 0;
  uint64_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(maskBit | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(maskBit | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xFF));
  } else {
    f.push_back(static_cast<char>(maskBit | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  }
  if (!key) return f + payload;
  f.append(reinterpret_cast<const char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i)
    f.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return f;
}

// A masked client frame (mask key 0x01020304).
inline std::string clientFrame(uint8_t opcode, const std::string& payload, bool fin = true,
                               bool rsv1 = false) {
  static const uint8_t kKey[4] = {1, 2, 3, 4};
  return encodeFrame(opcode, payload, kKey, fin, rsv1);
}

}  // namespace rawpeer
