// WebSocketClient: an EventEmitter over the client commands, one client ref
// per instance, sharing the functional API's code path.
import { binding } from './binding';
import { Endpoint, inCallerTerms } from './endpoint';
import { whatwgHref } from './url';
import {
  websocketClient,
  websocketClientClear,
  websocketClientPing,
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
  EventType,
  OpenContext,
  ClientArg,
  RefStatus,
  SendData,
  SendStatus,
} from './types';

/** Client events: each listener gets the context. */
export interface ClientEvents {
  /** The connection completed its opening handshake. */
  open: [context: OpenContext];
  /** A whole message arrived (text as a string, binary as a Buffer). */
  message: [context: DataContext];
  /** The connection ended (with automatic reconnection: `wait_time` says when the next attempt comes). */
  close: [context: CloseContext];
  /**
   * A failed attempt (with reconnection: the wait before the next), or a message that failed to
   * decompress (`decompressionError`, then a close with 1007); emitted only while listened to.
   */
  error: [context: ErrorContext];
  /** A ping arrived (answered by the engine unless `enablePong` is false). */
  ping: [context: DataContext];
  /** A pong arrived. */
  pong: [context: DataContext];
  /** A frame of a fragmented message that does not complete it. */
  fragment: [context: DataContext];
}

/** Options of one `WebSocketClient.send`. */
export interface ClientSendOptions {
  /** false sends bytes as a text frame (they must be valid UTF-8) */
  binary?: boolean;
}

/**
 * A WebSocket client: an EventEmitter over the client commands, owning one client ref (README
 * "Usage: the classes"). Create it with a url or options, `start()` it (resolves with the first
 * attempt's outcome), and hear the connection through the events of {@link ClientEvents};
 * `clear()` frees it.
 */
export class WebSocketClient extends Endpoint<ClientEvents> {
  private config: ClientObject;

  /** `options` may be just the url. */
  constructor(options: ClientOptions | string = {}) {
    if (typeof options !== 'string' && (typeof options !== 'object' || options === null)) {
      throw new TypeError('options must be an object or a url string');
    }
    const opts: ClientOptions = typeof options === 'string' ? { url: options } : options;
    let created!: ClientObject;
    super(opts.method, (method) => {
      try {
        created = websocketClient({ ...opts, method });
      } catch (e) {
        throw inCallerTerms(e);
      }
      return created.ref;
    });
    this.config = created;
  }

  /** The configuration object as last returned by the native side (create or stop). */
  get object(): ClientObject {
    return { ...this.config };
  }

  /** The configured url. */
  get url(): string | undefined {
    return this.config.url;
  }

  /**
   * Connects; `options` (plus `timeout` in s) update the configuration first.
   * A `method` among them replaces the callback given to the constructor
   * (listeners still get every event).
   */
  start(options?: ClientOptions): Promise<ClientStartStatus> {
    if (typeof options?.url === 'string') this.config = { ...this.config, url: whatwgHref(options.url) };
    try {
      return websocketClientStart(this.arg(options));
    } catch (e) {
      throw inCallerTerms(e);
    }
  }

  /** Closes (1000) and stops reconnecting; returns the updated object. */
  stop(options?: ClientOptions): ClientObject | RefStatus {
    let result: ClientObject | RefStatus;
    try {
      result = websocketClientStop(this.arg(options));
    } catch (e) {
      throw inCallerTerms(e);
    }
    if ('ref' in result) this.config = result;
    return result;
  }

  /** Strings go as text frames, bytes as binary unless `binary: false`. */
  send(data: SendData, options?: ClientSendOptions): SendStatus {
    const arg: ClientArg = this.arg();
    if (options?.binary !== undefined) arg.binary = options.binary;
    try {
      return websocketClientSend(arg, data);
    } catch (e) {
      throw inCallerTerms(e);
    }
  }

  /**
   * Sends a ping (`data`: at most 125 bytes, else TypeError); the server's pong
   * arrives as a `pong` event. False when not open.
   */
  ping(data?: SendData): boolean {
    return websocketClientPing(this.arg(), data);
  }

  /** Bytes queued for sending. */
  get bufferedAmount(): number {
    return binding.bufferedAmount(this.ref_());
  }

  protected clearNative(arg: ClientArg): {} | RefStatus {
    return websocketClientClear(arg);
  }

  protected dispatch(type: EventType, _client: number, context: unknown): void {
    (this.emit as (event: string, ...args: unknown[]) => boolean)(type, context);
  }
}
