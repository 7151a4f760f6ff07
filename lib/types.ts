// The public types, re-exported from binding.d.ts (the single source of truth
// shared with the native layer) with the documentation users see.
import type * as B from '../binding';

/** One of `open`, `close`, `error`, `fragment`, `ping`, `pong`, `message`. */
export type EventType = B.EventType;

/**
 * Context of `message`, `ping`, `pong` and `fragment` events: `wireSize` (payload
 * bytes as they were on the wire, i.e. compressed when permessage-deflate was
 * used), `binary`, and `data` (a string for text, a Buffer for binary).
 */
export type DataContext = B.DataContext;

/**
 * Context of `open`: `uri` (server side: the request target; client side: the
 * url) and the peer's `headers`, which are also added as key/value pairs.
 */
export type OpenContext = B.OpenContext;

/**
 * Context of `error`: `decompressionError`, `reason`, `http_status` (the
 * handshake's status when there was one, else 0), `wait_time` (ms before the
 * next reconnection attempt) and `retries`.
 */
export type ErrorContext = B.ErrorContext;

/** Context of `close`: `code`, `reason`, and `remote` (true when the peer closed). */
export type CloseContext = B.CloseContext;

/** Any event context. */
export type EventContext = B.EventContext;

/**
 * The event callback of the command API, called on the JavaScript thread as
 * `(server, client, type, context, worker, window, process)`; `server` is 0 for
 * client-side events, `client` is the connection's ref on the server side.
 */
export type EventMethod = B.EventMethod;

/** permessage-deflate (RFC 7692): what a client offers, what a server accepts. */
export type PerMessageDeflateOptions = B.PerMessageDeflateOptions;

/** TLS settings (`wss://` clients; servers serving TLS when a cert is given). */
export type TlsOptions = B.TlsOptions;

/**
 * Options of `websocketServer` (defaults: port 8080, host "127.0.0.1", backlog 5,
 * maxConnections 128). Limits for untrusted peers (README, "Limits for untrusted
 * peers"): `maxConnections` (open connections, else HTTP 503), `maxHandshakes`
 * (sockets not yet upgraded, default 512, else 503 or a close on TLS),
 * `firstByteTimeout` (seconds a new socket may stay silent, default 5),
 * `maxConnectionsPerAddress` (default 0: off, else 429 or a close on TLS),
 * `maxUnfinishedBytes` (bytes in unfinished messages across connections, default
 * 256 MiB, else close 1009), `handshakeTimeout`, `maxPayload`, `maxHeaderSize`,
 * `maxHeaders`, `sendHighWaterMark`.
 */
export type ServerOptions = B.ServerOptions;

/** Options of `websocketClient` (defaults: pingInterval -1, enablePong true, reconnection on, 1 ms..10 s). */
export type ClientOptions = B.ClientOptions;

/** A server object: its configuration plus `ref` (negative integer). */
export type ServerObject = B.ServerObject;

/** A client object: its configuration plus `ref` (positive integer). */
export type ClientObject = B.ClientObject;

/** `{ success, message }` plus `port` (the port listened on) on success. */
export type ServerStartStatus = B.ServerStartStatus;

/** `{ success, http_status, errorStr, uri, headers }`. */
export type ClientStartStatus = B.ClientStartStatus;

/** One send's outcome: `success`, `compressionError`, `payloadSize`, `wireSize`, `bufferedAmount`. */
export type SendStatus = B.SendStatus;

/** A server send's outcome for one target connection (`client`). */
export type ServerSendStatus = B.ServerSendStatus;

/** What a command returns for an unknown or cleared ref. */
export type RefStatus = B.RefStatus;

/** A string (text frame) or bytes (binary frame). */
export type SendData = B.SendData;

/**
 * What the server commands take: a server object as `websocketServer` returned
 * it, or any object with `ref` and the properties to update (`clients` and
 * `binary` apply to one send only).
 */
export type ServerArg = B.ServerArg;

/** What the client commands take: a client object, or `ref` plus properties to update. */
export type ClientArg = B.ClientArg;

/** The native module's exports. */
export type Binding = B.Binding;
export type BufferPoolStats = B.BufferPoolStats;
