// Small binary payloads (1..4096 bytes) of one delivered batch share "slab"
// Buffers and reach JavaScript as slices of them. Floods from a `ws` peer,
// towards our server and towards our client, check that every payload is
// exact and in order, that a small one pins at most one 64 KiB slab, that a
// large one is a Buffer of its own, that no two payloads overlap (each one is
// scribbled over once checked, and the one before must keep its scribble),
// and that payloads kept by the application stay intact through the flood
// and garbage collections (no slab or pooled buffer reused while referenced).
import type { AddressInfo } from 'net';
import * as v8 from 'v8';
import * as vm from 'vm';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketClientStart } from '../lib/index';
import type { EventMethod } from '../lib/index';
import { defer, newClient, runCleanup, startServer, until } from './helpers';

afterEach(runCleanup);

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const SIZES = [0, 1, 2, 100, 4095, 4096, 4097, 10000];
const SLICE_MAX = 4096;
const SLAB_SIZE = 64 * 1024;

type Kind = 'binary' | 'text' | 'ping' | 'pong';
interface Item {
  kind: Kind;
  index: number;
  size: number;
}

/** Binary contents from (index, size): the index in the first 4 bytes, then a pattern. */
function binaryOf(index: number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let k = 0; k < size; k++) b[k] = (index * 31 + k * 17 + (k >> 8) + size) & 0xff;
  if (size >= 4) b.writeUInt32LE(index, 0);
  return b;
}

/** Control payloads are binary to the receiver: 0xFF is never valid UTF-8. */
function controlOf(index: number, size: number): Buffer {
  const b = binaryOf(index, size);
  b[0] = 0xff;
  return b;
}

/** Text of exactly `size` UTF-8 bytes: a 3-byte '€' then ASCII from the index. */
function textOf(index: number, size: number): string {
  const head = size >= 3 ? '€' : '';
  let s = head;
  for (let k = Buffer.byteLength(head); k < size; k++) s += String.fromCharCode(97 + ((index + k) % 26));
  return s;
}

function expectedBytes(it: Item): Buffer {
  return it.kind === 'binary' ? binaryOf(it.index, it.size) : controlOf(it.index, it.size);
}

/** `n` binary messages, sizes cycling through SIZES. */
function binaryFlood(n: number): Item[] {
  return Array.from({ length: n }, (_, i) => ({ kind: 'binary' as Kind, index: i, size: SIZES[i % SIZES.length] }));
}

/** Binary and text messages of every size with pings and pongs between them. */
function mixedFlood(n: number, withPongs: boolean): Item[] {
  const items: Item[] = [];
  let b = 0;
  let t = 0;
  let c = 0;
  for (let i = 0; i < n; i++) {
    const r = i % 11;
    if (r < 6) items.push({ kind: 'binary', index: i, size: SIZES[b++ % SIZES.length] });
    else if (r < 9) items.push({ kind: 'text', index: i, size: SIZES[t++ % SIZES.length] });
    else if (r === 9 || !withPongs) items.push({ kind: 'ping', index: i, size: 1 + ((c++ * 37) % 125) });
    else items.push({ kind: 'pong', index: i, size: 1 + ((c++ * 37) % 125) });
  }
  return items;
}

function sendAll(ws: WebSocket, items: Item[]): void {
  for (const it of items) {
    if (it.kind === 'binary') ws.send(binaryOf(it.index, it.size), { binary: true });
    else if (it.kind === 'text') ws.send(textOf(it.index, it.size));
    else if (it.kind === 'ping') ws.ping(controlOf(it.index, it.size));
    else ws.pong(controlOf(it.index, it.size));
  }
}

// Kept payloads: for each hundred, the first 8 items (every size, and
// neighbours in the same slab).
const keep = (i: number) => i % 100 < 8;

/** Checks each data event against the next expected item, in order. */
class Checker {
  next = 0;
  readonly problems: string[] = [];
  readonly kept: Array<{ it: Item; data: Buffer | string }> = [];
  /** small payloads that shared their slab with the one before */
  shared = 0;
  private seen = new WeakSet<ArrayBuffer>();
  private last?: Buffer; // the last small binary payload (slabs fill in order)
  private prev?: { buf: Buffer; fill: number }; // the one before, scribbled

