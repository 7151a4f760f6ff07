// Shared test tools: an event collector with bounded waits, tracked servers
// and clients cleared after each test, and a raw TCP peer that speaks
// hand-made HTTP and frames (to send what a well-behaved client never would).
import * as crypto from 'crypto';
import * as net from 'net';
import { expect } from 'vitest';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
} from '../lib/index';
import type {
  ClientObject,
  ClientOptions,
  EventMethod,
  EventType,
  ServerObject,
  ServerOptions,
} from '../lib/index';

// ---------------------------------------------------------------- waiting

/** Resolves when check() returns a value other than undefined; rejects after timeoutMs. */
export function until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let v: T | undefined;
      try {
        v = check();
      } catch (e) {
        reject(e);
        return;
      }
      if (v !== undefined) return resolve(v);
      if (Date.now() - started > timeoutMs) return reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- events

export interface Ev {
  server: number;
  client: number;
  type: EventType;
  ctx: any;
  worker: unknown;
  window: unknown;
  process: unknown;
}

/** Records every event given to its `method`; waitFor looks at past and future events. */
export class Collector {
  readonly events: Ev[] = [];
  readonly method: EventMethod = (server, client, type, ctx, worker, window, process) => {
    this.events.push({ server, client, type, ctx, worker, window, process });
  };

  of(type: EventType, client?: number): Ev[] {
    return this.events.filter((e) => e.type === type && (client === undefined || e.client === client));
  }

  waitFor(pred: (e: Ev) => boolean, timeoutMs = 5000, what = 'an event'): Promise<Ev> {
    return until(() => this.events.find(pred), timeoutMs, `${what} (seen: ${this.summary()})`);
  }

  waitType(type: EventType, client?: number, timeoutMs = 5000): Promise<Ev> {
    return this.waitFor(
      (e) => e.type === type && (client === undefined || e.client === client),
      timeoutMs,
      `'${type}'${client === undefined ? '' : ` from ${client}`}`,
    );
  }

  /** Waits until n events match and returns them in order. */
  waitCount(pred: (e: Ev) => boolean, n: number, timeoutMs = 5000, what = 'events'): Promise<Ev[]> {
    return until(
      () => {
        const m = this.events.filter(pred);
        return m.length >= n ? m : undefined;
      },
      timeoutMs,
      `${n} ${what} (seen: ${this.summary()})`,
    );
  }

  summary(): string {
    return this.events.map((e) => `${e.type}@${e.client}`).join(', ') || 'none';
  }
}

// ---------------------------------------------------------------- cleanup

const disposers: Array<() => unknown> = [];

/** Registers work for runCleanup() (run in afterEach), last registered first. */
export function defer(fn: () => unknown): void {
  disposers.push(fn);
}

export async function runCleanup(): Promise<void> {
  while (disposers.length) {
    const fn = disposers.pop()!;
    try {
      await fn();
    } catch {
      // cleanup of an already-gone object is fine
    }
  }
}

/** websocketServer + cleared after the test. */
export function newServer(options?: ServerOptions): ServerObject {
  const s = websocketServer(options);
  defer(() => websocketServerClear({ ref: s.ref }));
  return s;
}

export function newClient(options?: ClientOptions): ClientObject {
  const c = websocketClient(options);
  defer(() => websocketClientClear({ ref: c.ref }));
  return c;
}

export interface Started {
  server: ServerObject;
  port: number;
  events: Collector;
}

/** A started loopback server on a free port with a collector as `method`. */
export function startServer(options: ServerOptions = {}): Started {
  const events = new Collector();
  const server = newServer({ host: '127.0.0.1', port: 0, method: events.method, ...options });
  const st = websocketServerStart(server);
  if (!st.success || typeof st.port !== 'number' || st.port <= 0) {
    throw new Error(`server start failed: ${JSON.stringify(st)}`);
  }
  return { server, port: st.port, events };
}

export interface Connected {
  client: ClientObject;
  events: Collector;
  /** the server-side connection ref */
  conn: number;
}

/** A client connected to `srv` without reconnection; waits for both sides' open. */
export async function connectClient(srv: Started, options: ClientOptions = {}, path = '/'): Promise<Connected> {
  const events = new Collector();
  // Connection refs are reused, so "new" means after the events seen so far.
  const seen = srv.events.events.length;
  const client = newClient({
    url: `ws://127.0.0.1:${srv.port}${path}`,
    enableAutomaticReconnection: false,
    timeout: 5,
    method: events.method,
    ...options,
  });
  const st = await websocketClientStart(client);
  if (!st.success) throw new Error(`client start failed: ${JSON.stringify(st)}`);
  await events.waitType('open');
  const open = await until(
    () => srv.events.events.slice(seen).find((e) => e.type === 'open'),
    5000,
    `server open (seen: ${srv.events.summary()})`,
  );
  return { client, events, conn: open.client };
}

