// The public types and their documentation, in one place: the facade and
// binding.d.ts (the native module's exports) both use these. Option defaults
// are the engine's (vendor/wsengine/include/wsengine/wsengine.h); the
// comments say them, test/options.test.ts checks the values.

/** One of `open`, `close`, `error`, `fragment`, `ping`, `pong`, `message`. */
export type EventType = 'open' | 'close' | 'error' | 'fragment' | 'ping' | 'pong' | 'message';

/** Context of `message`, `ping`, `pong` and `fragment` events. */
export interface DataContext {
  /** payload bytes as they were on the wire (compressed when permessage-deflate was used) */
  wireSize: number;
  /** true for a binary frame, false for text */
  binary: boolean;
  /** a string for text, a Buffer for binary (a ping or pong whose payload is not UTF-8 is binary) */
  data: string | Buffer;
}

/** Context of `open`. The peer's headers are also added as key/value pairs, as the 4D plugin does. */
export interface OpenContext {
  /** server side: the request target; client side: the url */
  uri: string;
  /** the peer's headers (a repeated header folded into one value) */
  headers: Record<string, string>;
  /** the negotiated subprotocol ("" when none) */
  protocol: string;
  /** the agreed Sec-WebSocket-Extensions, e.g. "permessage-deflate; client_max_window_bits=15" ("" when none) */
  extensions: string;
  /** the peer's IP address ("::ffff:…" for IPv4 peers of a dual-stack socket) */
  remoteAddress: string;
  /** the peer's TCP port */
  remotePort: number;
  /** the TLS session (wss://), null for plain ws:// */
  tls: TlsInfo | null;
  [header: string]: unknown;
}

/** A connection's TLS session, as its handshake left it. */
export interface TlsInfo {
  /** the protocol version, e.g. "TLSv1.3" */
  protocol: string;
  /** the cipher suite (OpenSSL's name), e.g. "TLS_AES_256_GCM_SHA384" */
  cipher: string;
  /** an earlier session was resumed (no certificate exchange this time) */
  resumed: boolean;
  /**
   * the certificate the peer presented, PEM ("" when it sent none: a client
   * of a server without `verifyPeer`). Server side with `verifyPeer`: which
   * client this is (`new crypto.X509Certificate(pem)` reads its subject,
   * subjectAltName, fingerprint256); client side: the server's leaf, for
   * pinning. A resumed session still carries the certificate of its first
   * handshake.
   */
  peerCertificate: string;
}

/** Context of `error`. */
export interface ErrorContext {
  /** a received message failed to inflate (permessage-deflate); a close with 1007 follows */
  decompressionError: boolean;
  /** what went wrong, in words */
  reason: string;
  /** the handshake's HTTP status when there was one, else 0 */
  http_status: number;
  /** ms before the next reconnection attempt (client) */
  wait_time: number;
  /** attempts since the client's last connection that stayed open 5 s (client) */
  retries: number;
  /** A bus error about one topic (server, client 0): that topic. */
  topic?: string;
}

/** Context of `close`. */
export interface CloseContext {
  /** the close code (1005 when the close frame carried none, 1006 when the connection ended without one) */
  code: number;
  /** the close reason ("" when none) */
  reason: string;
  /** true when the peer closed */
  remote: boolean;
  /** A client that will reconnect by itself: ms before its next attempt. */
  wait_time?: number;
  /** A client that will reconnect by itself: attempts since its last connection that stayed open 5 s. */
  retries?: number;
}

/** Any event context. */
export type EventContext = DataContext | OpenContext | ErrorContext | CloseContext;

/**
 * The event callback of the command API, called on the JavaScript thread as
 * `(server, client, type, context, worker, window, process)`; `server` is 0 for
 * client-side events, `client` is the connection's ref on the server side.
 * `worker`, `window` and `process` are the values given in the options, untouched.
 */
export type EventMethod = (
  server: number,
  client: number,
  type: EventType,
  context: any,
  worker: unknown,
  window: unknown,
  process: unknown,
) => void;

