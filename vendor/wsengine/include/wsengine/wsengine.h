// wsengine: a standalone RFC 6455 WebSocket engine (client and server) on
// libuv IO threads. No Node or N-API include: the addon in native/ drives it.
//
// Threading contract
// - A fixed pool of IO threads (each its own uv_loop_t) owns every socket.
// - Server/Client methods may be called from any one "owner" thread (in the
//   addon: the JavaScript thread of one environment). They never wait on the
//   network; start() of a server waits only for bind/listen on its IO thread.
// - Events are produced on IO threads and handed to an EventSink, in order per
//   connection.
// - Inline mode (opt-in, per start: ServerOptions::loop / ClientOptions::loop
//   set to embedLoop(...)): the server's or client's sockets, timers and DNS
//   run on the embedder's own uv loop instead of the IO threads, as
//   uWebSockets.js runs on Node's. Then every callback and every event
//   (EventSink::push, the client start's `done`) happens on the embedder's
//   thread, inside that loop's callbacks; the owner thread must be that same
//   thread. No handle the engine creates there keeps the loop alive (all are
//   unref'ed: the embedder decides what keeps it alive). Calls from other
//   threads still work (they post to the loop, which must be running).
//   Process-wide housekeeping (the buffer pool's trim timer) stays on the
//   first IO thread.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

struct uv_loop_s;

