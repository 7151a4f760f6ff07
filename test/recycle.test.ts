// Recycled payload buffers must never show their stale bytes: large and small
// messages alternate on one connection and across connections (so that each
// message can land in a buffer a larger one used before), text and binary,
// fragmented, with and without permessage-deflate, towards our server and
// towards our client; and a server echoing each received Buffer at once
// (the zero-copy send of a recycled buffer) under 4 connections at a time.
import * as crypto from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as v8 from 'v8';
import * as vm from 'vm';
import WebSocket from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import { websocketClientSend, websocketClientStart, websocketServerSend } from '../lib/index';
import type { EventMethod, EventType } from '../lib/index';
import { binding } from '../lib/binding';
import { defer, newClient, runCleanup, startServer, startWsServer, until } from './support';
import { issueCert } from './support/x509';

afterEach(runCleanup);

// Large binary messages reach JavaScript as external Buffers whose storage
// goes back to the pool when they are collected: collect between messages so
// that the next message really is read into a used buffer.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
async function collectGarbage(): Promise<void> {
  gc();
  await new Promise((r) => setImmediate(r)); // finalizers may run on the next turn
}

// Pool counters when the addon exports them (a diagnostics command).
function poolHits(): number | undefined {
  const f = (binding as unknown as { bufferPoolStats?: () => { hits: number } }).bufferPoolStats;
  return typeof f === 'function' ? f().hits : undefined;
}

// ------------------------------------------------------------------ messages

interface Msg {
  /** what the receiver must get, whole */
  data: string | Buffer;
  /** how a sender able to fragment sends it (one entry: unfragmented) */
  parts: Array<string | Buffer>;
}

const KiB = 1024;
const MiB = 1024 * 1024;

/** Random valid UTF-8 of exactly n bytes (1- to 4-byte characters). */
function randomText(n: number): string {
  const chars = ['a', 'Q', '7', ' ', '~', 'é', 'ß', 'Ж', '€', '中', '\u{1F600}', '\u{10348}'].map((c) => Buffer.from(c));
  const rnd = crypto.randomBytes(n);
  const out = Buffer.allocUnsafe(n);
  let have = 0;
  for (let i = 0; have < n; i++) {
    let c = chars[rnd[i % n] % chars.length];
    if (have + c.length > n) c = chars[0];
    for (let j = 0; j < c.length; j++) out[have++] = c[j];
  }
  return out.toString('utf8');
}

function msg(data: string | Buffer, parts?: Array<string | Buffer>): Msg {
  return { data, parts: parts ?? [data] };
}

/**
 * Large, then smaller within 4x of an earlier one (a recycled buffer fits
 * them and holds older bytes past their end), fragments, multi-byte text,
 * tiny ones. Each content differs from the ones before it.
 */
function sequence(binary: boolean): Msg[] {
  const ascii = (ch: string, n: number) => (binary ? Buffer.alloc(n, ch) : ch.repeat(n));
  const frag = (ch: string, sizes: number[]) => {
    const parts = sizes.map((n) => ascii(ch, n));
    const whole = binary ? Buffer.concat(parts as Buffer[]) : (parts as string[]).join('');
    return msg(whole, parts);
  };
  const accents = 'é'.repeat(35000); // 70,000 bytes
  const rnd = binary ? crypto.randomBytes(2 * MiB) : randomText(2 * MiB);
  return [
    msg(ascii('a', MiB)),
    msg(ascii('b', 40000)),
    frag('c', [11000, 11000, 11000]),
    msg(binary ? Buffer.from(accents) : accents),
    msg(ascii('d', 100)),
    msg(rnd),
    msg(ascii('x', 600000)),
    msg(ascii('y', 150000)),
    frag('f', [60000, 50000, 7]),
    msg(ascii('z', 40000)),
    msg(ascii('e', 10)),
    msg(ascii('g', 33000)),
  ];
}

const byteLength = (d: string | Buffer) => (typeof d === 'string' ? Buffer.byteLength(d) : d.length);
const asBytes = (d: string | Buffer) => (typeof d === 'string' ? Buffer.from(d) : d);

