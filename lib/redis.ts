// ix-websocket/redis: a Bus (types.ts) on Redis pub/sub, through ioredis (an
// optional peer dependency, loaded when the first bus opens).
//
//   import { WebSocketServer } from 'ix-websocket';
//   import { redisBus } from 'ix-websocket/redis';
//   const server = new WebSocketServer({ port: 8080, bus: redisBus({ url: 'redis://127.0.0.1:6379' }) });
//
// One Redis channel per topic that has local subscribers (`prefix` + topic),
// never one per client. Two connections per bus: Redis puts a connection
// that subscribes in a mode where it cannot publish.
// - Publishing never waits on Redis: while the publishing connection is not
//   ready the message is refused at once (the publish status says so; it
//   does not reach the other processes, and nothing is queued to be sent
//   late and out of turn). One connection per publisher keeps its order.
//   A connection learns that Redis went away only when its own socket
//   closes, so the `bus` event (either connection lost) can come a moment
//   before refusals begin; a publish in that moment is accepted, lost with
//   the connection and reported by an error event ("publish to ... failed").
// - The subscribing connection queues subscriptions until Redis is
//   reachable, reconnects by itself and subscribes again to every channel
//   (ioredis autoResubscribe). Messages published while it was away are
//   lost: Redis pub/sub keeps nothing.
// - Each message carries the id of the bus that sent it, so a server does
//   not receive its own publishes (it delivered them locally already).
import { randomBytes } from 'crypto';
import type { Bus, BusHandler } from './types';

export type { Bus, BusHandler } from './types';

/** Options of {@link redisBus}. */
export interface RedisBusOptions {
  /** Redis url (redis:// or rediss://), default "redis://127.0.0.1:6379". */
  url?: string;
  /** Prepended to each topic to name its channel (default "ixws:"). */
  prefix?: string;
  /** Longest wait between reconnection attempts, ms (default 1000). */
  maxReconnectWait?: number;
  /**
   * Largest payload handed to Redis, bytes (default 8 MiB minus the 10-byte
   * header: Redis's default `client-output-buffer-limit pubsub 32mb 8mb 60`
   * disconnects a subscriber whose pending output stays over 8 MiB for 60 s,
   * or passes 32 MiB at once, and with it every message of every topic on
   * that connection). A larger message is still delivered locally; its
   * publish status says it was not sent to the other processes. Raise it
   * together with Redis's limit.
   */
  maxMessageSize?: number;
  /** More ioredis options, given to both connections. */
  redisOptions?: Record<string, unknown>;
}

// The message format: version, flags (bit 0: binary), the sender's id, payload.
const VERSION = 1;
const HEADER = 2 + 8;
const DEFAULT_MAX_MESSAGE = 8 * 1024 * 1024 - HEADER;

type RedisConnection = {
  status: string;
  on(event: string, fn: (...args: any[]) => void): unknown;
  once(event: string, fn: (...args: any[]) => void): unknown;
  removeListener(event: string, fn: (...args: any[]) => void): unknown;
  publish(channel: string, message: Buffer): Promise<number>;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
  disconnect(): void;
};
type RedisConstructor = new (url: string, options: Record<string, unknown>) => RedisConnection;

function loadIoredis(): RedisConstructor {
  let mod: unknown;
  try {
    mod = require('ioredis');
  } catch (e) {
    throw new Error(
      'ix-websocket/redis needs the "ioredis" package (an optional peer dependency): npm install ioredis',
      { cause: e },
    );
  }
  const m = mod as { default?: RedisConstructor; Redis?: RedisConstructor };
  const ctor = m.Redis ?? m.default ?? (mod as RedisConstructor);
  if (typeof ctor !== 'function') throw new Error('ix-websocket/redis: the "ioredis" package has no Redis class');
  return ctor;
}

class RedisBus implements Bus {
  private readonly url: string;
  /** The url as messages show it: without its password. */
  private readonly shownUrl: string;
  private readonly maxMessage: number;
  private readonly prefix: string;
  private readonly maxWait: number;
  private readonly extra: Record<string, unknown>;
  private readonly id = randomBytes(8);
  private handler: BusHandler | undefined;
  private pub: RedisConnection | undefined;
  private sub: RedisConnection | undefined;
  private readonly pending = new Set<Promise<unknown>>();
  private lastState = false;
  private outageReported = false;
  private lastError = '';