namespace wsengine {

class IoLoop;

// Wraps an embedder's uv loop for inline mode. Call on the thread that runs
// `loop`; the engine never runs it or closes it. Before the embedder closes
// its loop: clear every Server/Client started on it (on that thread), then
// closeEmbeddedLoop(), then let the loop run once more so the handles the
// engine closed get their callbacks (uv_loop_close refuses open handles).
std::shared_ptr<IoLoop> embedLoop(uv_loop_s* loop);
// On the loop's thread: closes the engine's wake-up handle on it; posts from
// other threads are dropped from then on. Idempotent.
void closeEmbeddedLoop(const std::shared_ptr<IoLoop>& loop);

using Headers = std::vector<std::pair<std::string, std::string>>;

// permessage-deflate (RFC 7692) settings. On a client they are what it
// offers; on a server they bound what it accepts.
struct DeflateOptions {
  bool enabled = true;
  bool clientNoContextTakeover = false;
  bool serverNoContextTakeover = false;
  int clientMaxWindowBits = 15;  // 8..15
  int serverMaxWindowBits = 15;  // 8..15
  size_t threshold = 1024;       // messages shorter than this go uncompressed
  int level = 1;                 // zlib level; speed over ratio, as ws
  int memLevel = 8;
};

struct TlsOptions {
  bool enabled = false;       // server: serve TLS; client: set from wss://
  std::string certFile, keyFile, caFile;  // paths
  std::string cert, key, ca;              // PEM text (wins over the files)
  // ca/caFile: client: the CAs trusted for the server (they replace the
  // system store); server: the CAs client certificates must chain to
  // (required with verifyPeer).
  std::string ciphers;
  bool verifyPeer = true;     // client: verify the server (default on)
                              // server: require and verify a client cert
  bool disableHostnameValidation = false;  // client only
  std::string servername;     // client SNI override (default: url host)
  // The passphrase of an encrypted private key (PEM); "": the key is not
  // encrypted (an encrypted one then fails with a message saying so, never
  // a prompt on the terminal).
  std::string passphrase;
  // "TLSv1.2" or "TLSv1.3"; "": TLS 1.2 at least, the highest both support.
  std::string minVersion, maxVersion;
};

struct Limits {
  uint64_t maxPayload = 100ull * 1024 * 1024;  // whole message, after inflate
  size_t maxHeaderSize = 16 * 1024;            // HTTP upgrade head, bytes
  int maxHeaders = 100;
  double handshakeTimeout = 10.0;              // seconds (server side)
  // Server side: a socket that sends no byte at all within this many seconds
  // of being accepted is closed (idle sockets would hold a handshake slot
  // for the whole handshakeTimeout). <= 0: only handshakeTimeout applies.
  double firstByteTimeout = 5.0;
  // Per connection. Sends beyond it fail; while the queue (pongs and close
  // frames included) is over it, the connection is not read (a peer that
  // sends without reading cannot grow it), until it drains below.
  size_t sendHighWaterMark = 128ull * 1024 * 1024;
};

struct Heartbeat {
  int pingInterval = -1;  // seconds; -1 off
  int pingTimeout = -1;   // seconds; -1 off (no pong/traffic -> close)
  bool enablePong = true;
};

struct ServerOptions {
  ServerOptions() { tls.verifyPeer = false; }  // client certificates only on request
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: the system picks one
  // Node's net.Server listens with 511 too; IXWebSocket's 5 dropped the SYNs of
  // any burst of connections (clients reconnecting after a restart) for 1-7 s.
  int backlog = 511;
  // No listener: start() binds nothing and the connections come from
  // Server::adopt() (sockets another part of the program accepted, such as
  // Node's HTTP server). host, port and backlog are ignored; TLS is refused
  // (an adopted socket is plain TCP).
  bool noServer = false;
  // Open WebSocket connections; an upgrade beyond it is answered 503.
  int maxConnections = 128;
  // Linux SO_REUSEPORT: several servers (processes, threads) listen on the
  // same host and port and the kernel spreads new connections over them.
  // Off: the port is exclusive (a second server fails with EADDRINUSE). On a
  // platform without it start() fails and says so.
  bool reusePort = false;
  // Sockets accepted and not yet upgraded (TCP/TLS/HTTP handshake in
  // progress), counted apart from maxConnections so that idle or slow sockets
  // cannot keep real clients out. Beyond it a new socket is answered 503
  // (plain) or closed (TLS) at once.
  int maxHandshakes = 512;
  // Sockets (handshaking and open) from one IP address; 0: no cap. Beyond it
  // a new socket is answered 429 (plain) or closed (TLS) at once. Off by
  // default: behind NAT or a reverse proxy many clients share one address.
  int maxConnectionsPerAddress = 0;
  // Bytes held in unfinished messages (fragmented and/or compressed, counted
  // after inflate) across every connection of the server. The connection
  // whose frame would take the total beyond it fails with 1009; the others
  // keep going. 0: no server-wide bound (maxPayload still bounds each).
  uint64_t maxUnfinishedBytes = 256ull * 1024 * 1024;
  // Subprotocols this server speaks (RFC 6455 §1.9, §4.2.2): the first of the
  // client's offer (in its order) found here is answered; none when nothing
  // matches. Tokens (RFC 7230), checked by the caller.
  std::vector<std::string> protocols;
  // Non-empty: a request whose Origin header (RFC 6454) is not one of these
  // (ASCII case-insensitive) is answered 403. A request without Origin (not
  // a browser: such a client could send any Origin anyway) is not refused.
  std::vector<std::string> allowedOrigins;
  // The owner decides each upgrade: a valid request raises a Verify event
  // and waits (bounded by handshakeTimeout, not reading) for
  // Server::answerVerify before the 101 or a refusal is written.
  bool verifyClient = false;
  // The close reply waits for the owner: a close frame from the peer raises
  // a Closing event (after the events before it) and the reply goes out at
  // Server::ackClose (or after closeTimeout), so that replies the owner sends
  // to the messages before the close still go out ahead of it.
  // (bounded by the connections' close timeout, 2 s).
  bool closeReplyOnAck = false;
  Heartbeat heartbeat;
  DeflateOptions deflate;
  TlsOptions tls;
  Limits limits;
  // Inline mode (see the threading contract above): null, the IO threads;
  // else the embedder's loop (embedLoop), on which the listener and every
  // connection of this start run. start() must then be called on that
  // loop's thread.
  std::shared_ptr<IoLoop> loop;
};

// The proxy-related environment variables, read by the owner (the engine
// never calls getenv): each value, empty when unset. See proxyFromEnv in
// src/proxy.h for how they are read (as curl does).
struct ProxyEnv {
  std::string httpsProxy, httpsProxyUpper;  // https_proxy, HTTPS_PROXY
  std::string httpProxy, httpProxyUpper;    // http_proxy, HTTP_PROXY
  std::string noProxy, noProxyUpper;        // no_proxy, NO_PROXY
};

struct ClientOptions {
  std::string url;
  Headers extraHeaders;
  // Subprotocols offered (Sec-WebSocket-Protocol), in order of preference.
  // A 101 naming one not offered (or any, when none was) fails the attempt.
  std::vector<std::string> protocols;
  // See ServerOptions::closeReplyOnAck (Client::ackClose).
  bool closeReplyOnAck = false;
  Heartbeat heartbeat;
  bool enableAutomaticReconnection = true;
  uint32_t minWaitBetweenReconnectionRetries = 1;      // ms
  uint32_t maxWaitBetweenReconnectionRetries = 10000;  // ms
  // 0..1: each wait is drawn at random from [wait * (1 - jitter), wait], so
  // clients that one server restart disconnected do not all retry at the
  // same instants. 0 (the default): the exact sequence min * 2^n.
  double reconnectionJitter = 0;
  double timeout = 20.0;  // seconds: DNS + TCP + TLS + handshake
  DeflateOptions deflate;
  TlsOptions tls;
  Limits limits;
  double closeTimeout = 2.0;  // seconds to wait for the peer's close reply
  // A 301/302/303/307/308 answer to the upgrade is followed (its Location
  // resolved against the url that got it), at most maxRedirects times per
  // attempt; never from wss:// to ws://; Authorization, Cookie and the url's
  // userinfo go to the original host and port only. Off: a redirect fails the
  // attempt with its status. Reconnection starts again from `url`.
  bool followRedirects = false;
  int maxRedirects = 10;
  // "": direct. "http://[user:password@]host[:port]": every connection goes
  // through that HTTP proxy (CONNECT, Basic credentials from the userinfo;
  // TLS for wss:// runs inside the tunnel, verified against the target).
  // "env": the proxy proxyEnv names for the url (curl's rules, NO_PROXY
  // included), chosen again for each redirect hop.
  std::string proxy;
  ProxyEnv proxyEnv;
  // Inline mode, as ServerOptions::loop: the connection, its timers and DNS
  // run on the embedder's loop; start() must be called on its thread.
  std::shared_ptr<IoLoop> loop;
};

// Checks a client's proxy option ("", "env" or an http:// proxy url) as a
// start reads it; false with a readable error. Any thread; no I/O.
bool checkProxyOption(const std::string& proxy, std::string& error);

// Whether the engine writes a header of this name itself: in a client's
// upgrade request (`request`: Upgrade, Connection, Sec-WebSocket-Key,
// -Version, -Extensions, -Protocol) or in a server's answers (the same but
// the key, Sec-WebSocket-Accept, Content-Length, Transfer-Encoding). An extra
// header of such a name (ClientOptions::extraHeaders, VerifyAnswer::headers)
// is left out; a client's Host and User-Agent and a refusal's Content-Type
// replace the engine's own. Case-insensitive; any thread.
bool engineOwnsHeader(bool request, const std::string& name);

// How a client reads its url (ws/wss; http/https as aliases): the parts a
// WHATWG URL (browsers, Node's URL) gives for it, or false with a readable
// error for a url it refuses, which includes every url WHATWG would read
// another way (see url.cc). Any thread; no I/O.
struct ClientUrl {
  bool secure = false;
  std::string host;    // lower case; IPv6 in its shortest form, no brackets
  int port = 0;        // explicit or the scheme's default
  std::string target;  // path and query, percent-encoded; "/" at least
};
bool parseClientUrl(const std::string& url, ClientUrl& out, std::string& error);

// Verify (server, only with ServerOptions::verifyClient): a valid upgrade
// request waits for Server::answerVerify; Event::peer says who asks.
// Closing (only with closeReplyOnAck): the peer's close frame arrived after
// the events before it; the owner answers with ackClose. Neither is an
// application event of the 4D plugin's.
enum class EventType : uint8_t { Open, Close, Error, Fragment, Ping, Pong, Message, Verify, Closing };

// Who the peer is and what the opening handshake agreed, on Open and Verify.
struct PeerInfo {
  std::string remoteAddress;  // the peer's IP address as text ("" unknown)
  int remotePort = 0;
  bool secure = false;         // TLS
  std::string protocol;        // the negotiated subprotocol ("" none)
  std::string extensions;      // the agreed Sec-WebSocket-Extensions ("" none)
  // Verify: the subprotocols the client offered, in its order, and the
  // one the server's own list would choose (protocol).
  std::vector<std::string> offered;
  std::string origin;          // Verify: the Origin header ("" none)
  // TLS (secure), once its handshake is done: the protocol version
  // ("TLSv1.3"), the cipher suite (OpenSSL's name), whether an earlier
  // session was resumed, and the certificate the peer presented (PEM; ""
  // when it sent none, as a client of a server without verifyPeer). A
  // server that verifies peers knows from it which client this is.
  std::string tlsProtocol;
  std::string tlsCipher;
  bool tlsResumed = false;
  std::string peerCertificate;
};

// One event, produced on an IO thread. Plain data: the sink takes ownership.
struct Event {
  EventType type = EventType::Open;
  uint64_t owner = 0;  // tag given to the Server/Client at construction
  uint64_t conn = 0;   // server side: engine connection id (never reused); client: 0

