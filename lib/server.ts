// WebSocketServer: an EventEmitter over the server commands. It owns one
// server ref and routes the native event callback to events; every operation
// goes through the same commands as the functional API.
import type { IncomingMessage } from 'http';
import type { Duplex } from 'stream';
import { binding } from './binding';
import * as bus from './bus';
import { Endpoint, inCallerTerms } from './endpoint';
import {
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerPing,
  websocketServerPublish,
  websocketServerHandleUpgrade,
  websocketServerSend,
  websocketServerSubscribe,
  websocketServerTopics,
  websocketServerUnsubscribe,
  websocketServerStart,
  websocketServerStop,
} from './commands';
import type {
  PublishStatus,
  TopicInfo,
  TopicStatus,
  CloseContext,
  DataContext,
  ErrorContext,
  EventType,
  OpenContext,
  ServerArg,
  RefStatus,
  SendData,
  ServerObject,
  ServerOptions,
  ServerSendStatus,
  ServerStartStatus,
  UpgradeStatus,
} from './types';

/** Server events: each listener gets the connection's ref and the context. */
export interface ServerEvents {
  /** A connection completed its opening handshake. */
  open: [client: number, context: OpenContext];
  /** A whole message arrived (text as a string, binary as a Buffer). */
  message: [client: number, context: DataContext];
  /** A connection ended (each open connection gets exactly one). */
  close: [client: number, context: CloseContext];
  /**
   * A message that failed to decompress (`decompressionError`, then a close with 1007), or with a
   * bus its failures (client 0, a reason starting with `bus:`); emitted only while listened to.
   * Requests refused before the 101 raise none: the client hears the HTTP status.
   */
  error: [client: number, context: ErrorContext];
  /** A ping arrived (answered by the engine unless `enablePong` is false). */
  ping: [client: number, context: DataContext];
  /** A pong arrived. */
  pong: [client: number, context: DataContext];
  /** A frame of a fragmented message that does not complete it. */
  fragment: [client: number, context: DataContext];
  /** With a bus: its connection to the broker was lost (false) or is back (true). */
  bus: [connected: boolean];
}

/** Options of one `WebSocketServer.send`. */
export interface ServerSendOptions {
  /** target connection refs (default: every open connection) */
  clients?: number[];
  /** false sends bytes as a text frame (they must be valid UTF-8) */
  binary?: boolean;
}

/** Options of one `WebSocketServer.publish`. */
export interface PublishOptions {
  /** true sends a string as a binary frame; false sends bytes as text (valid UTF-8) */
  binary?: boolean;
}

/**
 * A WebSocket server: an EventEmitter over the server commands, owning one server ref (README
 * "Usage: the classes"). Create it, `start()` it, and hear its connections through the events of
 * {@link ServerEvents}; `clear()` frees it.
 */
export class WebSocketServer extends Endpoint<ServerEvents> {
  /** The port listened on after start() (the real one with `port: 0`), else the configured port. */
  port: number;
  private config: ServerObject;

  constructor(options: ServerOptions = {}) {
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
    let created!: ServerObject;
    super(options.method, (method) => {
      try {
        created = websocketServer({ ...options, method });
      } catch (e) {
        throw inCallerTerms(e);
      }
      return created.ref;
    });
    this.config = created;
    this.port = typeof this.config.port === 'number' ? this.config.port : 8080;
    bus.onBusState(this.handle, (connected) => this.emit('bus', connected));
  }

  /** The configuration object as last returned by the native side (create or stop). */
  get object(): ServerObject {
    return { ...this.config };
  }

  /**
   * Starts listening; `options` update the configuration first. A `method`
   * among them replaces the callback given to the constructor (listeners
   * still get every event).
   */
  start(options?: ServerOptions): ServerStartStatus {
    let status: ServerStartStatus;
    try {
      status = websocketServerStart(this.arg(options));
    } catch (e) {
      throw inCallerTerms(e);
    }
    if (status.success && typeof status.port === 'number') this.port = status.port;
    return status;
  }