/** Where two byte strings differ, for a readable failure. */
function difference(got: Buffer, want: Buffer): string {
  const n = Math.min(got.length, want.length);
  let i = 0;
  while (i < n && got[i] === want[i]) i++;
  const show = (b: Buffer) => JSON.stringify(b.subarray(i, i + 12).toString('latin1'));
  return `length ${got.length} (want ${want.length}), first difference at byte ${i}: got ${show(got)} want ${show(want)}`;
}

// ------------------------------------------------------------------ receiving

/** Checks one connection's messages and fragments against what was sent, as they arrive (keeps no data). */
class Receiver {
  readonly queue: Msg[] = [];
  readonly problems: string[] = [];
  /** wireSize of each message, in order */
  readonly wires: number[] = [];
  received = 0;
  private frags: Buffer[] = [];
  private fragWire: number[] = [];

  constructor(
    readonly label: string,
    readonly deflate = false,
  ) {}

  onEvent(type: EventType, ctx: any): void {
    if (type === 'fragment') {
      this.frags.push(Buffer.from(asBytes(ctx.data)));
      this.fragWire.push(ctx.wireSize);
      return;
    }
    if (type !== 'message') return;
    const n = this.received++;
    this.wires.push(ctx.wireSize);
    const want = this.queue.shift();
    const frags = this.frags;
    const fragWire = this.fragWire;
    this.frags = [];
    this.fragWire = [];
    if (!want) {
      this.problems.push(`${this.label}: unexpected message #${n}`);
      return;
    }
    const what = `${this.label} #${n} (${byteLength(want.data)} bytes ${typeof want.data === 'string' ? 'text' : 'binary'})`;
    const binary = typeof want.data !== 'string';
    if (ctx.binary !== binary) this.problems.push(`${what}: binary flag ${ctx.binary}`);
    if (binary) {
      if (!Buffer.isBuffer(ctx.data)) this.problems.push(`${what}: not a Buffer`);
      else if (!(want.data as Buffer).equals(ctx.data)) this.problems.push(`${what}: ${difference(ctx.data, want.data as Buffer)}`);
    } else if (typeof ctx.data !== 'string') {
      this.problems.push(`${what}: not a string`);
    } else if (ctx.data.length !== (want.data as string).length || ctx.data !== want.data) {
      this.problems.push(`${what}: ${difference(Buffer.from(ctx.data), Buffer.from(want.data as string))}`);
    }
    if (!this.deflate && ctx.wireSize !== byteLength(want.data)) this.problems.push(`${what}: wireSize ${ctx.wireSize}`);
    // One fragment event per frame before the last, with that frame's bytes
    // (the parts here are ASCII: no code point spans two frames).
    if (want.parts.length > 1) {
      const sent = want.parts.slice(0, -1).map(asBytes);
      if (frags.length !== sent.length) this.problems.push(`${what}: ${frags.length} fragment events, want ${sent.length}`);
      else
        frags.forEach((f, i) => {
          if (!f.equals(sent[i])) this.problems.push(`${what}: fragment ${i}: ${difference(f, sent[i])}`);
          if (!this.deflate && fragWire[i] !== sent[i].length) this.problems.push(`${what}: fragment ${i} wireSize ${fragWire[i]}`);
        });
    } else if (frags.length !== 0) {
      this.problems.push(`${what}: ${frags.length} unexpected fragment events`);
    }
  }
}

/** Our server, one Receiver per connection in the order they open. */
function ourServer(deflate: boolean, extra: Record<string, unknown> = {}) {
  const receivers = new Map<number, Receiver>();
  const opened: number[] = [];
  let next: Receiver | undefined;
  const method: EventMethod = (_server, client, type, ctx) => {
    if (type === 'open') {
      opened.push(client);
      receivers.set(client, next ?? new Receiver(`server conn ${client}`, deflate));
      next = undefined;
      return;
    }
    receivers.get(client)?.onEvent(type, ctx);
  };
  const srv = startServer({ method, disablePerMessageDeflate: !deflate, maxPayload: 16 * MiB, ...extra });
  return {
    ...srv,
    opened,
    receivers,
    /** The Receiver the next connection to open gets. */
    expectConnection(r: Receiver) {
      next = r;
    },
  };
}