  constructor(
    readonly items: Item[],
    readonly label: string,
    /** false when messages may arrive compressed (wireSize is then the deflated size) */
    readonly plainWire = true,
    readonly gcEvery = 500,
  ) {}

  readonly method: EventMethod = (_s, _c, type, ctx) => {
    if (type === 'open' || type === 'close') return;
    this.onData(type, ctx as any);
  };

  private problem(msg: string): void {
    if (this.problems.length < 20) this.problems.push(`${this.label}: ${msg}`);
  }

  private onData(type: string, ctx: { binary: boolean; data: unknown; wireSize: number }): void {
    const i = this.next++;
    const it = this.items[i];
    if (!it) return this.problem(`unexpected ${type} event after the last item`);
    const want = it.kind === 'binary' || it.kind === 'text' ? 'message' : it.kind;
    const what = `item ${i} (${it.kind}, ${it.size} B)`;
    if (type !== want) return this.problem(`${what}: got a ${type} event`);
    if (it.kind === 'text') {
      if (ctx.binary !== false || typeof ctx.data !== 'string') return this.problem(`${what}: not a text string`);
      if (ctx.data !== textOf(it.index, it.size)) return this.problem(`${what}: wrong text`);
      if (keep(i)) this.kept.push({ it, data: ctx.data });
      return;
    }
    const data = ctx.data as Buffer;
    if (ctx.binary !== true || !Buffer.isBuffer(data)) return this.problem(`${what}: not a binary Buffer`);
    if (data.length !== it.size) return this.problem(`${what}: length ${data.length}`);
    if (!data.equals(expectedBytes(it))) return this.problem(`${what}: wrong bytes`);
    if ((this.plainWire || it.kind !== 'binary') && ctx.wireSize !== it.size) {
      this.problem(`${what}: wireSize ${ctx.wireSize}`);
    }
    this.checkPlacement(data, what);
    // Writing into this payload must not touch the one before.
    if (this.prev && this.prev.buf.some((x) => x !== this.prev!.fill)) {
      this.problem(`${what}: the payload before it changed`);
    }
    if (keep(i)) {
      this.kept.push({ it, data });
      this.prev = undefined;
    } else if (data.length > 0) {
      const fill = i & 1 ? 0xa5 : 0x5a;
      data.fill(fill);
      if (this.prev && this.prev.buf.some((x) => x !== this.prev!.fill)) {
        this.problem(`${what}: scribbling it changed the payload before it`);
      }
      this.prev = { buf: data, fill };
    }
    if (this.next % this.gcEvery === 0) gc(); // freed slabs and pooled buffers get reused
  }

  /** Small payloads: slices of slabs filled in order; large ones: a Buffer of their own. */
  private checkPlacement(data: Buffer, what: string): void {
    const ab = data.buffer as ArrayBuffer;
    if (data.length === 0) return; // created as before, no placement rule
    if (data.length <= SLICE_MAX) {
      if (ab.byteLength > SLAB_SIZE) this.problem(`${what}: pins ${ab.byteLength} bytes`);
      if (this.seen.has(ab)) {
        // A slab seen before can only be the current one, past the last slice.
        if (!this.last || this.last.buffer !== ab) this.problem(`${what}: an earlier slab handed out again`);
        else if (data.byteOffset < this.last.byteOffset + this.last.length) this.problem(`${what}: overlaps the slice before`);
        else this.shared++;
      }
      this.last = data;
    } else {
      if (this.seen.has(ab)) this.problem(`${what}: its memory was another payload's`);
      if (data.byteOffset !== 0 || ab.byteLength !== data.length) {
        this.problem(`${what}: a slice at ${data.byteOffset} of ${ab.byteLength} bytes`);
      }
    }
    this.seen.add(ab);
  }

  done(): boolean {
    return this.next >= this.items.length;
  }