  // message, ping, pong, fragment
  std::string data;  // payload bytes (inflated)
  // Message and fragment: the message was sent as binary (else it was text,
  // and data is valid UTF-8: a fragment carries whole code points only).
  // Ping and pong: control frames have no text/binary type; binary says that
  // the payload is not valid UTF-8. Either way, binary == false promises
  // valid UTF-8 in data.
  bool binary = false;
  uint64_t wireSize = 0;  // payload bytes as they were on the wire

  // open, verify: the request target (server) or the url (client); the peer's headers
  std::string uri;
  Headers headers;
  std::shared_ptr<const PeerInfo> peer;  // open, verify

  // close
  int code = 0;
  std::string reason;
  bool remote = false;

  // error
  bool decompressionError = false;
  int httpStatus = 0;
  double waitTime = 0;  // ms before the next reconnection attempt
  int retries = 0;

  // client: true on the close/error event after which the client will not
  // reconnect by itself (it is idle until started again).
  bool terminal = false;

  // Engine accounting tied to this event's lifetime: a fragment's bytes count
  // against the server's maxUnfinishedBytes until the event is destroyed.
  // Sinks need do nothing but let the event go once consumed.
  std::shared_ptr<void> hold;
};

// Spare payload strings: a consumer may give the strings of small payloads
// (Event::data of capacity at most kSpareCapacity) back to the engine once it
// has copied their bytes, and the IO thread that pushes its events assembles
// the next small messages in them instead of in fresh heap memory. A string
// allocated on an IO thread and freed on the consumer's thread costs the
// allocator more than one reused on the thread that fills it (glibc's
// per-thread arenas and their locks: bench/PROFILE.md, "Fourth pass").
constexpr size_t kSpareCapacity = 16 * 1024;

// Receives events from IO threads. push() must be thread-safe and cheap.
// It returns false when the consumer's queue is over its byte budget: the
// connection that pushed stops reading until resumeReading() is called on its
// Server/Client.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual bool push(Event&& ev) = 0;
  // Several events of one connection, in order (the events of one socket
  // read): one lock instead of one per event. Leaves `evs` empty (capacity
  // kept). The result is push()'s, for the last of them.
  virtual bool pushAll(std::vector<Event>& evs) {
    bool ok = true;
    for (auto& ev : evs) ok = push(std::move(ev));
    evs.clear();
    return ok;
  }
  // What the engine calls after a socket read: pushAll(evs), and, in the
  // same breath (under the same lock, for a sink that locks), up to `room`
  // spare strings appended to `spares`. Each must be empty (size 0: no byte
  // of it is readable) with a capacity of at most kSpareCapacity, and owned
  // by nothing else (the bytes of no JavaScript value, no external buffer).
  // Called on the IO thread that pushes (the embedder's, in inline mode).
  // The default gives none.
  virtual bool pushAllTakeSpares(std::vector<Event>& evs, std::vector<std::string>& spares,
                                 size_t room) {
    (void)spares;
    (void)room;
    return pushAll(evs);
  }
};

