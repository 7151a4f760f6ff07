// Socket and Poller (socket.h) on an engine IO loop, against plain blocking
// sockets on the test's thread. Checked: a write the peer does not read
// waits in the queue and its callback comes later, never inside write();
// the bytes arrive whole and in order; close() cancels queued writes
// (UV_ECANCELED, in order) and its own callback comes last; shutdown()
// sends the FIN only after the queued bytes; reads, readStop/readStart and
// EOF; connect to a listener and to a closed port; 200 sockets on one
// poller each get their own bytes; a socket closed by another's callback in
// the same batch of events gets no read callback.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "check.h"
#include "io_loop.h"
#include "loopback.h"
#include "socket.h"

using namespace wsengine;
using Clock = std::chrono::steady_clock;

namespace {

// What one socket saw, recorded on the loop thread and read by the test
// after runSync (which orders the two).
struct Seen {
  std::string data;
  int eof = 0;
  int readError = 0;
  int connected = 1;  // 1: not yet
  int shutdownStatus = 1;
  bool closed = false;
  std::vector<std::string> order;  // callbacks as they came
  Socket* closeOnRead = nullptr;   // closes this other socket from its read callback
  char buf[65536];
};

const SocketOps kOps = {
    [](Socket* s, uv_buf_t* b) {
      auto* seen = static_cast<Seen*>(s->data());
      b->base = seen->buf;
      b->len = sizeof seen->buf;
    },
    [](Socket* s, ssize_t n, const uv_buf_t* b) {
      auto* seen = static_cast<Seen*>(s->data());
      if (n > 0) {
        seen->data.append(b->base, static_cast<size_t>(n));
        seen->order.push_back("read");
        if (seen->closeOnRead) {
          seen->closeOnRead->close();
          seen->closeOnRead = nullptr;
        }
      } else if (n == UV_EOF) {
        ++seen->eof;
        seen->order.push_back("eof");
      } else if (n < 0) {
        seen->readError = static_cast<int>(n);
      }
    },
    [](Socket* s, int status) { static_cast<Seen*>(s->data())->connected = status; },
    [](Socket* s, int status) {
      auto* seen = static_cast<Seen*>(s->data());
      seen->shutdownStatus = status;
      seen->order.push_back("shutdown");
    },
    [](Socket* s) {
      auto* seen = static_cast<Seen*>(s->data());
      seen->closed = true;
      seen->order.push_back("closed");
    },
};

struct Write : SocketWrite {
  std::string bytes;
  std::vector<std::string>* order = nullptr;
  std::string name;
  std::atomic<int> status{1};
  // The bytes, as one buffer or cut in two at `cut`.
  void set(std::string b, size_t cut = 0) {
    bytes = std::move(b);
    bufs.clear();
    if (cut) bufs.push_back(uv_buf_init(&bytes[0], static_cast<unsigned>(cut)));
    bufs.push_back(uv_buf_init(&bytes[cut], static_cast<unsigned>(bytes.size() - cut)));
  }
};

void onWrite(SocketWrite* req, int status) {
  auto* w = static_cast<Write*>(req);
  w->status = status;
  if (w->order) w->order->push_back(w->name + ":" + std::to_string(status));
}

std::string pattern(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed) >> 3);
  return s;
}

// Reads from a blocking fd until EOF or `want` bytes (0: until EOF), with a
// receive timeout so a failure cannot hang the test.
std::string readAll(int fd, size_t want, bool* eof) {
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string got;
  char b[65536];
  *eof = false;
  while (want == 0 || got.size() < want) {
    ssize_t n = ::read(fd, b, sizeof b);
    if (n == 0) {
      *eof = true;
      break;
    }
    if (n < 0) break;
    got.append(b, static_cast<size_t>(n));
  }
  return got;
}

