// permessage-deflate (RFC 7692) seen from JavaScript: every combination of the
// four parameters negotiated against `ws` in both directions, compression
// visible in wireSize, context takeover on and off, the threshold, a
// decompression bomb (1009, other connections unharmed) and corrupt data
// (error event with decompressionError, close 1007).
import { afterEach, describe, expect, test } from 'vitest';
import * as crypto from 'crypto';
import * as net from 'net';
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
  connectClient,
  defer,
  encodeFrame,
  header,
  newClient,
  runCleanup,
  startServer,
  text,
  until,
} from './helpers';

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

interface WsMsg {
  data: Buffer;
  isBinary: boolean;
}

function collect(ws: WebSocket): WsMsg[] {
  const got: WsMsg[] = [];
  ws.on('message', (data, isBinary) => got.push({ data: Buffer.from(data as Buffer), isBinary }));
  return got;
}

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