/** Sends one message at a time, waiting for each to be checked before the next. */
async function lockstep(rx: Receiver, msgs: Msg[], send: (m: Msg) => void): Promise<void> {
  for (const m of msgs) {
    const before = rx.received;
    rx.queue.push(m);
    send(m);
    await until(() => (rx.received > before ? true : undefined), 10000, `${rx.label}: message ${before} to arrive`);
    await collectGarbage();
  }
}

// ------------------------------------------------------------------ peers

async function wsClient(port: number, deflate: boolean): Promise<WebSocket> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { perMessageDeflate: deflate });
  defer(() => ws.terminate());
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  expect(ws.extensions.includes('permessage-deflate')).toBe(deflate);
  return ws;
}

/** Sends a message, its fragments (if any) with a ping between them. */
function wsSend(ws: WebSocket, m: Msg): void {
  const binary = typeof m.data !== 'string';
  m.parts.forEach((p, i) => {
    const fin = i === m.parts.length - 1;
    ws.send(p, { binary, fin, compress: true });
    if (!fin) ws.ping('between');
  });
}

/** Our client with `rx` checking what it receives; resolves once open. */
async function ourClient(url: string, rx: Receiver, deflate: boolean, extra: Record<string, unknown> = {}) {
  let open = false;
  const method: EventMethod = (_s, _c, type, ctx) => {
    if (type === 'open') open = true;
    else rx.onEvent(type, ctx);
  };
  const c = newClient({
    url,
    enableAutomaticReconnection: false,
    disablePerMessageDeflate: !deflate,
    maxPayload: 16 * MiB,
    method,
    ...extra,
  });
  const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
  expect(st.success).toBe(true);
  await until(() => (open ? true : undefined), 5000, 'client open');
  return c;
}

function wsServer(deflate: boolean) {
  return startWsServer({ perMessageDeflate: deflate, maxPayload: 16 * MiB });
}

/** Sends everything at once (frames back to back on the wire) and waits for all of it. */
async function burst(rx: Receiver, msgs: Msg[], send: (m: Msg) => void): Promise<void> {
  const count = rx.received + msgs.length;
  rx.queue.push(...msgs);
  for (const m of msgs) send(m);
  await until(() => (rx.received >= count ? true : undefined), 15000, `${rx.label}: a burst`);
}

// First connection: text, binary, text again, each round landing in the
// buffers the one before it recycled (text goes back at once, binary when
// collected). The next connection starts in what the first one left.
const roundsFor = (k: number) => (k === 0 ? [false, true, false] : [true]);

function expectClean(rxs: Receiver[]): void {
  const problems = rxs.flatMap((r) => r.problems);
  expect(problems).toEqual([]);
  // counts only: a failure must not print megabytes of expected data
  expect(rxs.map((r) => r.queue.length)).toEqual(rxs.map(() => 0));
}

// ------------------------------------------------------------------ tests