  /** Closes every connection (1001) and releases the port; returns the updated object. */
  stop(options?: ServerOptions): ServerObject | RefStatus {
    let result: ServerObject | RefStatus;
    try {
      result = websocketServerStop(this.arg(options));
    } catch (e) {
      throw inCallerTerms(e);
    }
    if ('ref' in result) {
      this.config = result;
      if (typeof result.port === 'number') this.port = result.port;
    }
    return result;
  }

  /** Sends to every connection or to `options.clients`; one status per target. */
  send(data: SendData, options?: ServerSendOptions): ServerSendStatus[] {
    const arg: ServerArg = this.arg();
    if (options?.clients !== undefined) arg.clients = options.clients;
    if (options?.binary !== undefined) arg.binary = options.binary;
    try {
      return websocketServerSend(arg, data);
    } catch (e) {
      throw inCallerTerms(e);
    }
  }

  /**
   * `noServer` servers: takes over the connection of an `http.Server`
   * 'upgrade' event (`server.on('upgrade', (req, socket, head) =>
   * wss.handleUpgrade(req, socket, head))`). The server must be started. The
   * connection then raises the same events as one the server accepted itself.
   * On `success: false` (an `https` server's socket, which cannot be adopted,
   * or a server not started) the peer got an HTTP error and the socket is
   * closed. TypeError for a server without `noServer` or arguments that are
   * not those of an 'upgrade' event.
   */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): UpgradeStatus {
    return websocketServerHandleUpgrade(this.arg(), req, socket, head);
  }

  /** Refs of the open connections. */
  clients(): number[] {
    return websocketServerClients(this.arg());
  }

  /**
   * Starts the close handshake of one connection; false if it is not open.
   * `code` (default 1000) is one an application may send: 1000-1003, 1007-1014
   * or 3000-4999; any other (RFC 6455 reserves 1004-1006, 1015 and 1016-2999)
   * throws a TypeError. `reason` is at most 123 bytes of UTF-8.
   */
  close(client: number, code?: number, reason?: string): boolean {
    if (code === undefined) return binding.websocketServerCloseClient(this.arg(), client);
    if (reason === undefined) return binding.websocketServerCloseClient(this.arg(), client, code);
    return binding.websocketServerCloseClient(this.arg(), client, code, reason);
  }

  /**
   * Sends a ping to one connection (`data`: at most 125 bytes, else TypeError);
   * the peer's pong arrives as a `pong` event. False when it is not open.
   */
  ping(client: number, data?: SendData): boolean {
    return websocketServerPing(this.arg(), client, data);
  }

  /** Bytes queued for sending on one connection. */
  bufferedAmount(client: number): number {
    return binding.bufferedAmount(this.ref_(), client);
  }

  /** Subscribes an open connection to a topic; the subscription ends with the connection. */
  subscribe(client: number, topic: string): TopicStatus {
    return websocketServerSubscribe(this.arg(), client, topic);
  }

  /** Ends a connection's subscription to a topic. */
  unsubscribe(client: number, topic: string): TopicStatus {
    return websocketServerUnsubscribe(this.arg(), client, topic);
  }

  /** Sends to the topic's subscribers here and, with a bus, in every other process. */
  publish(topic: string, data: SendData, options?: PublishOptions): PublishStatus {
    const arg: ServerArg & { topic?: string } = this.arg();
    arg.topic = topic;
    if (options?.binary !== undefined) arg.binary = options.binary;
    try {
      return websocketServerPublish(arg, data);
    } catch (e) {
      throw inCallerTerms(e, (f) => (f === 'topic' ? f : `options.${f}`));
    }
  }

  /** The topics with subscribers on this server, with their counts. */
  topics(): TopicInfo[] {
    return websocketServerTopics(this.arg());
  }

  /**
   * With a bus: resolves once the broker is reachable and has confirmed every
   * subscription asked so far (a publish from another process reaches this
   * server's subscribers from then on). Without one: resolves at once.
   */
  async busReady(): Promise<void> {
    const b = bus.busOf(this.ref_());  // none once cleared (the ref may be another server's)
    if (b) await b.flush();
  }

  protected clearNative(arg: ServerArg): {} | RefStatus {
    return websocketServerClear(arg);
  }

  protected dispatch(type: EventType, client: number, context: unknown): void {
    (this.emit as (event: string, ...args: unknown[]) => boolean)(type, client, context);
  }
}