struct StartResult {
  bool success = false;
  std::string message;
  int port = 0;  // the bound port (useful with port 0)
};

struct ConnectResult {
  bool success = false;
  int httpStatus = 0;
  std::string errorStr;
  std::string uri;  // client: where the attempt ended (the last redirect's url)
  Headers headers;
  std::string protocol;  // the subprotocol the server chose ("" none)
  int redirects = 0;  // redirects followed on the way (followRedirects)
};

// The owner's answer to a Verify event.
struct VerifyAnswer {
  bool accept = false;
  int status = 401;             // refused: the HTTP status (400..599)
  std::string message;          // refused: the body (default: the reason phrase)
  Headers headers;              // extra response headers (101 or refusal)
  bool chooseProtocol = false;  // accepted: protocol replaces the server's choice
  std::string protocol;         // one of the client's offer, or "" for none
};

struct SendResult {
  bool success = false;
  bool compressionError = false;
  uint64_t payloadSize = 0;
  uint64_t wireSize = 0;        // payload bytes after compression
  uint64_t conn = 0;            // server side: target connection
  uint64_t bufferedAmount = 0;  // bytes queued on that connection after this send
  std::string message;          // why it failed
};

// A subscribe/unsubscribe: success false (with message) for a connection
// that is not open or a server that is not running.
struct TopicResult {
  bool success = false;
  bool changed = false;  // subscribed (unsubscribed) now, not already (not at all)
  size_t count = 0;      // the topic's subscribers afterwards
  std::string message;
};

