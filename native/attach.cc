// websocketServerAdopt: hands a TCP connection that Node's own HTTP server
// accepted and parsed to a noServer server (lib/attach.ts does the Node side:
// it stops Node reading, collects the bytes Node read, and destroys Node's
// socket afterwards). Here the descriptor is checked to be a connected TCP
// socket and duplicated; the engine adopts the duplicate on an IO thread, so
// Node closing its own descriptor leaves the connection open.
#include <cerrno>
#include <cstring>
#include <string>

#ifndef _WIN32
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#endif

#include "args.h"
#include "commands.h"
#include "convert.h"
#include "instance.h"

namespace wsengine {
namespace addon {

namespace {

Napi::Object status(Keys& keys, bool success, const std::string& message) {
  Napi::Object out = Napi::Object::New(keys.env());
  keys.set(out, Key::success, success);
  keys.set(out, Key::message, message);
  return out;
}

#ifndef _WIN32
// Empty when fd is a connected TCP (IPv4/IPv6) stream socket, else why not.
std::string notTcp(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return std::string("fd ") + std::to_string(fd) + ": " + std::strerror(errno);
  if (!S_ISSOCK(st.st_mode)) return "fd " + std::to_string(fd) + " is not a socket";
  int type = 0;
  socklen_t len = sizeof type;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
    return "fd " + std::to_string(fd) + " is not a stream socket";
  struct sockaddr_storage peer;
  len = sizeof peer;
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0)
    return "fd " + std::to_string(fd) + " is not connected: " + std::strerror(errno);
  if (peer.ss_family != AF_INET && peer.ss_family != AF_INET6)
    return "fd " + std::to_string(fd) + " is not a TCP socket (address family " +
           std::to_string(peer.ss_family) + ")";
  return std::string();
}
#endif

// (server, fd, received) -> { success, message }. TypeError for arguments of
// the wrong type and for a server that was not created with noServer.
Napi::Value WebsocketServerAdopt(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Keys keys(env);
  int ref = 0;
  refObjectArg(keys, info[0], "server", ref);
  if (!isInteger(info[1]) || info[1].As<Napi::Number>().DoubleValue() < 0 ||
      info[1].As<Napi::Number>().DoubleValue() > kMaxInt32)
    throwType(env, "fd must be a non-negative integer (a file descriptor)");
  int fd = static_cast<int>(info[1].As<Napi::Number>().DoubleValue());
  if (!info[2].IsBuffer()) throwType(env, "received must be a Buffer");
  Napi::Buffer<char> buf = info[2].As<Napi::Buffer<char>>();
  std::string received(buf.Data(), buf.Length());

  ServerEntry* s = Instance::get(env)->server(ref);
  if (s == nullptr) return refStatus(keys, Side<ServerEntry>::unknown(ref));
  if (!s->config.opts.noServer)
    throwType(env,
              "server: handleUpgrade needs a server created with noServer: true (this one listens "
              "on a port of its own)");
  if (!s->started || !s->engine->running())
    return status(keys, false,
                  "Server is not started: call websocketServerStart (or start()) before "
                  "handleUpgrade");
#ifdef _WIN32
  (void)fd;
  return status(keys, false,
                "handleUpgrade is not supported on Windows (no file descriptor to adopt): let "
                "ix-websocket listen on a port of its own");
#else
  std::string why = notTcp(fd);
  if (!why.empty()) return status(keys, false, "Cannot adopt the socket: " + why);
  int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (dup < 0)
    return status(keys, false, std::string("Cannot duplicate the socket: ") + std::strerror(errno));
  if (!s->engine->adopt(dup, std::move(received)))  // closes dup on failure
    return status(keys, false, "Server is not running");
  return status(keys, true, "Connection handed to the server");
#endif
}

}  // namespace

void registerAttach(Napi::Env env, Napi::Object exports) {
  exportFunction(env, exports, "websocketServerAdopt", WebsocketServerAdopt);
}

}  // namespace addon
}  // namespace wsengine
