// The exact shape of what the native module (build/Release/ix_websocket.node)
// exports. lib/ re-exports these commands with the same semantics; the types
// below are shared by both layers.

export type EventType = 'open' | 'close' | 'error' | 'fragment' | 'ping' | 'pong' | 'message';

/** message, ping, pong, fragment */
export interface DataContext {
  wireSize: number;
  binary: boolean;
  /** string for text, Buffer for binary */
  data: string | Buffer;
}
/** open: `uri` plus the peer's headers, also added as key/value pairs (seed) */
export interface OpenContext {
  uri: string;
  headers: Record<string, string>;
  [header: string]: unknown;
}
export interface ErrorContext {
  decompressionError: boolean;
  reason: string;
  http_status: number;
  /** ms before the next reconnection attempt (client) */
  wait_time: number;
  retries: number;
}
export interface CloseContext {
  code: number;
  reason: string;
  remote: boolean;
}
export type EventContext = DataContext | OpenContext | ErrorContext | CloseContext;

/** (server, client, type, context, worker, window, process) */
export type EventMethod = (
  server: number,
  client: number,
  type: EventType,
  context: any,
  worker: unknown,
  window: unknown,
  process: unknown,
) => void;

export interface PerMessageDeflateOptions {
  enabled?: boolean;
  clientNoContextTakeover?: boolean;
  serverNoContextTakeover?: boolean;
  /** 8..15 */
  serverMaxWindowBits?: number;
  /** 8..15 */
  clientMaxWindowBits?: number;
  /** bytes; smaller messages are sent uncompressed (default 1024) */
  threshold?: number;
}

export interface TlsOptions {
  /** PEM text */
  cert?: string;
  key?: string;
  /**
   * PEM CA certificates. Client: the CAs trusted for the server; given, they
   * replace the system store (as Node's tls does). Server: the CAs client
   * certificates must chain to (required with verifyPeer).
   */
  ca?: string;
  /** paths */
  certFile?: string;
  keyFile?: string;
  /** a file of PEM CA certificates, as `ca` */
  caFile?: string;
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
}

interface CommonOptions {
  method?: EventMethod;
  worker?: unknown;
  window?: unknown;
  process?: unknown;
  /** seconds; -1 off */
  pingInterval?: number;
  /** seconds; -1 off */
  pingTimeout?: number;
  enablePong?: boolean;
  perMessageDeflate?: PerMessageDeflateOptions;
  disablePerMessageDeflate?: boolean;
  tls?: TlsOptions;
  /** bytes, default 100 MiB */
  maxPayload?: number;
  /** bytes of the HTTP upgrade head, default 16384 */
  maxHeaderSize?: number;
  /** default 100 */
  maxHeaders?: number;
  /**
   * bytes queued per connection beyond which send fails (default 128 MiB); while
   * the queue (pongs and close frames included) is over it, the connection is not
   * read until it drains
   */
  sendHighWaterMark?: number;
}

export interface ServerOptions extends CommonOptions {
  /** default 8080; 0 picks a free port */
  port?: number;
  /** default "127.0.0.1" */
  host?: string;
  /** default 5 */
  backlog?: number;
  /** open WebSocket connections; an upgrade beyond it gets HTTP 503 (default 128) */
  maxConnections?: number;
  /** seconds allowed for a client's opening handshake (default 10) */
  handshakeTimeout?: number;
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
}

export interface ClientOptions extends CommonOptions {
  url?: string;
  /** extra request headers */
  headers?: Record<string, string>;
  /** default true */
  enableAutomaticReconnection?: boolean;
  /** ms, default 1 */
  minWaitBetweenReconnectionRetries?: number;
  /** ms, default 10000 */
  maxWaitBetweenReconnectionRetries?: number;
  /** seconds, for websocketClientStart (default 20) */
  timeout?: number;
}

/** A server object: its configuration plus `ref` (negative). */
export interface ServerObject extends ServerOptions {
  ref: number;
  /** set on send: target connection refs */
  clients?: number[];
  /** send: false sends bytes as a text frame */
  binary?: boolean;
}
/** A client object: its configuration plus `ref` (positive). */
export interface ClientObject extends ClientOptions {
  ref: number;
  binary?: boolean;
}

export interface ServerStartStatus {
  success: boolean;
  message: string;
  /** the port listened on (present on success) */
  port?: number;
}
export interface ClientStartStatus {
  success: boolean;
  http_status: number;
  errorStr: string;
  uri: string;
  headers: Record<string, string>;
}
export interface SendStatus {
  success: boolean;
  compressionError: boolean;
  payloadSize: number;
  wireSize: number;
  /** bytes queued on the connection after this send */
  bufferedAmount: number;
  /** why it failed */
  message?: string;
}
export interface ServerSendStatus extends SendStatus {
  client: number;
}
export interface RefStatus {
  success: false;
  message: string;
}

export type SendData = string | Buffer | ArrayBuffer | ArrayBufferView;
/** What the server commands take: a server object, or `ref` plus properties to update. */
export type ServerArg = Partial<ServerObject> & { ref: number };
/** What the client commands take: a client object, or `ref` plus properties to update. */
export type ClientArg = Partial<ClientObject> & { ref: number };

export interface Binding {
  websocketServer(options?: ServerOptions): ServerObject;
  websocketClient(options?: ClientOptions): ClientObject;
  websocketServerStart(server: ServerArg): ServerStartStatus;
  websocketClientStart(client: ClientArg): Promise<ClientStartStatus>;
  /** the updated copy of the object, or a RefStatus for an unknown ref */
  websocketServerStop(server: ServerArg): ServerObject | RefStatus;
  websocketClientStop(client: ClientArg): ClientObject | RefStatus;
  /** one status per target; [] for an unknown ref */
  websocketServerSend(server: ServerArg, data: SendData): ServerSendStatus[];
  websocketClientSend(client: ClientArg, data: SendData): SendStatus;
  /** {} on success; a RefStatus for an unknown ref */
  websocketServerClear(server: ServerArg): {} | RefStatus;
  websocketClientClear(client: ClientArg): {} | RefStatus;
  /** [] for an unknown ref */
  websocketServerClients(server: ServerArg): number[];

  // Beyond the seed, used by the facade classes.
  /** whether a started object keeps the event loop alive (like net.Server ref/unref) */
  setKeepAlive(ref: number, keepAlive: boolean): boolean;
  /** bytes queued for sending: a client's, or one server connection's */
  bufferedAmount(ref: number, client?: number): number;
  /** close one server-side connection with a code (1000-1003, 1007-1014, 3000-4999) and reason */
  websocketServerCloseClient(server: ServerArg, client: number, code?: number, reason?: string): boolean;
  /** number of IO threads (set IXWS_IO_THREADS before loading to change) */
  ioThreads(): number;
  /** the engine's pool of recycled large message buffers (process-wide) */
  bufferPoolStats(): BufferPoolStats;
  /**
   * How the engine reads a client url when it is given as is (the facade
   * first normalises it with Node's URL): the parts, or `error` for a url a
   * start would refuse (including every url WHATWG URL would read another way).
   */
  parseClientUrl(url: string): ParsedClientUrl;
}

export type ParsedClientUrl =
  | { secure: boolean; host: string; port: number; target: string; error?: undefined }
  | { error: string };

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

declare const binding: Binding;
export default binding;
