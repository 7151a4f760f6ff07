// permessage-deflate (RFC 7692) seen from JavaScript: every combination of the
// four parameters negotiated against `ws` in both directions, compression
// visible in wireSize, context takeover on and off, the threshold, a
// decompression bomb (1009, other connections unharmed) and corrupt data
// (error event with decompressionError, close 1007).
import { afterEach, describe, expect, test } from 'vitest';
import * as fs from 'fs';
import type * as net from 'net';
import * as zlib from 'zlib';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import type { IncomingMessage } from 'http';
import type { AddressInfo } from 'net';
import { websocketClientSend, websocketClientStart, websocketServerSend } from '../lib/index';
import type { PerMessageDeflateOptions, SendStatus } from '../lib/index';
import {
  Collector,
  RawPeer,
  bytes,
  collect,
  connectClient,
  decodeFrames,
  defer,
  encodeFrame,
  header,
  newClient,
  rawServer,
  runCleanup,
  startServer,
  text,
  until,
} from './support';
import type { WsMsg } from './support';

afterEach(runCleanup);

// ------------------------------------------------------------ helpers

interface Combo {
  cnct: boolean; // client_no_context_takeover
  snct: boolean; // server_no_context_takeover
  smwb?: number; // server_max_window_bits (undefined: not asked, 15)
  cmwb?: number; // client_max_window_bits
}

// Window sizes small enough to matter but larger than the takeover probe
// message below, so a second copy can still point back at the first.
const SMALL_SERVER_BITS = 11; // 2 KiB
const SMALL_CLIENT_BITS = 12; // 4 KiB

const combos: Combo[] = [];
for (const cnct of [false, true])
  for (const snct of [false, true])
    for (const smwb of [undefined, SMALL_SERVER_BITS])
      for (const cmwb of [undefined, SMALL_CLIENT_BITS]) combos.push({ cnct, snct, smwb, cmwb });

function label(c: Combo): string {
  const parts: string[] = [];
  if (c.cnct) parts.push('client_no_context_takeover');
  if (c.snct) parts.push('server_no_context_takeover');
  if (c.smwb) parts.push(`server_max_window_bits=${c.smwb}`);
  if (c.cmwb) parts.push(`client_max_window_bits=${c.cmwb}`);
  return parts.length ? parts.join('; ') : 'defaults';
}

function oursOpts(c: Combo): PerMessageDeflateOptions {
  const o: PerMessageDeflateOptions = {
    enabled: true,
    clientNoContextTakeover: c.cnct,
    serverNoContextTakeover: c.snct,
  };
  if (c.smwb) o.serverMaxWindowBits = c.smwb;
  if (c.cmwb) o.clientMaxWindowBits = c.cmwb;
  return o;
}

// For ws `false` means "refuse the parameter"; leave it out instead.
function wsOpts(c: Combo): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  if (c.cnct) o.clientNoContextTakeover = true;
  if (c.snct) o.serverNoContextTakeover = true;
  if (c.smwb) o.serverMaxWindowBits = c.smwb;
  if (c.cmwb) o.clientMaxWindowBits = c.cmwb;
  return o;
}

type Params = Record<string, string | true>;

/** The agreed parameters every scenario below must end with. */
function expectedParams(c: Combo): Params {
  const p: Params = {};
  if (c.snct) p.server_no_context_takeover = true;
  if (c.cnct) p.client_no_context_takeover = true;
  if (c.smwb) p.server_max_window_bits = String(c.smwb);
  if (c.cmwb) p.client_max_window_bits = String(c.cmwb);
  return p;
}

/** Parses a one-extension Sec-WebSocket-Extensions response value. */
function parseExtension(value: unknown): { name: string; params: Params } {
  expect(typeof value).toBe('string');
  const s = value as string;
  expect(s.includes(',')).toBe(false);
  const [name, ...rest] = s.split(';').map((x) => x.trim());
  const params: Params = {};
  for (const r of rest) {
    const i = r.indexOf('=');
    if (i < 0) params[r.toLowerCase()] = true;
    else params[r.slice(0, i).trim().toLowerCase()] = r.slice(i + 1).trim().replace(/^"|"$/g, '');
  }
  return { name, params };
}

