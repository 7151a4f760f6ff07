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
import { inspect } from 'util';
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
  /**
   * A connection whose Redis has not answered a command (or finished its
   * handshake) for this long, ms, is treated as lost: reported, dropped and
   * reconnected (default 5000). Without it a Redis that stops answering
   * without closing the socket (frozen, a half-open link) would take every
   * publish as sent, hold them in memory and deliver them late.
   */
  answerTimeout?: number;
  /** More ioredis options, given to both connections. */
  redisOptions?: Record<string, unknown>;
}

// The message format: version, flags (bit 0: binary), the sender's id, payload.
const VERSION = 1;
const HEADER = 2 + 8;
const DEFAULT_MAX_MESSAGE = 8 * 1024 * 1024 - HEADER;
/** Publishes handed to Redis and not answered yet, bytes, beyond which new ones are refused. */
const MAX_IN_FLIGHT = 64 * 1024 * 1024;

type RedisConnection = {
  status: string;
  on(event: string, fn: (...args: any[]) => void): unknown;
  once(event: string, fn: (...args: any[]) => void): unknown;
  removeListener(event: string, fn: (...args: any[]) => void): unknown;
  publish(channel: string, message: Buffer): Promise<number>;
  ping(): Promise<unknown>;
  disconnect(reconnect?: boolean): void;
  subscribe(...channels: string[]): Promise<unknown>;
  unsubscribe(...channels: string[]): Promise<unknown>;
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
  readonly #url: string;
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
  private readonly answerTimeout: number;
  /** Bytes of publishes Redis has not answered yet. */
  private inFlight = 0;
  /** Per connection: when its unanswered probe was sent, or when its handshake began. */
  private readonly since = new Map<RedisConnection, { probe: number; connect: number; dropped: boolean }>();
  private watchdog: ReturnType<typeof setInterval> | undefined;
  /** The confirmation of what the subscribing connection asked again after its last reconnection. */
  private resync: Promise<void> | undefined;
  private readyWait: Promise<void> | undefined;

  constructor(options: RedisBusOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('redisBus options must be an object');
    const {
      url = 'redis://127.0.0.1:6379',
      prefix = 'ixws:',
      maxReconnectWait = 1000,
      maxMessageSize = DEFAULT_MAX_MESSAGE,
      answerTimeout = 5000,
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
    // ioredis also reads options from the query (`?password=...`).
    for (const k of [...parsed.searchParams.keys()]) if (/pass/i.test(k)) parsed.searchParams.set(k, '***');
    const shown = parsed.href;
    if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:')
      throw new TypeError(`options.url must be a redis:// or rediss:// URL: ${shown}`);
    if (typeof prefix !== 'string') throw new TypeError('options.prefix must be a string');
    if (typeof maxMessageSize !== 'number' || !Number.isSafeInteger(maxMessageSize) || maxMessageSize < 0)
      throw new TypeError('options.maxMessageSize must be a whole number of bytes, 0 or more');
    if (typeof maxReconnectWait !== 'number' || !(maxReconnectWait > 0))
      throw new TypeError('options.maxReconnectWait must be a number of ms above 0');
    if (redisOptions === null || typeof redisOptions !== 'object') throw new TypeError('options.redisOptions must be an object');
    if (typeof answerTimeout !== 'number' || !(answerTimeout > 0)) throw new TypeError('options.answerTimeout must be a number of ms above 0');
    this.answerTimeout = answerTimeout;
    this.#url = url;
    this.shownUrl = shown;
    this.maxMessage = maxMessageSize;
    // Channel names travel as UTF-8: compare received ones with what the prefix became (a lone surrogate is U+FFFD).
    this.prefix = Buffer.from(prefix, 'utf8').toString('utf8');
    this.maxWait = maxReconnectWait;
    this.extra = redisOptions;
  }

  /** Logged or inspected, a bus shows its url without the password (and none of its connections' options). */
  [inspect.custom](): string {
    return `RedisBus { url: '${this.shownUrl}', prefix: ${JSON.stringify(this.prefix)}, connected: ${this.connected} }`;
  }

  toJSON(): { url: string; prefix: string } {
    return { url: this.shownUrl, prefix: this.prefix };
  }

  get connected(): boolean {
    const up = (c: RedisConnection | undefined) => c?.status === 'ready' && this.since.get(c)?.dropped !== true;
    return up(this.pub) && up(this.sub);
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
    const pub = new Redis(this.#url, { ...common, enableOfflineQueue: false, maxRetriesPerRequest: 0 });
    // Subscribing: queued until reachable, renewed after each reconnection.
    const sub = new Redis(this.#url, { ...common, enableOfflineQueue: true, maxRetriesPerRequest: null, autoResubscribe: true });
    this.pub = pub;
    this.sub = sub;
    for (const c of [pub, sub]) {
      c.on('error', (e: Error) => this.connectionError(c, e));
      c.on('ready', () => this.stateChanged(c));
      c.on('close', () => this.stateChanged(c));
    }
    sub.on('messageBuffer', (channel: Buffer, message: Buffer) => {
      if (sub === this.sub) this.receive(channel, message);
    });
    // After each reconnection ioredis subscribes again (autoResubscribe) before this runs; a ping
    // answered after it tells flush() that Redis has confirmed those subscriptions.
    sub.on('ready', () => {
      if (sub !== this.sub) return;
      const p = this.track(sub.ping());
      this.resync = p;
      const done = () => {
        if (this.resync === p) this.resync = undefined;
      };
      p.then(done, done);
    });
    for (const c of [pub, sub]) {
      this.since.set(c, { probe: 0, connect: 0, dropped: false });
      c.on('connect', () => {
        const t = this.since.get(c);
        if (t) t.connect = Date.now();
      });
      for (const ev of ['ready', 'close']) {
        c.on(ev, () => {
          const t = this.since.get(c);
          if (t) {
            t.probe = 0;
            t.dropped = false;
            if (ev === 'ready') t.connect = 0;
          }
        });
      }
    }
    this.watchdog = setInterval(() => this.check(), Math.min(1000, this.answerTimeout / 2));
    this.watchdog.unref();
  }

  /** Drops a connection whose Redis does not answer (see answerTimeout); ioredis reconnects it. */
  private check(): void {
    const now = Date.now();
    for (const c of [this.pub, this.sub]) {
      const t = c && this.since.get(c);
      if (!c || !t) continue;
      let silent = false;
      if (c.status === 'connect') silent = t.connect > 0 && now - t.connect > this.answerTimeout;
      else if (c.status === 'ready') {
        if (t.probe > 0) silent = now - t.probe > this.answerTimeout;
        else {
          const sent = (t.probe = now);
          const answered = () => {
            if (t.probe === sent) t.probe = 0;
          };
          c.ping().then(answered, answered);
        }
      }
      if (!silent) continue;
      t.probe = 0;
      t.connect = 0;
      // ioredis ends the socket gracefully and keeps calling it ready until it
      // is gone (disconnectTimeout, 2 s by default): until then this bus
      // calls it lost, refuses publishes and tells the server.
      t.dropped = true;
      this.lastError = `no answer from Redis in ${this.answerTimeout} ms`;
      if (!this.outageReported && this.handler) {
        this.outageReported = true;
        this.handler.error(new Error(`Redis at ${this.shownUrl} does not answer (${this.lastError}); reconnecting`));
      }
      c.disconnect(true);
      this.stateChanged(c);
    }
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
    const t = this.since.get(pub);
    if (t && (t.dropped || (t.probe > 0 && Date.now() - t.probe > this.answerTimeout)))
      return { success: false, message: `Redis does not answer (${this.shownUrl}): not published to other processes` };
    if (this.inFlight + HEADER + data.length > Math.max(MAX_IN_FLIGHT, this.maxMessage + HEADER))
      return { success: false, message: `Redis is not keeping up (${this.inFlight} bytes unanswered): not published to other processes` };
    const header = Buffer.allocUnsafe(HEADER);
    header[0] = VERSION;
    header[1] = binary ? 1 : 0;
    this.id.copy(header, 2);
    // One copy (the caller's bytes may change after this call returns).
    const message = Buffer.concat([header, data], HEADER + data.length);
    const handler = this.handler;
    this.inFlight += message.length;
    const settled = () => {
      if (this.pub === pub) this.inFlight -= message.length;
    };
    pub.publish(this.prefix + topic, message).then(settled, (e: Error) => {
      settled();
      // ioredis words a publish cut off with its connection after maxRetriesPerRequest, an option this bus sets itself.
      const why = /max retries per request/i.test(e.message)
        ? 'the connection to Redis was lost before Redis confirmed it (other processes may or may not get it)'
        : e.message;
      if (this.handler === handler) handler.error(new Error(`publish to "${topic}" failed: ${why}`), topic);
    });
    return { success: true, message: '' };
  }

  async flush(): Promise<void> {
    if (!this.pub || !this.sub) throw new Error('the Redis bus is not open');
    // What was asked so far (not what is asked while this waits: a steady
    // trickle of new topics must not keep it waiting for ever).
    await Promise.allSettled([...this.pending]);
    for (;;) {
      if (!this.pub || !this.sub) throw new Error('the Redis bus is not open');
      if (!this.connected) await this.nextReady();
      else if (this.resync) await Promise.allSettled([this.resync]);
      else return;
    }
  }

  async close(): Promise<void> {
    const { pub, sub } = this;
    this.handler = undefined;
    this.pub = undefined;
    this.sub = undefined;
    this.pending.clear();
    this.resync = undefined;
    this.inFlight = 0;
    this.since.clear();
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
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

  /** One wait shared by every flush (a caller that gives up must not leave listeners behind). */
  private nextReady(): Promise<void> {
    if (!this.readyWait) {
      const w = this.waitReady();
      this.readyWait = w;
      const forget = () => {
        if (this.readyWait === w) this.readyWait = undefined;
      };
      w.then(forget, forget);
    }
    return this.readyWait;
  }

  private waitReady(): Promise<void> {
    return new Promise((resolve, reject) => {
      // A dropped connection (see check) is still 'ready' to ioredis until its socket is gone: its next ready counts.
      const conns = [this.pub, this.sub].filter(
        (c): c is RedisConnection => c !== undefined && (c.status !== 'ready' || this.since.get(c)?.dropped === true),
      );
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