describe('stale bytes never leak', () => {
  test('our server receives from ws clients (fragments included), two connections in turn', async () => {
    const hits = poolHits();
    const srv = ourServer(false);
    const rxs: Receiver[] = [];
    for (let k = 0; k < 2; k++) {
      const rx = new Receiver(`ws client ${k} -> our server`);
      rxs.push(rx);
      srv.expectConnection(rx);
      const ws = await wsClient(srv.port, false);
      await until(() => (srv.opened.length > k ? true : undefined), 5000, 'server open');
      for (const binary of roundsFor(k)) await lockstep(rx, sequence(binary), (m) => wsSend(ws, m));
      if (k === 1) await burst(rx, [...sequence(true), ...sequence(false)], (m) => wsSend(ws, m));
      ws.close();
    }
    expectClean(rxs);
    const after = poolHits();
    if (hits !== undefined && after !== undefined) expect(after).toBeGreaterThan(hits);
  });

  test('our server receives from our clients, two connections in turn', async () => {
    const srv = ourServer(false);
    const rxs: Receiver[] = [];
    for (let k = 0; k < 2; k++) {
      const rx = new Receiver(`our client ${k} -> our server`);
      rxs.push(rx);
      srv.expectConnection(rx);
      const back = new Receiver(`our server -> our client ${k} (nothing expected)`);
      rxs.push(back);
      const c = await ourClient(`ws://127.0.0.1:${srv.port}/`, back, false);
      await until(() => (srv.opened.length > k ? true : undefined), 5000, 'server open');
      const send = (m: Msg) => {
        const st = websocketClientSend(c, m.data);
        if (!st.success) rx.problems.push(`send failed: ${JSON.stringify(st)}`);
      };
      // our client has no fragmenting send: whole messages
      const whole = (binary: boolean) => sequence(binary).map((m) => msg(m.data));
      for (const binary of roundsFor(k)) await lockstep(rx, whole(binary), send);
      if (k === 1) await burst(rx, [...whole(true), ...whole(false)], send);
    }
    expectClean(rxs);
  });

  test('our client receives from our server: one at a time, in bursts, and broadcast to two', async () => {
    const srv = ourServer(false);
    const rxs: Receiver[] = [];
    const conns: number[] = [];
    for (let k = 0; k < 2; k++) {
      const rx = new Receiver(`our server -> our client ${k}`);
      rxs.push(rx);
      await ourClient(`ws://127.0.0.1:${srv.port}/`, rx, false);
      conns.push(await until(() => srv.opened[k], 5000, 'server open'));
    }
    const send = (targets: number[], m: Msg) => {
      for (const st of websocketServerSend({ ref: srv.server.ref, clients: targets }, m.data))
        if (!st.success) rxs[0].problems.push(`send failed: ${JSON.stringify(st)}`);
    };
    // One at a time (each large one a direct write from the caller's bytes),
    // on each connection in turn.
    for (let k = 0; k < 2; k++)
      for (const binary of roundsFor(k)) await lockstep(rxs[k], sequence(binary).map((m) => msg(m.data)), (m) => send([conns[k]], m));
    // All at once: the socket fills, so what a direct write leaves and the
    // frames queued after it are copied into pooled storage.
    const burstTo = (targets: number[]) => {
      const all = [...sequence(true), ...sequence(false)].map((m) => msg(m.data));
      const want = targets.map((t) => rxs[conns.indexOf(t)]);
      const counts = want.map((r) => r.received + all.length);
      for (const r of want) r.queue.push(...all);
      for (const m of all) send(targets, m);
      return until(() => (want.every((r, i) => r.received >= counts[i]) ? true : undefined), 15000, 'a burst');
    };
    await burstTo([conns[0]]);
    await collectGarbage();
    // Broadcast: one frame built for both targets.
    await burstTo(conns);
    expectClean(rxs);
  });

  test('our client receives from ws servers (fragments included), two connections in turn', async () => {
    const rxs: Receiver[] = [];
    for (let k = 0; k < 2; k++) {
      const w = await wsServer(false);
      const rx = new Receiver(`ws server ${k} -> our client`);
      rxs.push(rx);
      await ourClient(`ws://127.0.0.1:${w.port}/`, rx, false);
      const peer = await until(() => w.conns[0], 5000, 'ws connection');
      for (const binary of roundsFor(k)) await lockstep(rx, sequence(binary), (m) => wsSend(peer, m));
      if (k === 1) await burst(rx, [...sequence(true), ...sequence(false)], (m) => wsSend(peer, m));
    }
    expectClean(rxs);
  });

  test('over TLS (plaintext handed over in pieces): our client -> our server -> our client', async () => {
    // A throwaway self-signed certificate; the client does not verify it.
    const self = issueCert({ cn: '127.0.0.1' });
    const tls = { cert: self.cert, key: self.key };
    const srv = ourServer(false, { tls });
    const up = new Receiver('our client -> our server (TLS)');
    const down = new Receiver('our server -> our client (TLS)');
    srv.expectConnection(up);
    const c = await ourClient(`wss://127.0.0.1:${srv.port}/`, down, false, { tls: { verifyPeer: false } });
    const conn = await until(() => srv.opened[0], 5000, 'server open');
    const whole = (binary: boolean) => sequence(binary).map((m) => msg(m.data));
    const sendUp = (m: Msg) => {
      const st = websocketClientSend(c, m.data);
      if (!st.success) up.problems.push(`send failed: ${JSON.stringify(st)}`);
    };
    const sendDown = (m: Msg) => {
      const [st] = websocketServerSend({ ref: srv.server.ref, clients: [conn] }, m.data);
      if (!st?.success) down.problems.push(`send failed: ${JSON.stringify(st)}`);
    };
    for (const binary of [false, true]) {
      await lockstep(up, whole(binary), sendUp);
      await lockstep(down, whole(binary), sendDown);
    }
    await burst(up, [...whole(true), ...whole(false)], sendUp);
    await burst(down, [...whole(true), ...whole(false)], sendDown);
    expectClean([up, down]);
  });

  test('permessage-deflate: ws client -> our server and our server -> our client', async () => {
    const srv = ourServer(true);
    const fromWs = new Receiver('ws client -> our server (deflate)', true);
    srv.expectConnection(fromWs);
    const ws = await wsClient(srv.port, true);
    await until(() => (srv.opened.length > 0 ? true : undefined), 5000, 'server open');
    for (const binary of [false, true]) await lockstep(fromWs, sequence(binary), (m) => wsSend(ws, m));

    const toUs = new Receiver('our server -> our client (deflate)', true);
    await ourClient(`ws://127.0.0.1:${srv.port}/`, toUs, true);
    const conn = await until(() => srv.opened[1], 5000, 'server open');
    for (const binary of [false, true]) {
      await lockstep(toUs, sequence(binary).map((m) => msg(m.data)), (m) => {
        const [st] = websocketServerSend({ ref: srv.server.ref, clients: [conn] }, m.data);
        if (!st?.success) toUs.problems.push(`send failed: ${JSON.stringify(st)}`);
      });
    }
    expectClean([fromWs, toUs]);
    // negotiated both ways: the first message (1 MiB of 'a') came compressed
    expect(fromWs.wires[0]).toBeLessThan(MiB / 10);
    expect(toUs.wires[0]).toBeLessThan(MiB / 10);
  });
});