/** What `verifyClient` is told about a connection asking to upgrade. */
export interface VerifyClientInfo {
  /** the request target (path and query) */
  uri: string;
  /** the request's headers (a repeated header folded into one value) */
  headers: Record<string, string>;
  /** the Origin header ("" when the request has none: not a browser) */
  origin: string;
  /** the peer's IP address */
  remoteAddress: string;
  /** the peer's TCP port */
  remotePort: number;
  /** the connection is TLS (wss://) */
  secure: boolean;
  /** its TLS session (null when not secure): the client's certificate, with `verifyPeer` */
  tls: TlsInfo | null;
  /** the subprotocols the client offered, in its order of preference */
  protocols: string[];
}

/**
 * What `verifyClient` returns or resolves to: `true` (accept), `false` (refuse
 * with 401), or an object.
 */
export interface VerifyClientAnswer {
  /** true lets the connection in (the 101 follows); false refuses it */
  accept: boolean;
  /** refused: the HTTP status, 400..599 (default 401) */
  status?: number;
  /** refused: the response body (default: the status's reason phrase) */
  message?: string;
  /**
   * extra response headers, on the 101 or on the refusal (e.g. `Set-Cookie`,
   * `WWW-Authenticate`); a name whose value is undefined is left out (so that
   * answers built with optional headers type-check and mean what they say)
   */
  headers?: Record<string, string | undefined>;
  /**
   * accepted: the subprotocol to answer, one of `info.protocols` ("" for none);
   * default: the first of the client's offer in the server's `protocols`
   */
  protocol?: string;
}

/**
 * Decides whether a connection may upgrade, before the 101 is written (the
 * handshake waits on the IO thread meanwhile, at most `handshakeTimeout`).
 * Throwing or rejecting refuses with 500 and emits an `IxWebSocketWarning`
 * (code `IXWS_VERIFY_CLIENT_FAILED`).
 */
export type VerifyClient = (
  info: VerifyClientInfo,
) => boolean | VerifyClientAnswer | PromiseLike<boolean | VerifyClientAnswer>;

/** permessage-deflate (RFC 7692): what a client offers, what a server accepts. */
export interface PerMessageDeflateOptions {
  /** default true */
  enabled?: boolean;
  /** default false */
  clientNoContextTakeover?: boolean;
  /** default false */
  serverNoContextTakeover?: boolean;
  /** 8..15, default 15 */
  serverMaxWindowBits?: number;
  /** 8..15, default 15 */
  clientMaxWindowBits?: number;
  /** bytes; smaller messages are sent uncompressed (default 1024) */
  threshold?: number;
}