template <class F>
bool waitFor(F done, int ms = 5000) {
  auto until = Clock::now() + std::chrono::milliseconds(ms);
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// The socket's state is the loop's: the test reads it through runSync.
template <class T, class F>
T onLoop(IoLoop& loop, F f) {
  T v{};
  loop.runSync([&] { v = f(); });
  return v;
}

// One socket on an IO loop over the accepted end of a loopback pair; the
// test's thread holds the other end (`in`, blocking).
struct Pair {
  IoLoop& loop = nextLoop();
  int out = -1, in = -1;
  Seen seen;
  Socket sock;
  Pair() {
    CHECK(socketPair(&out, &in));
    loop.runSync([&] {
      sock.init(&loop.poller(), &kOps, &seen);
      CHECK_EQ(sock.open(out), 0);
    });
  }
  ~Pair() {
    if (in >= 0) ::close(in);
  }
  bool closed() {
    return waitFor([&] { return onLoop<bool>(loop, [&] { return seen.closed; }); });
  }
  void closeAndWait() {
    loop.runSync([&] { sock.close(); });
    CHECK(closed());
  }
};

void writeQueuesAndCompletesLater() {
  Pair p;
  Write w;
  w.set(pattern(8 << 20, 7));  // far over what loopback buffers take
  bool calledInside = true;
  size_t queued = 0;
  p.loop.runSync([&] {
    CHECK_EQ(p.sock.write(&w, &onWrite), 0);
    calledInside = w.status.load() != 1;
    queued = p.sock.writeQueueSize();
  });
  CHECK(!calledInside);
  CHECK(queued > 0 && queued < w.bytes.size());
  bool eof;
  std::string got = readAll(p.in, w.bytes.size(), &eof);
  CHECK(got == w.bytes);
  CHECK(waitFor([&] { return w.status.load() != 1; }));
  CHECK_EQ(w.status.load(), 0);
  CHECK_EQ(onLoop<size_t>(p.loop, [&] { return p.sock.writeQueueSize(); }), size_t(0));
  p.closeAndWait();
  got = readAll(p.in, 0, &eof);
  CHECK(eof);
}

void closeCancelsQueuedWrites() {
  Pair p;
  Write a, b;
  a.set(pattern(8 << 20, 1));
  b.set(pattern(1000, 2));
  a.name = "a";
  b.name = "b";
  a.order = b.order = &p.seen.order;
  p.loop.runSync([&] {
    CHECK_EQ(p.sock.write(&a, &onWrite), 0);
    CHECK_EQ(p.sock.write(&b, &onWrite), 0);
    CHECK_EQ(p.sock.shutdown(), 0);  // waits behind the writes
    p.sock.close();
    CHECK(p.seen.order.empty());  // nothing inside close()
    CHECK_EQ(p.sock.write(&b, &onWrite), UV_EBADF);
  });
  CHECK(p.closed());
  std::vector<std::string> want = {"a:" + std::to_string(UV_ECANCELED),
                                   "b:" + std::to_string(UV_ECANCELED), "shutdown", "closed"};
  CHECK(p.seen.order == want);
  CHECK_EQ(p.seen.shutdownStatus, UV_ECANCELED);
}

void shutdownAfterQueuedBytes() {
  Pair p;
  Write w;
  w.set(pattern(4 << 20, 3), 1000);
  p.loop.runSync([&] {
    CHECK_EQ(p.sock.write(&w, &onWrite), 0);
    CHECK_EQ(p.sock.shutdown(), 0);
    CHECK_EQ(p.sock.shutdown(), UV_ENOTCONN);  // once
  });
  bool eof;
  std::string got = readAll(p.in, 0, &eof);
  CHECK(eof);
  CHECK(got == w.bytes);  // every byte, then the FIN
  CHECK(waitFor([&] { return onLoop<int>(p.loop, [&] { return p.seen.shutdownStatus; }) != 1; }));
  CHECK_EQ(p.seen.shutdownStatus, 0);
  CHECK_EQ(w.status.load(), 0);
  p.closeAndWait();
}

void readsPauseAndEof() {
  Pair p;
  auto data = [&] { return onLoop<std::string>(p.loop, [&] { return p.seen.data; }); };
  p.loop.runSync([&] { CHECK_EQ(p.sock.readStart(), 0); });
  CHECK_EQ(::write(p.in, "hello", 5), 5);
  CHECK(waitFor([&] { return data() == "hello"; }));
  p.loop.runSync([&] { p.sock.readStop(); });
  CHECK_EQ(::write(p.in, " world", 6), 6);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK_EQ(data(), std::string("hello"));
  p.loop.runSync([&] { p.sock.readStart(); });
  CHECK(waitFor([&] { return data() == "hello world"; }));
  ::close(p.in);
  p.in = -1;
  CHECK(waitFor([&] { return onLoop<int>(p.loop, [&] { return p.seen.eof; }) == 1; }));
  CHECK(!onLoop<bool>(p.loop, [&] { return p.sock.reading(); }));  // EOF stops reading
  p.closeAndWait();
  CHECK_EQ(p.seen.eof, 1);
}

void connects() {
  IoLoop& loop = nextLoop();
  sockaddr_in a;
  int l = listenLoopback(&a);
  CHECK(l >= 0);
  Seen ok, refused;
  Socket s1, s2;
  loop.runSync([&] {
    s1.init(&loop.poller(), &kOps, &ok);
    CHECK_EQ(s1.connect(reinterpret_cast<sockaddr*>(&a)), 0);
    CHECK_EQ(ok.connected, 1);  // never inside connect()
    CHECK_EQ(s1.shutdown(), UV_ENOTCONN);  // not while connecting (it would never come)
  });
  CHECK(waitFor([&] { return onLoop<int>(loop, [&] { return ok.connected; }) != 1; }));
  CHECK_EQ(ok.connected, 0);
  int peer = ::accept(l, nullptr, nullptr);
  CHECK(peer >= 0);
  loop.runSync([&] { s1.readStart(); });
  CHECK_EQ(::write(peer, "x", 1), 1);
  CHECK(waitFor([&] { return onLoop<std::string>(loop, [&] { return ok.data; }) == "x"; }));
  ::close(peer);
  ::close(l);  // nothing listens on that port now
  loop.runSync([&] {
    s2.init(&loop.poller(), &kOps, &refused);
    CHECK_EQ(s2.connect(reinterpret_cast<sockaddr*>(&a)), 0);
  });
  CHECK(waitFor([&] { return onLoop<int>(loop, [&] { return refused.connected; }) != 1; }));
  CHECK_EQ(refused.connected, UV_ECONNREFUSED);
  loop.runSync([&] {
    s1.close();
    s2.close();
  });
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return ok.closed && refused.closed; }); }));
}