// ---------------------------------------------------------------- a good client beside hostile peers

/** One round trip on the good connection: client -> server, then server -> client. */
export async function roundTrip(srv: Started, good: Connected, tag: string, timeoutMs = 5000): Promise<void> {
  const up = `up-${tag}`;
  const st = websocketClientSend(good.client, up);
  expect(st.success).toBe(true);
  await srv.events.waitFor((e) => e.type === 'message' && e.client === good.conn && e.ctx.data === up, timeoutMs, up);
  const down = `down-${tag}`;
  const [s] = websocketServerSend({ ref: srv.server.ref, clients: [good.conn] }, down);
  expect(s.success).toBe(true);
  await good.events.waitFor((e) => e.type === 'message' && e.ctx.data === down, timeoutMs, down);
}

/**
 * Keeps the good connection busy until stop() and returns how many round
 * trips completed; a failure inside the loop fails the test through stop().
 */
export function keepExchanging(srv: Started, good: Connected, timeoutMs = 5000): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      await roundTrip(srv, good, `bg-${n}`, timeoutMs);
      n++;
      await delay(2);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return n;
    },
  };
}

/** Runs `hostile` while the good connection exchanges messages; asserts both sides. */
export async function whileGoodExchanges<T>(
  srv: Started,
  good: Connected,
  hostile: () => Promise<T>,
  timeoutMs = 5000,
): Promise<T> {
  const bg = keepExchanging(srv, good, timeoutMs);
  let result: T;
  try {
    result = await hostile();
  } finally {
    const n = await bg.stop();
    expect(n).toBeGreaterThan(0);
  }
  // And it still works afterwards, with its ref still listed.
  await roundTrip(srv, good, 'after', timeoutMs);
  expect(websocketServerClients(srv.server)).toContain(good.conn);
  return result;
}

// ---------------------------------------------------------------- payloads

/** Deterministic bytes (xorshift32) so that contents can be checked. */
export function bytes(n: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    b[i] = x & 0xff;
  }
  return b;
}

/** Valid UTF-8 text of exactly n bytes, mixing 1-, 2- and 3-byte characters. */
export function text(n: number, seed = 1): string {
  const unit = 'abcdefghij-é€ KLMNOPQRS\u00fc\u4e2d';
  let rep = '';
  while (Buffer.byteLength(rep) < 4096) rep += unit;
  const repBytes = Buffer.byteLength(rep);
  let s = '';
  let have = 0;
  // Whole repetitions, then ASCII to reach the exact byte length.
  const parts: string[] = [];
  while (have + repBytes <= n) {
    parts.push(rep);
    have += repBytes;
  }
  s = parts.join('');
  const alpha = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
  let tail = '';
  for (let i = 0; have < n; i++, have++) tail += alpha[(i + seed) % 26];
  s += tail;
  return s;
}

// ---------------------------------------------------------------- raw peer

export interface RawFrame {
  fin: boolean;
  rsv: number;
  opcode: number;
  masked: boolean;
  payload: Buffer;
}

export interface HttpHead {
  status: number;
  statusLine: string;
  headers: Record<string, string>;
  raw: string;
}

export interface FrameSpec {
  opcode: number;
  payload?: Buffer | string;
  fin?: boolean;
  /** RSV1..3 as bits 0x40/0x20/0x10 */
  rsv?: number;
  mask?: boolean;
}

/** Encodes one frame; clients mask by default (RFC 6455 §5.3). */
export function encodeFrame(spec: FrameSpec): Buffer {
  const payload = typeof spec.payload === 'string' ? Buffer.from(spec.payload) : spec.payload ?? Buffer.alloc(0);
  const mask = spec.mask ?? true;
  const len = payload.length;
  const head: number[] = [((spec.fin ?? true) ? 0x80 : 0) | (spec.rsv ?? 0) | (spec.opcode & 0x0f)];
  const m = mask ? 0x80 : 0;
  let ext = Buffer.alloc(0);
  if (len < 126) head.push(m | len);
  else if (len < 65536) {
    head.push(m | 126);
    ext = Buffer.alloc(2);
    ext.writeUInt16BE(len);
  } else {
    head.push(m | 127);
    ext = Buffer.alloc(8);
    ext.writeBigUInt64BE(BigInt(len));
  }
  if (!mask) return Buffer.concat([Buffer.from(head), ext, payload]);
  const key = crypto.randomBytes(4);
  const body = Buffer.from(payload);
  for (let i = 0; i < body.length; i++) body[i] ^= key[i & 3];
  return Buffer.concat([Buffer.from(head), ext, key, body]);
}

export function closePayload(code: number, reason = ''): Buffer {
  const b = Buffer.alloc(2 + Buffer.byteLength(reason));
  b.writeUInt16BE(code);
  b.write(reason, 2);
  return b;
}