/** TLS settings (`wss://` clients; servers serving TLS when `tls` is given). */
export interface TlsOptions {
  /** PEM text */
  cert?: string;
  /** PEM text */
  key?: string;
  /**
   * PEM CA certificates. Client: the CAs trusted for the server; given, they
   * replace the system store (as Node's tls does). Server: the CAs client
   * certificates must chain to (required with verifyPeer).
   */
  ca?: string;
  /** path of a PEM certificate */
  certFile?: string;
  /** path of a PEM key */
  keyFile?: string;
  /** a file of PEM CA certificates, as `ca` */
  caFile?: string;
  /** OpenSSL cipher list */
  ciphers?: string;
  /**
   * client: verify the server (default true); server: require a client certificate
   * verified against `ca`/`caFile`, which are then required (default false)
   */
  verifyPeer?: boolean;
  /** client: skip the host name check (default false) */
  disableHostnameValidation?: boolean;
  /** client: SNI / name to verify (default: the url's host) */
  servername?: string;
  /** the passphrase of an encrypted private key (`key` / `keyFile`) */
  passphrase?: string;
  /** "TLSv1.2" (default) or "TLSv1.3": the lowest version accepted */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /** "TLSv1.2" or "TLSv1.3" (default): the highest version offered */
  maxVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** The options servers and clients both have. */
export interface CommonOptions {
  /** the event callback */
  method?: EventMethod;
  /** handed back to `method` untouched */
  worker?: unknown;
  /** handed back to `method` untouched */
  window?: unknown;
  /** handed back to `method` untouched */
  process?: unknown;
  /** seconds between pings; -1 (default) or 0 off */
  pingInterval?: number;
  /**
   * with `pingInterval`: seconds a ping may go unanswered (no pong, nor any other frame from the
   * peer) before the connection is closed with 1011, counted from the oldest unanswered ping;
   * -1 (default) or 0 off
   */
  pingTimeout?: number;
  /** answer pings automatically (default true) */
  enablePong?: boolean;
  /** default: enabled, window bits 15, threshold 1024 */
  perMessageDeflate?: PerMessageDeflateOptions;
  /** neither offer nor accept compression (default false) */
  disablePerMessageDeflate?: boolean;
  /** a server serves TLS when given; null turns it off again */
  tls?: TlsOptions | null;
  /** bytes of a message (after inflate); a larger one fails the connection with 1009 (default 100 MiB) */
  maxPayload?: number;
  /** bytes of the HTTP upgrade head (default 16384) */
  maxHeaderSize?: number;
  /** headers of the HTTP upgrade head (default 100) */
  maxHeaders?: number;
  /**
   * bytes queued per connection beyond which send fails (default 128 MiB); while
   * the queue (pongs and close frames included) is over it, the connection is not
   * read until it drains
   */
  sendHighWaterMark?: number;
  /**
   * inline mode (default false, or true when the environment variable
   * IXWS_INLINE is "1" or "true" when the object is created): the engine runs
   * this server's or client's sockets, timers and DNS on the JavaScript
   * thread's own event loop, as uWebSockets.js does, and delivers its events
   * without a hop between threads (lower latency and CPU per message). The
   * engine then shares this thread: JavaScript work delays socket IO (pongs,
   * reads, writes) and the reverse. Read at each start.
   */
  inlineLoop?: boolean;
  /**
   * lend binary payloads to their event (default false), as uWebSockets.js
   * does: `ctx.data` of a binary message, fragment, ping or pong is valid only
   * until the method returns (an async method: until its first `await`).
   * Afterwards a payload of 64 KiB or more reads as empty (its ArrayBuffer is
   * detached) and its memory serves the next large message at once; copy what
   * you keep (`Buffer.from(ctx.data)`). Sending or publishing it from the
   * method with this package's commands is safe (they copy what the socket
   * does not take at once); a Node stream's write() needs a copy. Saves the
   * garbage collector's work and cold memory per large message. Read at every
   * event.
   */
  borrowedPayloads?: boolean;
}

/**
 * Options of `websocketServer`. Limits for untrusted peers: README, "Limits for
 * untrusted peers".
 */
export interface ServerOptions extends CommonOptions {
  /** default 8080; 0 picks a free port (reported as `port` by the start) */
  port?: number;
  /** default "127.0.0.1" */
  host?: string;
  /** listen backlog (default 511, as Node's net.Server; the kernel caps it at net.core.somaxconn) */
  backlog?: number;
  /**
   * no listener of its own (default false): start() binds nothing, and the
   * connections come from `handleUpgrade(req, socket, head)` in the 'upgrade'
   * event of a Node `http.Server` (README, "Attach to an existing server");
   * `host`, `port` and `backlog` are ignored and `tls` is refused
   */
  noServer?: boolean;
  /** open WebSocket connections; an upgrade beyond it gets HTTP 503 (default 128) */
  maxConnections?: number;
  /** seconds allowed for a client's opening handshake, `verifyClient` included (default 10) */
  handshakeTimeout?: number;
  /**
   * subprotocols this server speaks (RFC 7230 tokens): the first of a client's
   * offer found here is answered, none when nothing matches (default [])
   */
  protocols?: string[];
  /**
   * origins allowed to connect, e.g. `["https://app.example.com"]`: a request
   * whose Origin header is another gets HTTP 403, decided on the IO thread;
   * a request without Origin (not a browser) is not refused; [] off (default)
   */
  allowedOrigins?: string[];
  /** decides each upgrade before the 101 (see VerifyClient); null removes it */
  verifyClient?: VerifyClient | null;
  /**
   * sockets in their opening handshake (accepted, not yet upgraded), counted apart
   * from maxConnections; a socket beyond it gets HTTP 503 at once, or is closed on a
   * TLS server (default 512)
   */
  maxHandshakes?: number;
  /** seconds a new socket may stay silent before it is closed; 0 off (default 5) */
  firstByteTimeout?: number;
  /**
   * sockets (handshaking and open) from one IP address; beyond it HTTP 429 at once,
   * or a close on a TLS server; 0 off (default 0: behind NAT or a proxy many clients
   * share an address)
   */
  maxConnectionsPerAddress?: number;
  /**
   * bytes held in unfinished messages across all connections (after inflate,
   * fragment events not yet consumed included); the connection that would go
   * beyond it is closed with 1009; 0 off (default 256 MiB)
   */
  maxUnfinishedBytes?: number;
  /**
   * Linux SO_REUSEPORT: several servers (processes, worker threads) listen on the
   * same host and port and the kernel spreads connections over them (default
   * false: the port is exclusive); start fails where the platform lacks it
   */
  reusePort?: boolean;
  /**
   * Carries publishes to the servers of other processes or machines
   * (`redisBus` from 'ix-websocket/redis', or any {@link Bus}); kept by the
   * JavaScript facade, never read by the native side
   */
  bus?: Bus;
}

/** Options of `websocketClient`. */
export interface ClientOptions extends CommonOptions {
  /** `ws://` or `wss://`, read as WHATWG `URL` reads it */
  url?: string;
  /** extra request headers */
  headers?: Record<string, string>;
  /**
   * subprotocols to offer (RFC 7230 tokens), in order of preference; a server
   * answering one not offered fails the start (default [])
   */
  protocols?: string[];
  /** retry with exponential backoff (default true) */
  enableAutomaticReconnection?: boolean;
  /** ms, default 1 */
  minWaitBetweenReconnectionRetries?: number;
  /** ms, default 10000 */
  maxWaitBetweenReconnectionRetries?: number;
  /**
   * 0..1 (default 0): each reconnection wait is drawn at random from
   * [wait × (1 − jitter), wait], so clients cut off together do not retry
   * together; 0 keeps the exact sequence min × 2^n
   */
  reconnectionJitter?: number;
  /** seconds for websocketClientStart: DNS, TCP, TLS and handshake (default 20) */
  timeout?: number;
  /**
   * Follow a 301, 302, 303, 307 or 308 answer to the upgrade (default false,
   * as in `ws`): its `Location` (ws, wss, http or https; relative ones are
   * resolved against the url that got it) is connected to instead, within the
   * same `timeout`. Never from `wss://` to `ws://` (the start fails). On a
   * change of host or port, `Authorization`, `Cookie` and the credentials of
   * the url's userinfo are not sent. The start status says where it ended
   * (`uri`) and after how many `redirects`; a reconnection starts again from
   * `url`. Off: a redirect fails the start with its `http_status`.
   */
  followRedirects?: boolean;
  /** with `followRedirects`: the most redirects one attempt follows (default 10); one more fails the start */
  maxRedirects?: number;
  /**
   * An HTTP proxy for every connection (default `""`: none).
   * `"http://[user:password@]host:port"`: `CONNECT` through it, with Basic
   * `Proxy-Authorization` from the userinfo (percent-decoded); for `wss://`
   * TLS runs inside the tunnel and the certificate is checked against the
   * target host, not the proxy. `"env"`: the proxy the environment names at
   * each start, as curl reads it: `https_proxy`/`HTTPS_PROXY` for `wss://`,
   * `http_proxy`/`HTTP_PROXY` for `ws://` (lower case first), none for a host
   * `no_proxy`/`NO_PROXY` lists (comma-separated; `*`; a name also covers its
   * subdomains, with or without a leading dot; `host:port`; IP addresses and
   * CIDR ranges). A proxy that refuses (407, 403, 502, …) fails the start with
   * its status in `http_status` and `errorStr` such as
   * `"proxy refused CONNECT: 407 Proxy Authentication Required"`.
   * Anything else than `""`, `"env"` or an `http://` url throws a TypeError.
   */
  proxy?: string;
}

/** A server object: its configuration plus `ref` (negative integer). */
export interface ServerObject extends ServerOptions {
  /** the server's ref: a negative integer, -1, -2, …: the free one nearest 0 */
  ref: number;
  /** set on send: target connection refs */
  clients?: number[];
  /** send: false sends bytes as a text frame */
  binary?: boolean;
}

/** A client object: its configuration plus `ref` (positive integer). */
export interface ClientObject extends ClientOptions {
  /** the client's ref: a positive integer, 1, 2, …: the lowest free one */
  ref: number;
  /** send: false sends bytes as a text frame */
  binary?: boolean;
}

/** What `websocketServerStart` returns. */
export interface ServerStartStatus {
  /** true when the server listens (or, with `noServer`, is ready for `handleUpgrade`) */
  success: boolean;
  /** where it listens ("Listening on 127.0.0.1:8080"), or why it failed */
  message: string;
  /** the port listened on (present on success) */
  port?: number;
}

/** What `websocketClientStart` resolves with: the first attempt's outcome. */
export interface ClientStartStatus {
  /** true when the first attempt reached the open state */
  success: boolean;
  /** the upgrade's answer (101 on success), or the proxy's refusal of CONNECT; 0 when none came */
  http_status: number;
  /** why the attempt failed ("" on success) */
  errorStr: string;
  /** the url connected to last: `url`, or where `followRedirects` led */
  uri: string;
  /**
   * the headers of the server's answer to the upgrade: the 101's, or those of
   * a refusal (e.g. `WWW-Authenticate` with a 401, `Retry-After` with a 503),
   * or of a proxy's refusal of CONNECT (`Proxy-Authenticate`); empty when no
   * answer came
   */
  headers: Record<string, string>;
  /** the subprotocol the server chose ("" when none) */
  protocol: string;
  /** redirects followed on the way (0 without `followRedirects`) */
  redirects: number;
  /** only for an unknown or cleared ref: why nothing was started (as every unknown-ref status) */
  message?: string;
}

/** One send's outcome. */
export interface SendStatus {
  /** the frame was queued for the connection */
  success: boolean;
  /** compressing the payload (permessage-deflate) failed */
  compressionError: boolean;
  /** payload bytes given (a string's UTF-8 bytes) */
  payloadSize: number;
  /** payload bytes after compression */
  wireSize: number;
  /** bytes queued on the connection after this send */
  bufferedAmount: number;
  /** why it failed */
  message?: string;
}

/** A server send's outcome for one target connection (`client`). */
export interface ServerSendStatus extends SendStatus {
  /** the target connection's ref */
  client: number;
}

/**
 * What `handleUpgrade` returns. On `success: false` the peer has been answered
 * with an HTTP error (501 for a socket that cannot be adopted, such as an
 * `https` server's, 503 when the server is not started) and the socket closed.
 */
export interface UpgradeStatus {
  /** the socket was handed to the engine, which answers the upgrade */
  success: boolean;
  /** why not ("" on success) */
  message: string;
}

/** What a command returns for an unknown or cleared ref. */
export interface RefStatus {
  /** always false */
  success: false;
  /** names the ref, e.g. "Unknown server ref -3" */
  message: string;
}

/** A string (text frame) or bytes (binary frame). */
export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;

/**
 * What the server commands take: a server object as `websocketServer` returned
 * it, or any object with `ref` and the properties to update (`clients` and
 * `binary` apply to one send only).
 */
export type ServerArg = Partial<ServerObject> & {
  /** the server's ref */
  ref: number;
};

/** What the client commands take: a client object, or `ref` plus properties to update. */
export type ClientArg = Partial<ClientObject> & {
  /** the client's ref */
  ref: number;
};

/** The engine's pool of recycled large message buffers (process-wide). */
export interface BufferPoolStats {
  /** buffers held for reuse now */
  pooled: number;
  /** their total capacity in bytes */
  pooledBytes: number;
  /** large buffers served from the pool since the process started */
  hits: number;
  /** large buffers that had to be allocated */
  misses: number;
}

/** The native module's exports. */
export type { Binding } from '../binding';

// ---- Topics and buses (publish/subscribe across processes) ----

/** What `websocketServerSubscribe` / `websocketServerUnsubscribe` return. */
export interface TopicStatus {
  /** false (with `message`) for an unknown ref, a connection that is not open or a stopped server */
  success: boolean;
  /** why it failed ("" on success) */
  message: string;
  /** the connection's ref, as given */
  client: number;
  /** the topic, as given */
  topic: string;
  /** the topic's subscribers on this server afterwards */
  subscribers: number;
}

/** What a publish did on this server, and whether the bus took the message. */
export interface PublishStatus {
  /** false (with `message`) for an unknown ref, a stopped server or text that is not UTF-8 */
  success: boolean;
  /** why it failed ("" on success) */
  message: string;
  /** the topic, as given */
  topic: string;
  /** connections of this server subscribed to the topic when it was published */
  subscribers: number;
  /** of them, those the frame was queued for */
  sent: number;
  /** those that refused it (closing, over `sendHighWaterMark`) */
  failed: number;
  /** payload bytes given (a string's UTF-8 bytes) */
  payloadSize: number;
  /** payload bytes summed over the local targets, after compression */
  wireSize: number;
  /**
   * With a bus: whether it accepted the message for the other processes
   * (`success: false` with a `message` while the broker is unreachable: that
   * message does not reach them). Absent without a bus.
   */
  bus?: {
    /** the bus took the message */
    success: boolean;
    /** why not ("" when it did) */
    message: string;
  };
}

/** A topic with subscribers on this server. */
export interface TopicInfo {
  /** the topic */
  topic: string;
  /** its open connections subscribed on this server */
  subscribers: number;
}

/** Where a bus hands what it receives and what goes wrong. */
export interface BusHandler {
  /** A message another process published to a topic this bus subscribed to. */
  message(topic: string, data: Buffer, binary: boolean): void;
  /** Something failed (a publish the broker did not take, a lost connection). */
  error(error: Error, topic?: string): void;
  /** The connection to the broker was lost (false) or is back (true). */
  state(connected: boolean): void;
}

/**
 * Carries publishes between the servers of several processes or machines
 * (`redisBus` from `ix-websocket/redis` is one; any broker with
 * publish/subscribe can be another). One bus serves one server: the server
 * calls `open` when it starts, subscribes to each topic that gets its first
 * local subscriber and unsubscribes when the last one goes, publishes what
 * its application publishes, and calls `close` when it stops.
 *
 * Contract: `publish` never waits on the broker (it returns at once and
 * reports later failures to `handler.error`); messages of one publisher reach
 * every subscriber in publish order; a bus never hands a server the messages
 * that server published itself (it delivered them locally already).
 */
export interface Bus {
  /** Connects to the broker (the server started); what arrives and what fails goes to `handler`. */
  open(handler: BusHandler): void;
  /** Resolves when the broker confirmed the subscription. */
  subscribe(topic: string): Promise<void>;
  /** Resolves when the broker confirmed the topic's subscription ended. */
  unsubscribe(topic: string): Promise<void>;
  /** success false (with message) when the message cannot go now (broker unreachable). */
  publish(
    topic: string,
    data: Buffer,
    binary: boolean,
  ): {
    /** the bus took the message */
    success: boolean;
    /** why not ("" when it did) */
    message: string;
  };
  /** Resolves once the broker is reachable and every (un)subscribe asked so far is confirmed. */
  flush(): Promise<void>;
  /** Disconnects and forgets the subscriptions (the server stopped or was cleared). */
  close(): Promise<void>;
  /** Whether the broker is reachable now. */
  readonly connected: boolean;
}
