// WebSocketClient: an EventEmitter over the client commands, one client ref
// per instance, sharing the functional API's code path.
import { EventEmitter } from 'events';
import { binding } from './binding';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
} from './commands';
import type {
  ClientObject,
  ClientOptions,
  ClientStartStatus,
  CloseContext,
  DataContext,
  ErrorContext,
  EventMethod,
  EventType,
  OpenContext,
  ClientArg,
  RefStatus,
  SendData,
  SendStatus,
} from './types';

/** Client events: each listener gets the context. */
export interface ClientEvents {
  open: [context: OpenContext];
  message: [context: DataContext];
  close: [context: CloseContext];
  /** a failed attempt (with reconnection: the wait before the next); emitted only while listened to */
  error: [context: ErrorContext];
  ping: [context: DataContext];
  pong: [context: DataContext];
  fragment: [context: DataContext];
}

export interface ClientSendOptions {
  /** false sends bytes as a text frame (they must be valid UTF-8) */
  binary?: boolean;
}

const NO_REF = 0;

export class WebSocketClient extends EventEmitter<ClientEvents> {
  /** The seed's `ref` of this client (positive). Freed, and reusable by others, after clear(). */
  readonly handle: number;
  private config: ClientObject;
  private userMethod: EventMethod | undefined;
  private cleared = false;

  /** `options` may be just the url. */
  constructor(options: ClientOptions | string = {}) {
    super();
    const opts: ClientOptions = typeof options === 'string' ? { url: options } : options;
    this.userMethod = opts.method;
    const method: EventMethod = (server, client, type, context, worker, window, process) => {
      if (this.userMethod) this.userMethod(server, client, type, context, worker, window, process);
      this.dispatch(type, context);
    };
    this.config = websocketClient({ ...opts, method });
    this.handle = this.config.ref;
  }

  /** The configuration object as last returned by the native side (create or stop). */
  get object(): ClientObject {
    return { ...this.config };
  }

  /** The configured url. */
  get url(): string | undefined {
    return this.config.url;
  }

  /** Connects; `options` (all but `method`, plus `timeout` in s) update the configuration first. */
  start(options?: Omit<ClientOptions, 'method'>): Promise<ClientStartStatus> {
    if (options?.url !== undefined) this.config = { ...this.config, url: options.url };
    return websocketClientStart(this.arg(options));
  }

  /** Closes (1000) and stops reconnecting; returns the updated object. */
  stop(options?: Omit<ClientOptions, 'method'>): ClientObject | RefStatus {
    const result = websocketClientStop(this.arg(options));
    if ('ref' in result) this.config = result;
    return result;
  }

  /** Strings go as text frames, bytes as binary unless `binary: false`. */
  send(data: SendData, options?: ClientSendOptions): SendStatus {
    const arg = this.arg();
    if (options?.binary !== undefined) arg.binary = options.binary;
    return websocketClientSend(arg, data);
  }

  /** Bytes queued for sending. */
  get bufferedAmount(): number {
    return binding.bufferedAmount(this.ref_());
  }

  /** Disposes the client at once and frees its ref. */
  clear(): {} | RefStatus {
    const result = websocketClientClear(this.arg());
    this.cleared = true;
    return result;
  }

  /** A started client keeps the process alive (the default), like net.Socket. */
  ref(): this {
    binding.setKeepAlive(this.ref_(), true);
    return this;
  }

  /** Lets the process exit while this client is connected or reconnecting. */
  unref(): this {
    binding.setKeepAlive(this.ref_(), false);
    return this;
  }

  /** `using client = new WebSocketClient(...)` clears it at scope exit. */
  [Symbol.dispose](): void {
    if (!this.cleared) this.clear();
  }

  private ref_(): number {
    return this.cleared ? NO_REF : this.handle;
  }

  private arg(options?: Omit<ClientOptions, 'method'> & { method?: EventMethod }): ClientArg {
    if (options === undefined) return { ref: this.ref_() };
    const { method, ...rest } = options;
    if (method !== undefined) this.userMethod = method;
    return { ...rest, ref: this.ref_() };
  }

  private dispatch(type: EventType, context: unknown): void {
    if (type === 'error' && this.listenerCount('error') === 0) return;
    (this.emit as (event: string, ...args: unknown[]) => boolean)(type, context);
  }
}