describe('echo of received buffers', () => {
  test('each received Buffer sent back at once comes back identical: 4 connections x 50 rounds, 16 KiB..1.5 MiB', async () => {
    const sendFailures: string[] = [];
    let ref = 0;
    // Echo from inside the event: the Buffer may alias the engine's recycled
    // storage, sent as it is (zero-copy) to its one target.
    const method: EventMethod = (_s, client, type, ctx) => {
      if (type !== 'message') return;
      const [st] = websocketServerSend({ ref, clients: [client] }, ctx.data);
      if (!st?.success) sendFailures.push(JSON.stringify(st));
    };
    const srv = startServer({ method, disablePerMessageDeflate: true, maxPayload: 16 * MiB });
    ref = srv.server.ref;

    const ROUNDS_PER_CONN = 50;
    // Sizes spread over the range (log-uniform), both ends included.
    const sizeAt = (conn: number, round: number) => {
      if (round === 0) return 16 * KiB;
      if (round === 1) return 1.5 * MiB;
      const u = ((round * 7919 + conn * 104729) % 1000) / 1000;
      return Math.round(16 * KiB * Math.pow((1.5 * MiB) / (16 * KiB), u));
    };

    const runConn = async (k: number) => {
      const rx = new Receiver(`echo conn ${k}`);
      const c = await ourClient(`ws://127.0.0.1:${srv.port}/`, rx, false);
      const msgs: Msg[] = [];
      for (let r = 0; r < ROUNDS_PER_CONN; r++) {
        const n = sizeAt(k, r);
        // Some text among the binary: both event data paths recycle.
        msgs.push(msg(r % 4 === 3 ? randomText(n) : crypto.randomBytes(n)));
      }
      await lockstep(rx, msgs, (m) => {
        const st = websocketClientSend(c, m.data);
        if (!st.success) rx.problems.push(`send failed: ${JSON.stringify(st)}`);
      });
      return rx;
    };
    const rxs = await Promise.all([0, 1, 2, 3].map(runConn));
    expect(sendFailures).toEqual([]);
    expectClean(rxs);
    for (const r of rxs) expect(r.received).toBe(ROUNDS_PER_CONN);
  });
});