  constructor(options: RedisBusOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('redisBus options must be an object');
    const {
      url = 'redis://127.0.0.1:6379',
      prefix = 'ixws:',
      maxReconnectWait = 1000,
      maxMessageSize = DEFAULT_MAX_MESSAGE,
      redisOptions = {},
    } = options;
    if (typeof url !== 'string') throw new TypeError('options.url must be a string');
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TypeError("options.url is not a URL (WHATWG URL refuses it)");
    }
    // A password in the url never shows in a message, these TypeErrors included.
    if (parsed.password !== '') parsed.password = '***';
    const shown = parsed.href;
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
      throw new TypeError(`options.url must be a redis:// or rediss:// URL: ${shown}`);
    if (typeof prefix !== 'string') throw new TypeError('options.prefix must be a string');
    if (typeof maxMessageSize !== 'number' || !Number.isSafeInteger(maxMessageSize) || maxMessageSize < 0)
      throw new TypeError('options.maxMessageSize must be a whole number of bytes, 0 or more');
    if (typeof maxReconnectWait !== 'number' || !(maxReconnectWait > 0))
      throw new TypeError('options.maxReconnectWait must be a number of ms above 0');
    if (redisOptions === null || typeof redisOptions !== 'object') throw new TypeError('options.redisOptions must be an object');
    this.url = url;
    this.shownUrl = shown;
    this.maxMessage = maxMessageSize;
    this.prefix = prefix;
    this.maxWait = maxReconnectWait;
    this.extra = redisOptions;
  }

  get connected(): boolean {
    return this.pub?.status === 'ready' && this.sub?.status === 'ready';
  }

  open(handler: BusHandler): void {
    if (this.handler) throw new Error('this Redis bus is already open (one bus serves one server)');
    const Redis = loadIoredis();
    this.handler = handler;
    this.lastState = false;
    this.outageReported = false;
    const common = {
      retryStrategy: (times: number) => Math.min(50 * times, this.maxWait),
      ...this.extra,
    };
    // Publishing: refused at once while Redis is unreachable (never queued).
    const pub = new Redis(this.url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    // Subscribing: queued until reachable, renewed after each reconnection.
    const sub = new Redis(this.url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.pub = pub;
    this.sub = sub;
    for (const c of [pub, sub]) {
      c.on('error', (e: Error) => this.connectionError(c, e));
      c.on('ready', () => this.stateChanged(c));
      c.on('close', () => this.stateChanged(c));
    }
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => this.receive(channel, message));
  }

  subscribe(topic: string): Promise<void> {
    if (!this.sub) return Promise.reject(new Error('the Redis bus is not open'));
    return this.track(this.sub.subscribe(this.prefix + topic));
  }

  unsubscribe(topic: string): Promise<void> {
    if (!this.sub) return Promise.resolve();
    return this.track(this.sub.unsubscribe(this.prefix + topic));
  }

  publish(topic: string, data: Buffer, binary: boolean): { success: boolean; message: string } {
    const pub = this.pub;
    if (!pub || !this.handler) return { success: false, message: 'the Redis bus is not open' };
    if (data.length > this.maxMessage)
      return {
        success: false,
        message: `${data.length} bytes is over the Redis bus's maxMessageSize (${this.maxMessage}): not published to other processes`,
      };
    if (pub.status !== 'ready')
      return { success: false, message: `Redis is unreachable (${this.shownUrl}): not published to other processes` };
    const header = Buffer.allocUnsafe(HEADER);
    header[0] = VERSION;
    header[1] = binary ? 1 : 0;
    this.id.copy(header, 2);
    // One copy (the caller's bytes may change after this call returns).
    const message = Buffer.concat([header, data], HEADER + data.length);
    const handler = this.handler;
    pub.publish(this.prefix + topic, message).catch((e: Error) => {
      if (this.handler === handler) handler.error(new Error(`publish to "${topic}" failed: ${e.message}`), topic);
    });
    return { success: true, message: '' };
  }

  async flush(): Promise<void> {
    for (;;) {
      if (!this.pub || !this.sub) throw new Error('the Redis bus is not open');
      await Promise.allSettled([...this.pending]);
      if (!this.connected) await this.nextReady();
      else if (this.pending.size === 0) return;
    }
  }

  async close(): Promise<void> {
    const { pub, sub } = this;
    this.handler = undefined;
    this.pub = undefined;
    this.sub = undefined;
    this.pending.clear();
    pub?.disconnect();
    sub?.disconnect();
  }

  private track(p: Promise<unknown>): Promise<void> {
    const done = p.then(() => undefined);
    this.pending.add(done);
    const forget = () => this.pending.delete(done);
    done.then(forget, forget);
    return done;
  }

  private nextReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      const conns = [this.pub, this.sub].filter((c): c is RedisConnection => c !== undefined && c.status !== 'ready');
      if (conns.length === 0) return resolve();
      const c = conns[0];
      const onReady = () => {
        c.removeListener('end', onEnd);
        resolve();
      };
      const onEnd = () => {
        c.removeListener('ready', onReady);
        reject(new Error('the Redis bus was closed'));
      };
      c.once('ready', onReady);
      c.once('end', onEnd);
    });
  }

  private connectionError(c: RedisConnection, e: Error): void {
    if (c !== this.pub && c !== this.sub) return;
    this.lastError = e.message;
    if (!this.connected && !this.outageReported && this.handler) {
      this.outageReported = true;
      this.handler.error(new Error(`Redis unreachable at ${this.shownUrl} (${e.message}); reconnecting`));
    }
  }

  private stateChanged(c: RedisConnection): void {
    if ((c !== this.pub && c !== this.sub) || !this.handler) return;
    const now = this.connected;
    if (now === this.lastState) return;
    this.lastState = now;
    if (now) this.outageReported = false;
    else if (!this.outageReported) {
      this.outageReported = true;
      this.handler.error(
        new Error(`lost the connection to Redis at ${this.shownUrl}${this.lastError ? ` (${this.lastError})` : ''}; reconnecting`),
      );
    }
    this.handler.state(now);
  }

  private receive(channel: Buffer, message: Buffer): void {
    const handler = this.handler;
    if (!handler) return;
    const name = channel.toString('utf8');
    if (!name.startsWith(this.prefix)) return;
    const topic = name.slice(this.prefix.length);
    if (message.length < HEADER || message[0] !== VERSION) {
      handler.error(new Error(`a message on channel "${name}" is not in ix-websocket's format: ignored`), topic);
      return;
    }
    if (message.subarray(2, HEADER).equals(this.id)) return;  // ours: delivered locally already
    handler.message(topic, message.subarray(HEADER), (message[1] & 1) === 1);
  }
}

/** A bus on Redis pub/sub (needs the `ioredis` package). */
export function redisBus(options: RedisBusOptions = {}): Bus {
  return new RedisBus(options);
}
