// WebSocketServer: an EventEmitter over the server commands. It owns one
// server ref and routes the native event callback to events; every operation
// goes through the same commands as the functional API.
import { EventEmitter } from 'events';
import { binding } from './binding';
import {
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
} from './commands';
import type {
  CloseContext,
  DataContext,
  ErrorContext,
  EventMethod,
  EventType,
  OpenContext,
  ServerArg,
  RefStatus,
  SendData,
  ServerObject,
  ServerOptions,
  ServerSendStatus,
  ServerStartStatus,
} from './types';

/** Server events: each listener gets the connection's ref and the context. */
export interface ServerEvents {
  open: [client: number, context: OpenContext];
  message: [client: number, context: DataContext];
  close: [client: number, context: CloseContext];
  /** informational (e.g. a failed handshake); emitted only while listened to */
  error: [client: number, context: ErrorContext];
  ping: [client: number, context: DataContext];
  pong: [client: number, context: DataContext];
  fragment: [client: number, context: DataContext];
}

export interface ServerSendOptions {
  /** target connection refs (default: every open connection) */
  clients?: number[];
  /** false sends bytes as a text frame (they must be valid UTF-8) */
  binary?: boolean;
}

/** Refs are never 0, so 0 makes a cleared instance's commands fail cleanly. */
const NO_REF = 0;

export class WebSocketServer extends EventEmitter<ServerEvents> {
  /** The seed's `ref` of this server (negative). Freed, and reusable by others, after clear(). */
  readonly handle: number;
  /** The port listened on after start() (the real one with `port: 0`), else the configured port. */
  port: number;
  private config: ServerObject;
  private userMethod: EventMethod | undefined;
  private cleared = false;

  constructor(options: ServerOptions = {}) {
    super();
    this.userMethod = options.method;
    const method: EventMethod = (server, client, type, context, worker, window, process) => {
      if (this.userMethod) this.userMethod(server, client, type, context, worker, window, process);
      this.dispatch(type, client, context);
    };
    this.config = websocketServer({ ...options, method });
    this.handle = this.config.ref;
    this.port = typeof this.config.port === 'number' ? this.config.port : 8080;
  }

  /** The configuration object as last returned by the native side (create or stop). */
  get object(): ServerObject {
    return { ...this.config };
  }

  /** Starts listening; `options` (all but `method`) update the configuration first. */
  start(options?: Omit<ServerOptions, 'method'>): ServerStartStatus {
    const status = websocketServerStart(this.arg(options));
    if (status.success && typeof status.port === 'number') this.port = status.port;
    return status;
  }

  /** Closes every connection (1001) and releases the port; returns the updated object. */
  stop(options?: Omit<ServerOptions, 'method'>): ServerObject | RefStatus {
    const result = websocketServerStop(this.arg(options));
    if ('ref' in result) {
      this.config = result;
      if (typeof result.port === 'number') this.port = result.port;
    }
    return result;
  }

  /** Sends to every connection or to `options.clients`; one status per target. */
  send(data: SendData, options?: ServerSendOptions): ServerSendStatus[] {
    const arg = this.arg();
    if (options?.clients !== undefined) arg.clients = options.clients;
    if (options?.binary !== undefined) arg.binary = options.binary;
    return websocketServerSend(arg, data);
  }

  /** Refs of the open connections. */
  clients(): number[] {
    return websocketServerClients(this.arg());
  }

  /** Starts the close handshake of one connection; false if it is not open. */
  close(client: number, code?: number, reason?: string): boolean {
    if (code === undefined) return binding.websocketServerCloseClient(this.arg(), client);
    if (reason === undefined) return binding.websocketServerCloseClient(this.arg(), client, code);
    return binding.websocketServerCloseClient(this.arg(), client, code, reason);
  }

  /** Bytes queued for sending on one connection. */
  bufferedAmount(client: number): number {
    return binding.bufferedAmount(this.ref_(), client);
  }

  /** Disposes the server at once (connections dropped) and frees its ref. */
  clear(): {} | RefStatus {
    const result = websocketServerClear(this.arg());
    this.cleared = true;
    return result;
  }

  /** A started server keeps the process alive (the default), like net.Server. */
  ref(): this {
    binding.setKeepAlive(this.ref_(), true);
    return this;
  }

  /** Lets the process exit while this server is listening. */
  unref(): this {
    binding.setKeepAlive(this.ref_(), false);
    return this;
  }

  /** `using server = new WebSocketServer(...)` clears it at scope exit. */
  [Symbol.dispose](): void {
    if (!this.cleared) this.clear();
  }

  private ref_(): number {
    return this.cleared ? NO_REF : this.handle;
  }

  private arg(options?: Omit<ServerOptions, 'method'> & { method?: EventMethod }): ServerArg {
    if (options === undefined) return { ref: this.ref_() };
    // A method given later replaces the user's callback, never the dispatcher.
    const { method, ...rest } = options;
    if (method !== undefined) this.userMethod = method;
    return { ...rest, ref: this.ref_() };
  }

  private dispatch(type: EventType, client: number, context: unknown): void {
    // Errors here are informational; an unheard 'error' must not throw.
    if (type === 'error' && this.listenerCount('error') === 0) return;
    (this.emit as (event: string, ...args: unknown[]) => boolean)(type, client, context);
  }
}