// A publish to a topic's subscribers on this server.
struct PublishResult {
  bool success = false;      // false: not running or invalid UTF-8 text (message)
  uint64_t subscribers = 0;  // open connections subscribed at the time
  uint64_t sent = 0;         // of them, those the frame was queued for
  uint64_t failed = 0;       // those refused it (closing, over sendHighWaterMark)
  uint64_t payloadSize = 0;
  uint64_t wireSize = 0;     // payload bytes summed over the targets (after compression)
  // Deflate runs this publish made: one per compression setting shared by
  // subscribers without context takeover, one per subscriber with it.
  uint64_t compressions = 0;
  std::string message;
};

// Sends on the calling thread normally write a small frame to the socket at
// once when the connection has nothing queued (no hop to the IO thread).
// Between cork() and uncork() they only queue; uncork() then writes what each
// connection queued with one system call (or hands it to its IO thread). A
// large uncompressed frame (over 16 KiB) that a server sends to one
// connection whose socket is idle is written at once even while corked,
// straight from the caller's bytes (a broadcast frame queues like others).
// passThrough: the first that many small frames to idle sockets are still
// written at once (the outermost cork decides): a short burst of replies
// leaves without waiting for the rest of the batch, a long one is coalesced.
// Per thread, nestable. The addon corks around each batch of events.
// A connection corked for a long burst is written as soon as it holds 64 KiB
// (or half its sendHighWaterMark), so corking never holds more than that nor
// refuses a send an uncorked one would have accepted.
void cork(unsigned passThrough = 0);
void uncork();
// Writes (or hands to the IO threads) what this thread's sends queued while
// corked, now, and stays corked. The addon calls it before stopping or
// clearing anything, so that frames accepted earlier in the same corked
// scope go out before the close instead of being dropped with the socket.
void flushCorked();

// Gives a large event payload (Event::data) back to the engine once the
// application is done with it: the next large message reuses its memory
// instead of faulting in fresh pages. Optional; any thread; small strings
// are simply freed.
void recycleBuffer(std::string&& s);
// A string of capacity >= `capacity` from the recycled buffers (warm pages),
// or a fresh reservation when none fits. Its size is whatever it had when it
// was recycled (stale bytes): a caller resizes it to what it writes. Any
// thread; give it back with recycleBuffer. Never one more than four times
// the request (a small message must not pin a large buffer).
std::string takeBuffer(size_t capacity);

// The recycled-buffer pool, for diagnostics and benchmarks.
struct BufferPoolStats {
  size_t pooled = 0;       // buffers held now
  size_t pooledBytes = 0;  // their capacity
  size_t hits = 0;         // large buffers served from the pool (since start)
  size_t misses = 0;       // large buffers that had to be allocated
};
BufferPoolStats bufferPoolStats();

// Sets the number of IO threads (default: 1 on machines with 2 cores or
// fewer, else 2). Effective before first use only.
void setIoThreadCount(int n);
int ioThreadCount();

class ServerImpl;
class ClientImpl;