/** Random lowercase letters: compressible by Huffman coding only, so a
 * second identical message is far smaller only when the first is still in
 * the window (context takeover). */
function probe(n: number, seed: number): string {
  const b = bytes(n, seed);
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(97 + (b[i] % 26));
  return s;
}

const BIG = text(20000, 7); // repetitive: compresses well
const PROBE = probe(1500, 9);



function opened(ws: WebSocket): Promise<void> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
}

async function startWsServer(perMessageDeflate: unknown): Promise<{ wss: WsServer; port: number; responseExt: () => string }> {
  const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: perMessageDeflate as any });
  defer(() => new Promise((r) => wss.close(() => r(undefined))));
  let responseExt = '';
  wss.on('headers', (headers: string[]) => {
    const h = headers.find((x) => /^sec-websocket-extensions:/i.test(x));
    responseExt = h ? h.slice(h.indexOf(':') + 1).trim() : '';
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  return { wss, port: (wss.address() as AddressInfo).port, responseExt: () => responseExt };
}

/**
 * Exchanges, both ways: BIG (must shrink on the wire) and PROBE twice (the
 * second copy is much smaller exactly when the sender keeps its context).
 */
async function exchange(opts: {
  ourSend: (data: string) => SendStatus;
  ourEvents: Collector;
  ourConn?: number;
  ws: WebSocket;
  wsGot: WsMsg[];
  ourTakeover: boolean;
  wsTakeover: boolean;
}): Promise<{ ourRatio: number; wsRatio: number }> {
  const { ourSend, ourEvents, ws, wsGot } = opts;
  const isMsg = (e: { type: string; client: number }) =>
    e.type === 'message' && (opts.ourConn === undefined || e.client === opts.ourConn);

  // ours -> ws
  const sBig = ourSend(BIG);
  const sP1 = ourSend(PROBE);
  const sP2 = ourSend(PROBE);
  for (const s of [sBig, sP1, sP2]) expect(s).toMatchObject({ success: true, compressionError: false });
  expect(sBig.payloadSize).toBe(Buffer.byteLength(BIG));
  expect(sBig.wireSize).toBeLessThan(sBig.payloadSize / 4);
  expect(sP1.payloadSize).toBe(PROBE.length);
  expect(sP1.wireSize).toBeLessThan(sP1.payloadSize);
  if (opts.ourTakeover) expect(sP2.wireSize).toBeLessThan(sP1.wireSize / 4);
  else expect(sP2.wireSize).toBe(sP1.wireSize);
  await until(() => (wsGot.length >= 3 ? true : undefined), 5000, 'ws to receive 3 messages');
  expect(wsGot[0].isBinary).toBe(false);
  expect(wsGot[0].data.toString() === BIG).toBe(true);
  expect(wsGot[1].data.toString()).toBe(PROBE);
  expect(wsGot[2].data.toString()).toBe(PROBE);

  // ws -> ours
  ws.send(BIG);
  ws.send(PROBE);
  ws.send(PROBE);
  const ms = await ourEvents.waitCount(isMsg, 3, 5000, 'messages from ws');
  expect(ms[0].ctx.binary).toBe(false);
  expect(ms[0].ctx.data === BIG).toBe(true);
  expect(ms[0].ctx.wireSize).toBeLessThan(Buffer.byteLength(BIG) / 4);
  expect(ms[1].ctx.data).toBe(PROBE);
  expect(ms[2].ctx.data).toBe(PROBE);
  expect(ms[1].ctx.wireSize).toBeLessThan(PROBE.length);
  if (opts.wsTakeover) expect(ms[2].ctx.wireSize).toBeLessThan(ms[1].ctx.wireSize / 4);
  else expect(ms[2].ctx.wireSize).toBe(ms[1].ctx.wireSize);
  return { ourRatio: sBig.payloadSize / sBig.wireSize, wsRatio: Buffer.byteLength(BIG) / ms[0].ctx.wireSize };
}

// ------------------------------------------------------------ negotiation matrix

describe('every parameter combination against ws', () => {
  for (const c of combos) {
    const want = expectedParams(c);

    test(`our client offers [${label(c)}] → ws server`, async () => {
      const { wss, port, responseExt } = await startWsServer({});
      const peer = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
      const events = new Collector();
      const client = newClient({
        url: `ws://127.0.0.1:${port}/`,
        enableAutomaticReconnection: false,
        method: events.method,
        perMessageDeflate: oursOpts(c),
      });
      const st = await websocketClientStart({ ref: client.ref, timeout: 5 });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      const ws = await peer;
      defer(() => ws.terminate());
      const open = await events.waitType('open');
      const ext = parseExtension(header(open.ctx.headers, 'sec-websocket-extensions'));
      expect(ext).toEqual({ name: 'permessage-deflate', params: want });
      expect(parseExtension(responseExt())).toEqual(ext);
      await exchange({
        ourSend: (d) => websocketClientSend(client, d),
        ourEvents: events,
        ws,
        wsGot: collect(ws),
        ourTakeover: !c.cnct,
        wsTakeover: !c.snct,
      });
    });

    test(`ws server requires [${label(c)}] → our client (defaults)`, async () => {
      const { wss, port } = await startWsServer(wsOpts(c));
      const peer = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
      const events = new Collector();
      const client = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: events.method });
      const st = await websocketClientStart({ ref: client.ref, timeout: 5 });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      const ws = await peer;
      defer(() => ws.terminate());
      const open = await events.waitType('open');
      expect(parseExtension(header(open.ctx.headers, 'sec-websocket-extensions'))).toEqual({
        name: 'permessage-deflate',
        params: want,
      });
      await exchange({
        ourSend: (d) => websocketClientSend(client, d),
        ourEvents: events,
        ws,
        wsGot: collect(ws),
        ourTakeover: !c.cnct,
        wsTakeover: !c.snct,
      });
    });

    test(`ws client offers [${label(c)}] → our server (defaults)`, async () => {
      const srv = startServer();
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: wsOpts(c) });
      defer(() => ws.terminate());
      let responseExt: unknown;
      ws.once('upgrade', (res: IncomingMessage) => (responseExt = res.headers['sec-websocket-extensions']));
      const wsGot = collect(ws);
      await opened(ws);
      expect(ws.extensions).toBe('permessage-deflate');
      expect(parseExtension(responseExt)).toEqual({ name: 'permessage-deflate', params: want });
      const open = await srv.events.waitType('open');
      await exchange({
        ourSend: (d) => {
          const all = websocketServerSend({ ref: srv.server.ref, clients: [open.client] }, d);
          expect(all.length).toBe(1);
          return all[0];
        },
        ourEvents: srv.events,
        ourConn: open.client,
        ws,
        wsGot,
        ourTakeover: !c.snct,
        wsTakeover: !c.cnct,
      });
    });

    test(`ws client (defaults) → our server requiring [${label(c)}]`, async () => {
      const srv = startServer({ perMessageDeflate: oursOpts(c) });
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`);
      defer(() => ws.terminate());
      let responseExt: unknown;
      ws.once('upgrade', (res: IncomingMessage) => (responseExt = res.headers['sec-websocket-extensions']));
      const wsGot = collect(ws);
      await opened(ws);
      expect(ws.extensions).toBe('permessage-deflate');
      expect(parseExtension(responseExt)).toEqual({ name: 'permessage-deflate', params: want });
      const open = await srv.events.waitType('open');
      await exchange({
        ourSend: (d) => websocketServerSend(srv.server, d)[0],
        ourEvents: srv.events,
        ourConn: open.client,
        ws,
        wsGot,
        ourTakeover: !c.snct,
        wsTakeover: !c.cnct,
      });
    });
  }
});

// ------------------------------------------------------------ 8-bit windows

// zlib's raw deflate has no 256-byte window: the engine must still agree to
// 8 and produce data a peer inflating with a 256-byte window accepts.
describe('window bits 8 against ws', () => {
  const eight = { serverMaxWindowBits: 8, clientMaxWindowBits: 8 };
  const bin = bytes(30000, 11);

  test('our client ↔ ws server', async () => {
    const { wss, port } = await startWsServer({});
    const peer = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
    const events = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      method: events.method,
      perMessageDeflate: { enabled: true, ...eight },
    });
    expect((await websocketClientStart({ ref: client.ref, timeout: 5 })).success).toBe(true);
    const ws = await peer;
    defer(() => ws.terminate());
    const got = collect(ws);
    const open = await events.waitType('open');
    expect(parseExtension(header(open.ctx.headers, 'sec-websocket-extensions')).params).toEqual({
      server_max_window_bits: '8',
      client_max_window_bits: '8',
    });
    const st = websocketClientSend(client, BIG);
    expect(st.wireSize).toBeLessThan(st.payloadSize);
    expect(websocketClientSend(client, bin).success).toBe(true);
    await until(() => (got.length >= 2 ? true : undefined), 5000, 'ws to receive 2 messages');
    expect(got[0].data.toString() === BIG).toBe(true);
    expect(bin.equals(got[1].data)).toBe(true);
    ws.send(BIG);
    ws.send(bin);
    const ms = await events.waitCount((e) => e.type === 'message', 2, 5000, 'messages from ws');
    expect(ms[0].ctx.data === BIG).toBe(true);
    expect(ms[0].ctx.wireSize).toBeLessThan(Buffer.byteLength(BIG));
    expect(bin.equals(ms[1].ctx.data)).toBe(true);
    expect(events.of('error')).toEqual([]);
  });

  test('ws client ↔ our server', async () => {
    const srv = startServer();
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: eight });
    defer(() => ws.terminate());
    let responseExt: unknown;
    ws.once('upgrade', (res: IncomingMessage) => (responseExt = res.headers['sec-websocket-extensions']));
    const got = collect(ws);
    await opened(ws);
    expect(parseExtension(responseExt).params).toEqual({ server_max_window_bits: '8', client_max_window_bits: '8' });
    await srv.events.waitType('open');
    const st = websocketServerSend(srv.server, BIG)[0];
    expect(st.wireSize).toBeLessThan(st.payloadSize);
    websocketServerSend(srv.server, bin);
    await until(() => (got.length >= 2 ? true : undefined), 5000, 'ws to receive 2 messages');
    expect(got[0].data.toString() === BIG).toBe(true);
    expect(bin.equals(got[1].data)).toBe(true);
    ws.send(BIG);
    ws.send(bin);
    const ms = await srv.events.waitCount((e) => e.type === 'message', 2, 5000, 'messages from ws');
    expect(ms[0].ctx.data === BIG).toBe(true);
    expect(bin.equals(ms[1].ctx.data)).toBe(true);
    expect(srv.events.of('error')).toEqual([]);
  });
});

// ------------------------------------------------------------ threshold

const DEFLATE_OFFER = { 'Sec-WebSocket-Extensions': 'permessage-deflate; client_max_window_bits' };

describe('threshold', () => {
  test('server: below the threshold RSV1 stays clear and wireSize == payloadSize', async () => {
    const srv = startServer(); // default threshold 1024
    const raw = await RawPeer.connect(srv.port);
    const head = await raw.upgrade('/', DEFLATE_OFFER);
    expect(head.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate/);
    await srv.events.waitType('open');

    const small = 'a'.repeat(1023);
    const s1 = websocketServerSend(srv.server, small)[0];
    expect(s1).toMatchObject({ success: true, payloadSize: 1023, wireSize: 1023 });
    const f1 = await raw.readFrame();
    expect(f1.rsv).toBe(0);
    expect(f1.payload.toString()).toBe(small);

    const big = 'a'.repeat(1024);
    const s2 = websocketServerSend(srv.server, big)[0];
    expect(s2.payloadSize).toBe(1024);
    expect(s2.wireSize).toBeLessThan(100);
    const f2 = await raw.readFrame();
    expect(f2.rsv).toBe(0x40);
    expect(f2.payload.length).toBe(s2.wireSize);
    const inflated = zlib.inflateRawSync(Buffer.concat([f2.payload, Buffer.from([0, 0, 0xff, 0xff])]), {
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect(inflated.toString()).toBe(big);

    // An uncompressed frame on a deflate connection: wireSize is its length.
    raw.send({ opcode: 1, payload: 'plain' });
    const m = await srv.events.waitType('message');
    expect(m.ctx).toEqual({ data: 'plain', binary: false, wireSize: 5 });
  });

  test('server: threshold 0 compresses tiny messages, a large threshold keeps 4 KiB plain', async () => {
    const zero = startServer({ perMessageDeflate: { threshold: 0 } });
    const r0 = await RawPeer.connect(zero.port);
    await r0.upgrade('/', DEFLATE_OFFER);
    await zero.events.waitType('open');
    websocketServerSend(zero.server, 'tiny');
    expect((await r0.readFrame()).rsv).toBe(0x40);

    const high = startServer({ perMessageDeflate: { threshold: 5000 } });
    const r1 = await RawPeer.connect(high.port);
    await r1.upgrade('/', DEFLATE_OFFER);
    await high.events.waitType('open');
    const s = websocketServerSend(high.server, 'b'.repeat(4096))[0];
    expect(s).toMatchObject({ payloadSize: 4096, wireSize: 4096 });
    const f = await r1.readFrame();
    expect(f.rsv).toBe(0);
    expect(f.payload.length).toBe(4096);
  });

  test('client: the threshold applies to our client sends too', async () => {
    const { wss, port } = await startWsServer({});
    const peer = new Promise<WebSocket>((r) => wss.once('connection', (ws) => r(ws)));
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      perMessageDeflate: { threshold: 2000 },
    });
    expect((await websocketClientStart({ ref: client.ref, timeout: 5 })).success).toBe(true);
    const ws = await peer;
    defer(() => ws.terminate());
    const got = collect(ws);
    expect(websocketClientSend(client, 'c'.repeat(1999))).toMatchObject({ payloadSize: 1999, wireSize: 1999 });
    const s = websocketClientSend(client, 'c'.repeat(2000));
    expect(s.wireSize).toBeLessThan(100);
    await until(() => (got.length >= 2 ? true : undefined), 5000, 'ws to receive 2 messages');
    expect(got[0].data.toString()).toBe('c'.repeat(1999));
    expect(got[1].data.toString()).toBe('c'.repeat(2000));
  });
});

// ------------------------------------------------------------ bad input

/** `mib` MiB of zeros as one raw-deflate message body (trailer removed).
 * Sync-flushed pieces concatenate into one stream, so 1 MiB is compressed
 * once and repeated instead of deflating the whole size. */
function zeroBomb(mib: number): Buffer {
  const piece = zlib.deflateRawSync(Buffer.alloc(1 << 20), { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  expect(piece.subarray(-4)).toEqual(Buffer.from([0, 0, 0xff, 0xff]));
  const all = Buffer.concat(new Array(mib).fill(piece));
  return all.subarray(0, all.length - 4);
}

/** Peak resident memory (VmHWM) in bytes, where Linux reports it. */
function peakRss(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** A loopback server that answers the upgrade with permessage-deflate and
 * hands over the socket, to send what ws would never send; readClose gives
 * the code of the first close frame the client sends. */
async function rawDeflateServer(onReady: (s: net.Socket, readClose: () => Promise<number>) => void): Promise<number> {
  const { port } = await rawServer(
    (sock, rest) => {
      let buf = rest;
      sock.on('data', (d: Buffer) => (buf = Buffer.concat([buf, d])));
      const readClose = () =>
        until(
          () => {
            const close = decodeFrames(buf).frames.find((f) => f.opcode === 8);
            if (!close) return undefined;
            return close.payload.length >= 2 ? close.payload.readUInt16BE(0) : 1005;
          },
          5000,
          'a close frame from the client',
        );
      onReady(sock, readClose);
    },
    { 'Sec-WebSocket-Extensions': 'permessage-deflate' },
  );
  return port;
}

describe('decompression bomb', () => {
  test('server: 256 MiB of zeros in a 256 KiB frame closes with 1009, other connections keep working', async () => {
    const srv = startServer({ maxPayload: 1 << 20 });
    const good = await connectClient(srv);
    const goodConn = good.conn;
    expect(websocketClientSend(good.client, BIG).success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.client === goodConn, 5000, 'first good message');

    const raw = await RawPeer.connect(srv.port);
    const head = await raw.upgrade('/', DEFLATE_OFFER);
    expect(head.headers['sec-websocket-extensions']).toMatch(/^permessage-deflate/);
    const rawOpen = await srv.events.waitFor((e) => e.type === 'open' && e.client !== goodConn, 5000, 'raw open');

    const bomb = zeroBomb(256);
    expect(bomb.length).toBeLessThan(300 * 1024);
    const frame = encodeFrame({ opcode: 2, payload: bomb, rsv: 0x40 });
    const peakBefore = peakRss();
    const rssBefore = process.memoryUsage().rss;
    raw.write(frame);
    const { code } = await raw.readUntilClose(10000);
    expect(code).toBe(1009);
    const closed = await srv.events.waitFor((e) => e.type === 'close' && e.client === rawOpen.client, 5000, 'bomb close');
    expect(closed.ctx.code).toBe(1009);
    expect(srv.events.events.some((e) => e.type === 'message' && e.client === rawOpen.client)).toBe(false);
    // Inflating stopped near the 1 MiB limit: the process never held the
    // 256 MiB (a full inflate would raise the peak by at least that).
    const peakAfter = peakRss();
    if (peakBefore !== undefined && peakAfter !== undefined) {
      expect(peakAfter - Math.max(rssBefore, 0)).toBeLessThan(128 * 1024 * 1024);
    }

    // The well-behaved connection is still served, both ways.
    const seen = good.events.of('message').length;
    expect(websocketServerSend({ ref: srv.server.ref, clients: [goodConn] }, 'still here')[0].success).toBe(true);
    await good.events.waitCount((e) => e.type === 'message', seen + 1, 5000, 'message after the bomb');
    expect(good.events.of('message')[seen].ctx.data).toBe('still here');
    expect(websocketClientSend(good.client, 'me too').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.client === goodConn && e.ctx.data === 'me too', 5000, 'reply');
    expect(good.events.of('close')).toEqual([]);
  });

  test('client: a bomb from the server closes with 1009', async () => {
    const bomb = zeroBomb(64);
    let closeCode: Promise<number> | undefined;
    const port = await rawDeflateServer((sock, readClose) => {
      sock.write(encodeFrame({ opcode: 2, payload: bomb, rsv: 0x40, mask: false }));
      closeCode = readClose();
    });
    const events = new Collector();
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      method: events.method,
      maxPayload: 1 << 20,
    });
    expect((await websocketClientStart({ ref: client.ref, timeout: 5 })).success).toBe(true);
    const close = await events.waitType('close', undefined, 10000);
    expect(close.ctx.code).toBe(1009);
    expect(events.of('message')).toEqual([]);
    await until(() => closeCode, 5000, 'the raw server to see the upgrade');
    expect(await closeCode).toBe(1009);
  });
});

describe('corrupt compressed data', () => {
  // BTYPE 11 is reserved (RFC 1951 §3.2.3): no inflater accepts it.
  const corrupt = Buffer.from([0x07, 0x12, 0x34, 0x56]);

  test('server: error event with decompressionError, then close 1007', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/', DEFLATE_OFFER);
    const open = await srv.events.waitType('open');
    raw.send({ opcode: 1, payload: corrupt, rsv: 0x40 });
    const { code } = await raw.readUntilClose();
    expect(code).toBe(1007);
    const err = await srv.events.waitType('error', open.client);
    expect(err.ctx.decompressionError).toBe(true);
    expect(typeof err.ctx.reason).toBe('string');
    const close = await srv.events.waitType('close', open.client);
    expect(close.ctx.code).toBe(1007);
    // error comes before close
    expect(srv.events.events.indexOf(err)).toBeLessThan(srv.events.events.indexOf(close));
  });

  test('client: error event with decompressionError, then close 1007', async () => {
    let closeCode: Promise<number> | undefined;
    const port = await rawDeflateServer((sock, readClose) => {
      sock.write(encodeFrame({ opcode: 2, payload: corrupt, rsv: 0x40, mask: false }));
      closeCode = readClose();
    });
    const events = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: events.method });
    expect((await websocketClientStart({ ref: client.ref, timeout: 5 })).success).toBe(true);
    const err = await events.waitType('error');
    expect(err.ctx.decompressionError).toBe(true);
    const close = await events.waitType('close');
    expect(close.ctx.code).toBe(1007);
    await until(() => closeCode, 5000, 'the raw server to see the upgrade');
    expect(await closeCode).toBe(1007);
  });
});

// ------------------------------------------------------------ turning it off, declining

describe('off and declined', () => {
  test('options come back in the created objects', () => {
    const pmd = {
      enabled: true,
      clientNoContextTakeover: true,
      serverNoContextTakeover: true,
      serverMaxWindowBits: 9,
      clientMaxWindowBits: 10,
      threshold: 77,
    };
    const c = newClient({ url: 'ws://127.0.0.1:1/', perMessageDeflate: pmd, disablePerMessageDeflate: true });
    expect(c.perMessageDeflate).toEqual(pmd);
    expect(c.disablePerMessageDeflate).toBe(true);
    const s = startServer({ perMessageDeflate: { ...pmd, enabled: false } }).server;
    expect(s.perMessageDeflate).toEqual({ ...pmd, enabled: false });
    expect(() => newClient({ perMessageDeflate: { serverMaxWindowBits: 7 } })).toThrow(TypeError);
    expect(() => newClient({ perMessageDeflate: { clientMaxWindowBits: 16 } })).toThrow(TypeError);
  });

  for (const how of ['disablePerMessageDeflate', 'enabled: false'] as const) {
    const opts = how === 'disablePerMessageDeflate' ? { disablePerMessageDeflate: true } : { perMessageDeflate: { enabled: false } };

    test(`our server with ${how}: ws gets no extension, messages flow uncompressed`, async () => {
      const srv = startServer(opts);
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: true });
      defer(() => ws.terminate());
      const got = collect(ws);
      await opened(ws);
      expect(ws.extensions).toBe('');
      await srv.events.waitType('open');
      const st = websocketServerSend(srv.server, BIG)[0];
      expect(st.wireSize).toBe(st.payloadSize);
      ws.send(BIG);
      const m = await srv.events.waitType('message');
      expect(m.ctx.wireSize).toBe(Buffer.byteLength(BIG));
      await until(() => (got.length ? true : undefined), 5000, 'ws to receive');
      expect(got[0].data.toString() === BIG).toBe(true);
    });

    test(`our client with ${how}: no offer is sent`, async () => {
      const { wss, port } = await startWsServer({});
      const req = new Promise<IncomingMessage>((r) => wss.once('connection', (ws, rq) => (defer(() => ws.terminate()), r(rq))));
      const events = new Collector();
      const client = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false, method: events.method, ...opts });
      expect((await websocketClientStart({ ref: client.ref, timeout: 5 })).success).toBe(true);
      expect((await req).headers['sec-websocket-extensions']).toBeUndefined();
      const open = await events.waitType('open');
      expect(header(open.ctx.headers, 'sec-websocket-extensions')).toBeUndefined();
      const st = websocketClientSend(client, BIG);
      expect(st.wireSize).toBe(st.payloadSize);
    });
  }

  test('our server declines an offer it cannot accept (no client_max_window_bits to shrink)', async () => {
    const srv = startServer({ perMessageDeflate: { clientMaxWindowBits: 10 } });
    // ws leaves client_max_window_bits out of its offer with `false`
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, { perMessageDeflate: { clientMaxWindowBits: false } as any });
    defer(() => ws.terminate());
    const got = collect(ws);
    await opened(ws);
    expect(ws.extensions).toBe('');
    await srv.events.waitType('open');
    ws.send('plain');
    expect((await srv.events.waitType('message')).ctx).toEqual({ data: 'plain', binary: false, wireSize: 5 });
    websocketServerSend(srv.server, 'back');
    await until(() => (got.length ? true : undefined), 5000, 'ws to receive');
    expect(got[0].data.toString()).toBe('back');
  });

  test('ws refusing our offer outright (400) fails the start with that status', async () => {
    // ws answers 400 rather than declining when no offer is acceptable: here
    // any offer carrying server_max_window_bits.
    const { port } = await startWsServer({ serverMaxWindowBits: false });
    const client = newClient({
      url: `ws://127.0.0.1:${port}/`,
      enableAutomaticReconnection: false,
      perMessageDeflate: { serverMaxWindowBits: 10 },
    });
    const st = await websocketClientStart({ ref: client.ref, timeout: 5 });
    expect(st).toMatchObject({ success: false, http_status: 400 });
    // without that parameter the same server accepts us
    const ok = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false });
    expect(await websocketClientStart({ ref: ok.ref, timeout: 5 })).toMatchObject({ success: true, http_status: 101 });
  });
});