/** A TCP connection with a byte buffer and bounded reads of HTTP heads and frames. */
export class RawPeer {
  private buf = Buffer.alloc(0);
  ended = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.buf = Buffer.concat([this.buf, d]);
    });
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.ended = true));
    socket.on('error', () => (this.ended = true));
  }

  /** localAddress: the address to connect from (e.g. 127.0.0.2: another peer address on loopback). */
  static connect(port: number, host = '127.0.0.1', localAddress?: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
      const t = setTimeout(() => reject(new Error('raw connect timed out')), 5000);
      s.once('connect', () => {
        clearTimeout(t);
        const p = new RawPeer(s);
        defer(() => s.destroy());
        resolve(p);
      });
      s.once('error', (e) => {
        clearTimeout(t);
        reject(e);
      });
    });
  }

  write(b: Buffer | string): void {
    this.socket.write(b);
  }

  send(spec: FrameSpec): void {
    this.socket.write(encodeFrame(spec));
  }

  /** Reads an HTTP response head (up to the blank line). */
  readHead(timeoutMs = 5000): Promise<HttpHead> {
    return until(
      () => {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) {
          if (this.ended) throw new Error(`connection ended before an HTTP head: ${JSON.stringify(this.buf.toString('latin1'))}`);
          return undefined;
        }
        const raw = this.buf.subarray(0, end).toString('latin1');
        this.buf = this.buf.subarray(end + 4);
        const [statusLine, ...lines] = raw.split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const i = l.indexOf(':');
          if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        return { status: Number(statusLine.split(' ')[1]), statusLine, headers, raw };
      },
      timeoutMs,
      'an HTTP response head',
    );
  }

  /** Reads one frame as sent by the server. */
  readFrame(timeoutMs = 5000): Promise<RawFrame> {
    return until(
      () => {
        const f = this.parseFrame();
        if (f === undefined && this.ended) throw new Error('connection ended before a frame');
        return f;
      },
      timeoutMs,
      'a frame',
    );
  }

  /** Reads frames until a close frame; returns it and the frames before it. */
  async readUntilClose(timeoutMs = 5000): Promise<{ close: RawFrame; before: RawFrame[]; code: number }> {
    const before: RawFrame[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const f = await this.readFrame(Math.max(1, deadline - Date.now()));
      if (f.opcode === 0x8) {
        return { close: f, before, code: f.payload.length >= 2 ? f.payload.readUInt16BE(0) : 1005 };
      }
      before.push(f);
    }
  }

  /** Waits for the server to close the TCP connection. */
  waitEnd(timeoutMs = 5000): Promise<true> {
    return until(() => (this.ended ? true : undefined), timeoutMs, 'the connection to end');
  }

  /** Performs the opening handshake (no extensions) and checks the 101 and the accept key. */
  async upgrade(path = '/', extra: Record<string, string> = {}): Promise<HttpHead> {
    const key = crypto.randomBytes(16).toString('base64');
    this.write(upgradeRequest(path, key, extra));
    const head = await this.readHead();
    if (head.status !== 101) throw new Error(`upgrade refused: ${head.raw}`);
    const expected = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    if (head.headers['sec-websocket-accept'] !== expected) throw new Error(`bad accept key: ${head.raw}`);
    return head;
  }

  private parseFrame(): RawFrame | undefined {
    const b = this.buf;
    if (b.length < 2) return undefined;
    const masked = (b[1] & 0x80) !== 0;
    let len = b[1] & 0x7f;
    let off = 2;
    if (len === 126) {
      if (b.length < 4) return undefined;
      len = b.readUInt16BE(2);
      off = 4;
    } else if (len === 127) {
      if (b.length < 10) return undefined;
      len = Number(b.readBigUInt64BE(2));
      off = 10;
    }
    let key: Buffer | undefined;
    if (masked) {
      if (b.length < off + 4) return undefined;
      key = b.subarray(off, off + 4);
      off += 4;
    }
    if (b.length < off + len) return undefined;
    const payload = Buffer.from(b.subarray(off, off + len));
    if (key) for (let i = 0; i < payload.length; i++) payload[i] ^= key[i & 3];
    this.buf = b.subarray(off + len);
    return { fin: (b[0] & 0x80) !== 0, rsv: b[0] & 0x70, opcode: b[0] & 0x0f, masked, payload };
  }
}

export function upgradeRequest(path: string, key: string, extra: Record<string, string> = {}): string {
  const h: Record<string, string> = {
    Host: 'localhost',
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Version': '13',
    ...extra,
  };
  let s = `GET ${path} HTTP/1.1\r\n`;
  for (const [k, v] of Object.entries(h)) s += `${k}: ${v}\r\n`;
  return s + '\r\n';
}

/** Case-insensitive lookup in a headers object. */
export function header(h: Record<string, unknown>, name: string): unknown {
  const k = Object.keys(h).find((x) => x.toLowerCase() === name.toLowerCase());
  return k === undefined ? undefined : h[k];
}