class Server {
 public:
  Server(std::shared_ptr<EventSink> sink, uint64_t tag);
  ~Server();  // clears (hard close) if still running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on an IO thread; waits only for that. With noServer
  // it binds nothing: the server is ready for adopt().
  StartResult start(const ServerOptions& options);
  // Takes over a connected TCP socket that something else accepted (fd: from
  // now on the engine's, closed on failure) together with the bytes already
  // read from it (`received`: the opening handshake request, whole or in
  // part, and whatever followed it). The socket goes to an IO loop as an
  // accepted one does and is served exactly like one: maxHandshakes and
  // maxConnectionsPerAddress at adoption, then the handshake reads
  // `received` before anything from the socket. Owner thread; never blocks
  // (the IO thread does the adoption). False (fd closed) when the server is
  // not running.
  bool adopt(int fd, std::string received);
  // Closes every connection with 1001 and releases the port; never blocks.
  // Each connection still raises its close event.
  void stop(int code = 1001, const std::string& reason = "Server stopped");
  // Like stop, but the sockets are dropped at once, without a close
  // handshake, and no close event is raised.
  void clear();
  bool running() const;
  int port() const;

  // conns == nullptr: every open connection. One result per target.
  std::vector<SendResult> send(const std::vector<uint64_t>* conns, const uint8_t* data,
                               size_t len, bool binary);
  // send() to one connection, without the lists: the same result as the
  // one element send(&{conn}, ...) returns.
  SendResult sendOne(uint64_t conn, const uint8_t* data, size_t len, bool binary);
  std::vector<uint64_t> connections() const;
  uint64_t bufferedAmount(uint64_t conn) const;
  bool closeConnection(uint64_t conn, int code, const std::string& reason);
  void resumeReading();
  // A ping (payload <= 125 bytes) to an open connection; false when it is
  // not open (or its close frame went). Any owner thread.
  bool ping(uint64_t conn, const uint8_t* data, size_t len);
  // Answers a Verify event; ignored when the connection is gone (timed out).
  void answerVerify(uint64_t conn, VerifyAnswer answer);
  // Answers a Closing event: the close reply may go out now.
  void ackClose(uint64_t conn);

  // Topics: a connection subscribes to any number of topic names; its
  // subscriptions end when it closes. publish() builds the frame once and
  // queues it on every subscriber, like a send to several connections.
  TopicResult subscribe(uint64_t conn, const std::string& topic);
  TopicResult unsubscribe(uint64_t conn, const std::string& topic);
  PublishResult publish(const std::string& topic, const uint8_t* data, size_t len, bool binary);
  // Topics with subscribers (name, count), sorted; the topics of one connection.
  std::vector<std::pair<std::string, size_t>> topics() const;
  std::vector<std::string> topicsOf(uint64_t conn) const;
  // The subscriber count of each of `names` (0 for a topic nobody is in):
  // what a bus checks after closes without listing every topic.
  std::vector<size_t> topicCounts(const std::vector<std::string>& names) const;

 private:
  std::shared_ptr<ServerImpl> impl_;
};

class Client {
 public:
  Client(std::shared_ptr<EventSink> sink, uint64_t tag);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts connecting; `done` runs once on an IO thread with the first
  // attempt's result. With automatic reconnection on, a failed first attempt
  // keeps retrying in the background (error events) until stop(). A start
  // while a connection is open (or closing after stop()) closes it with a
  // close handshake (1000 "Client restarted") and its close event first, but
  // one that moves the client to another loop (ClientOptions::loop) drops it
  // with a close event 1006; a start while another is pending supersedes it
  // ("Superseded by a new start").
  void start(const ClientOptions& options, std::function<void(ConnectResult)> done);
  // Close handshake with a bounded wait; cancels reconnection. Never blocks.
  void stop(int code = 1000, const std::string& reason = "Normal closure");
  // Like stop, but the socket is dropped at once, without a close handshake,
  // and no close or error event is raised.
  void clear();
  bool open() const;
  bool active() const;  // started and not stopped/given up

  SendResult send(const uint8_t* data, size_t len, bool binary);
  uint64_t bufferedAmount() const;
  void resumeReading();
  // A ping (payload <= 125 bytes); false when not open.
  bool ping(const uint8_t* data, size_t len);
  // Answers a Closing event (see ServerOptions::closeReplyOnAck).
  void ackClose();

 private:
  std::shared_ptr<ClientImpl> impl_;
};

}  // namespace wsengine