void manySocketsOnePoller() {
  IoLoop& loop = nextLoop();
  constexpr int kN = 200;
  std::vector<int> peers(kN);
  std::vector<std::unique_ptr<Seen>> seen;
  std::vector<std::unique_ptr<Socket>> socks;
  for (int i = 0; i < kN; ++i) {
    int out;
    CHECK(socketPair(&out, &peers[i]));
    seen.emplace_back(new Seen);
    socks.emplace_back(new Socket);
    loop.runSync([&] {
      socks[i]->init(&loop.poller(), &kOps, seen[i].get());
      socks[i]->open(out);
      socks[i]->readStart();
    });
  }
  for (int i = 0; i < kN; ++i) {
    std::string msg = "socket " + std::to_string(i);
    CHECK_EQ(::write(peers[i], msg.data(), msg.size()), static_cast<ssize_t>(msg.size()));
  }
  CHECK(waitFor([&] {
    return onLoop<bool>(loop, [&] {
      for (int i = 0; i < kN; ++i)
        if (seen[i]->data.size() < ("socket " + std::to_string(i)).size()) return false;
      return true;
    });
  }));
  int wrong = 0;
  for (int i = 0; i < kN; ++i) wrong += seen[i]->data != "socket " + std::to_string(i);
  CHECK_EQ(wrong, 0);
  loop.runSync([&] {
    for (auto& s : socks) s->close();
  });
  CHECK(waitFor([&] {
    return onLoop<bool>(loop, [&] {
      for (auto& s : seen)
        if (!s->closed) return false;
      return true;
    });
  }));
  for (int p : peers) ::close(p);
}

// Two sockets readable in one batch; whichever is read first closes the
// other, whose event in the same batch must find it closed.
void closedInTheSameBatch() {
  IoLoop& loop = nextLoop();
  int out1, in1, out2, in2;
  CHECK(socketPair(&out1, &in1));
  CHECK(socketPair(&out2, &in2));
  Seen s1, s2;
  Socket a, b;
  // Hold the loop so both sockets are readable before it polls again.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  loop.runSync([&] {
    a.init(&loop.poller(), &kOps, &s1);
    b.init(&loop.poller(), &kOps, &s2);
    a.open(out1);
    b.open(out2);
    s1.closeOnRead = &b;
    s2.closeOnRead = &a;
    a.readStart();
    b.readStart();
  });
  loop.post([released] { released.wait_for(std::chrono::seconds(5)); });
  CHECK_EQ(::write(in1, "1", 1), 1);
  CHECK_EQ(::write(in2, "2", 1), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  release.set_value();
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return s1.closed || s2.closed; }); }));
  loop.runSync([&] {
    a.close();
    b.close();
  });
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return s1.closed && s2.closed; }); }));
  // Exactly one read: the closed one's pending event was dropped.
  CHECK_EQ(static_cast<int>(!s1.data.empty()) + static_cast<int>(!s2.data.empty()), 1);
  ::close(in1);
  ::close(in2);
}

}  // namespace