  /** Every kept payload still holds what it held on arrival. */
  keptProblems(): string[] {
    const out: string[] = [];
    for (const { it, data } of this.kept) {
      const ok =
        typeof data === 'string' ? data === textOf(it.index, it.size) : data.equals(expectedBytes(it));
      if (!ok && out.length < 20) out.push(`${this.label}: kept item ${it.index} (${it.kind}, ${it.size} B) changed`);
    }
    return out;
  }
}

// ---------------------------------------------------------------- peers

async function wsClient(port: number): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: false });
  defer(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

/** Our server with `rx` as its method, a ws client connected to it. */
async function towardsOurServer(rx: Checker): Promise<WebSocket> {
  const srv = startServer({ method: rx.method });
  return wsClient(srv.port);
}

/** A ws server; our client with `rx` as its method connected to it. */
async function towardsOurClient(rx: Checker, deflate: boolean): Promise<WebSocket> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });
  defer(() => new Promise((r) => wss.close(() => r(undefined))));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let peer: WebSocket | undefined;
  wss.on('connection', (ws) => {
    defer(() => ws.terminate());
    peer = ws;
  });
  const c = newClient({
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`,
    enableAutomaticReconnection: false,
    disablePerMessageDeflate: !deflate,
    method: rx.method,
  });
  const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
  expect(st.success).toBe(true);
  const ws = await until(() => peer, 5000, 'the ws server connection');
  expect(ws.extensions.includes('permessage-deflate')).toBe(deflate);
  return ws;
}

/** Sends `items` (appended to what rx expects) as fast as ws can, waits for all of them. */
async function flood(rx: Checker, ws: WebSocket, items = rx.items): Promise<void> {
  if (items !== rx.items) rx.items.push(...items);
  sendAll(ws, items);
  await until(() => (rx.done() || rx.problems.length > 0 ? true : undefined), 10000, `${rx.label}: all items`);
  await new Promise((r) => setTimeout(r, 50)); // nothing more arrives
}

function expectClean(rx: Checker, items: number): void {
  expect(rx.problems).toEqual([]);
  expect(rx.next).toBe(items);
  gc();
  expect(rx.keptProblems()).toEqual([]);
  // The slab path was taken: slices of one batch shared a slab.
  expect(rx.shared).toBeGreaterThan(0);
}

// ---------------------------------------------------------------- tests

describe('small binary payloads as slab slices', () => {
  test('5,000 binary messages of 0..10000 bytes from a ws client to our server', async () => {
    const rx = new Checker(binaryFlood(5000), 'ws client -> our server');
    const ws = await towardsOurServer(rx);
    await flood(rx, ws);
    expectClean(rx, 5000);
    // After a collection freed the slabs and large buffers of the payloads
    // not kept, a second flood on the same connection: the kept ones still hold.
    gc();
    await new Promise((r) => setImmediate(r));
    await flood(rx, ws, binaryFlood(7000).slice(5000));
    expectClean(rx, 7000);
  });

  test('binary and text messages with pings and pongs between them, ws client to our server', async () => {
    const items = mixedFlood(4400, true);
    const rx = new Checker(items, 'mixed -> our server');
    const ws = await towardsOurServer(rx);
    const pongs: Buffer[] = [];
    ws.on('pong', (d: Buffer) => pongs.push(d));
    await flood(rx, ws);
    expectClean(rx, items.length);
    // Each ping was answered with its payload.
    const pings = items.filter((it) => it.kind === 'ping');
    await until(() => (pongs.length >= pings.length ? true : undefined), 5000, 'the pongs');
    expect(pongs.every((d, k) => d.equals(controlOf(pings[k].index, pings[k].size)))).toBe(true);
  });

  test('5,000 binary messages from a ws server to our client', async () => {
    const rx = new Checker(binaryFlood(5000), 'ws server -> our client');
    const ws = await towardsOurClient(rx, false);
    await flood(rx, ws);
    expectClean(rx, 5000);
  });

  test('binary, text, pings and pongs from a ws server to our client, permessage-deflate on', async () => {
    const items = mixedFlood(4400, true);
    const rx = new Checker(items, 'mixed -> our client (deflate)', false);
    const ws = await towardsOurClient(rx, true);
    await flood(rx, ws);
    expectClean(rx, items.length);
  });
});