// epoll refuses a file (EPERM): the socket's reads fail, later on the loop,
// never inside readStart() (before, the read callback ran inside it).
void refusedByEpoll() {
  IoLoop& loop = nextLoop();
  char path[] = "/tmp/socket_test.XXXXXX";
  int fd = ::mkstemp(path);
  CHECK(fd >= 0);
  ::unlink(path);
  Seen seen;
  Socket sock;
  bool calledInside = true;
  loop.runSync([&] {
    sock.init(&loop.poller(), &kOps, &seen);
    CHECK_EQ(sock.open(fd), 0);
    CHECK_EQ(sock.readStart(), 0);
    calledInside = seen.readError != 0;
  });
  CHECK(!calledInside);
  CHECK(waitFor([&] { return onLoop<int>(loop, [&] { return seen.readError; }) != 0; }));
  CHECK_EQ(seen.readError, UV_EPERM);
  CHECK(!onLoop<bool>(loop, [&] { return sock.reading(); }));
  loop.runSync([&] { sock.close(); });
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return seen.closed; }); }));
}

#if !WSENGINE_SOCKET_UV_POLL
// A poller whose epoll set could not be made (the process was out of
// descriptors) refuses every socket: a write the peer does not take whole
// needs EPOLLOUT and must fail (before, with the socket not reading,
// nothing failed it and it waited for good); a connect fails later, not
// inside connect().
void pollerWithoutEpoll() {
  IoLoop& loop = nextLoop();
  int out = -1, in = -1;
  CHECK(socketPair(&out, &in));
  Poller* dead = nullptr;
  loop.runSync([&] {
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    int lowest = 0;
    while (fcntl(lowest, F_GETFD) >= 0) ++lowest;
    low.rlim_cur = static_cast<rlim_t>(lowest);  // no new descriptor
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
    dead = new Poller(loop.loop(), false);
    setrlimit(RLIMIT_NOFILE, &old);
  });
  Seen seen;
  Socket sock;
  Write w;
  w.set(pattern(8 << 20, 5));
  loop.runSync([&] {
    sock.init(dead, &kOps, &seen);
    CHECK_EQ(sock.open(out), 0);
    CHECK_EQ(sock.write(&w, &onWrite), 0);
  });
  CHECK(waitFor([&] { return w.status.load() != 1; }));
  CHECK_EQ(w.status.load(), UV_EBADF);
  loop.runSync([&] { sock.close(); });
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return seen.closed; }); }));
  ::close(in);

  Seen seen2;
  Socket client;
  sockaddr_in a;
  int listener = listenLoopback(&a);
  CHECK(listener >= 0);
  bool calledInside = true;
  loop.runSync([&] {
    client.init(dead, &kOps, &seen2);
    CHECK_EQ(client.connect(reinterpret_cast<sockaddr*>(&a)), 0);
    calledInside = seen2.connected != 1;
  });
  CHECK(!calledInside);
  CHECK(waitFor([&] { return onLoop<int>(loop, [&] { return seen2.connected; }) != 1; }));
  CHECK_EQ(seen2.connected, UV_EBADF);
  loop.runSync([&] { client.close(); });
  CHECK(waitFor([&] { return onLoop<bool>(loop, [&] { return seen2.closed; }); }));
  ::close(listener);
  loop.runSync([&] { dead->close(); });
}
#endif

int main() {
  writeQueuesAndCompletesLater();
  closeCancelsQueuedWrites();
  shutdownAfterQueuedBytes();
  readsPauseAndEof();
  connects();
  manySocketsOnePoller();
  closedInTheSameBatch();
  refusedByEpoll();
#if !WSENGINE_SOCKET_UV_POLL
  pollerWithoutEpoll();
#endif
  std::printf("sizeof(Socket) %zu\n", sizeof(Socket));
  return check::finish();
}
