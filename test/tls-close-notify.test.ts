// TLS close_notify as the end of the peer's stream (RFC 8446 §6.1; RFC 5246
// §7.2.1 asks for a close_notify in reply). The peer here is Node's TLS over
// a stream of our own that carries the ciphertext to a plain TCP socket, so
// the test decides whether the peer's close_notify is followed by its FIN,
// and sees whether ours arrives before our FIN. asyncio (Python's `websockets`
// over TLS) is such a peer: it sends close_notify and waits for ours before
// it closes TCP.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import * as net from 'net';
import * as tls from 'tls';
import { Duplex } from 'stream';
import type { AddressInfo } from 'net';
import { websocketClientStart } from '../lib/index';
import { makeTestCa } from './support/certs';
import type { TestCa } from './support/certs';
import {
  Collector,
  OP,
  closePayload,
  decodeFrames,
  defer,
  encodeFrame,
  newClient,
  requestKey,
  runCleanup,
  startServer,
  switchingProtocols,
  until,
  upgradeRequest,
} from './support';

afterEach(runCleanup);

let ca: TestCa;
let leaf: { cert: string; key: string };

/**
 * Node's TLS over `raw`, with the order of what arrives recorded. `end()` on
 * the TLS socket sends close_notify (Node's TLS also does so by itself when
 * the other side's close_notify arrives); the raw socket's FIN follows only
 * when `finAfterNotify` is set (it does not answer a FIN with one).
 */
interface Peer {
  tls: tls.TLSSocket;
  raw: net.Socket;
  /** What happened: 'notify' (the peer's close_notify ended the TLS stream), 'fin' (raw FIN), 'rawclose'. */
  seen: string[];
  /** Plain bytes received over TLS. */
  plain: Buffer[];
}

function wrap(raw: net.Socket, finAfterNotify: boolean, make: (d: Duplex) => tls.TLSSocket): Peer {
  const seen: string[] = [];
  const d = new Duplex({
    read() {},
    write(chunk, _enc, cb) {
      if (raw.destroyed) return cb();
      raw.write(chunk, () => cb());
    },
    final(cb) {
      // The TLS socket ended after its close_notify went out.
      if (finAfterNotify) raw.end();
      cb();
    },
  });
  raw.on('data', (b) => d.push(b));
  // The FIN is not passed on to TLS: its stream then ends only on a
  // close_notify, so 'notify' says that one arrived.
  raw.on('end', () => seen.push('fin'));
  raw.on('close', () => seen.push('rawclose'));
  raw.on('error', () => {});
  const t = make(d);
  const plain: Buffer[] = [];
  t.on('data', (b: Buffer) => plain.push(b));
  t.on('end', () => seen.push('notify'));
  t.on('error', () => {});
  defer(() => {
    t.destroy();
    raw.destroy();
  });
  return { tls: t, raw, seen, plain };
}

/** A TCP server whose connections become TLS servers that answer the WebSocket upgrade. */
async function tlsPeerServer(finAfterNotify: boolean): Promise<{ port: number; peer: Promise<Peer> }> {
  let give: (p: Peer) => void = () => {};
  const peer = new Promise<Peer>((r) => (give = r));
  const srv = net.createServer({ allowHalfOpen: true }, (raw) => {
    const p = wrap(raw, finAfterNotify, (d) => new tls.TLSSocket(d, { isServer: true, cert: leaf.cert, key: leaf.key }));
    let head = '';
    const onHead = (b: Buffer) => {
      head += b.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      p.tls.off('data', onHead);
      p.plain.length = 0;
      p.tls.write(switchingProtocols(requestKey(head)));
      give(p);
    };
    p.tls.on('data', onHead);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  defer(() => new Promise((r) => srv.close(() => r(undefined))));
  return { port: (srv.address() as AddressInfo).port, peer };
}

/** A client peer: TCP to `port`, TLS over it, the upgrade sent and its 101 read. */
async function tlsPeerClient(port: number, finAfterNotify: boolean): Promise<Peer> {
  const raw = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
  await new Promise<void>((r, j) => {
    raw.once('connect', () => r());
    raw.once('error', j);
  });
  const p = wrap(raw, finAfterNotify, (d) => tls.connect({ socket: d, ca: ca.ca, servername: 'localhost' }));
  await new Promise<void>((r, j) => {
    p.tls.once('secureConnect', () => r());
    p.tls.once('error', j);
  });
  p.tls.write(upgradeRequest('/', 'dGhlIHNhbXBsZSBub25jZQ=='));
  await until(() => (Buffer.concat(p.plain).includes('\r\n\r\n')) || undefined, 5000, 'the 101');
  p.plain.length = 0;
  return p;
}

async function ourClient(port: number) {
  const events = new Collector();
  const client = newClient({ url: `wss://localhost:${port}/`, enableAutomaticReconnection: false, tls: { ca: ca.ca }, method: events.method });
  const st = await websocketClientStart({ ref: client.ref, timeout: 5 });
  expect(st).toMatchObject({ success: true, http_status: 101 });
  return { client, events };
}

/** Frames the peer received over TLS. */
function framesOf(p: Peer) {
  return decodeFrames(Buffer.concat(p.plain)).frames;
}

describe('a peer that ends its TLS stream with close_notify', () => {
  beforeAll(() => {
    ca = makeTestCa();
    leaf = ca.leaf('server', ['DNS:localhost', 'IP:127.0.0.1']);
  }, 30_000);
  afterAll(() => ca?.remove());

  test('our client: close_notify without a close frame and without FIN closes with 1006, answered with ours', async () => {
    const { port, peer } = await tlsPeerServer(false);
    const c = await ourClient(port);
    const p = await peer;
    await c.events.waitType('open');
    p.tls.end(); // close_notify; the TCP connection stays open
    const close = await c.events.waitType('close', undefined, 5000);
    expect(close.ctx).toMatchObject({ code: 1006, remote: true });
    expect(String(close.ctx.reason)).toMatch(/close_notify/);
    // Answered with ours, then our FIN.
    await until(() => (p.seen.includes('fin') && p.seen.includes('notify')) || undefined, 5000, "our client's close_notify and FIN");
  });

  test('our client: after the closing handshake, a server that waits for our close_notify before its FIN', async () => {
    // asyncio's way: the server's close frame, then close_notify, then
    // nothing until the client's close_notify.
    const { port, peer } = await tlsPeerServer(false);
    const c = await ourClient(port);
    const p = await peer;
    await c.events.waitType('open');
    p.tls.write(encodeFrame({ opcode: OP.close, payload: closePayload(4002, 'bye') }, false));
    await until(() => (framesOf(p).some((f) => f.opcode === OP.close)) || undefined, 5000, "our client's close reply");
    expect(p.seen).toEqual([]);
    p.tls.end();
    const close = await c.events.waitType('close', undefined, 5000);
    expect(close.ctx).toMatchObject({ code: 4002, reason: 'bye', remote: true });
    // Without the answer, the client would only drop TCP when its close
    // deadline passes: a FIN with no close_notify before it.
    await until(() => (p.seen.includes('fin') && p.seen.includes('notify')) || undefined, 5000, "our client's close_notify and FIN");
  });

  test('our client: a close frame and close_notify in one write, answered after the close event is acknowledged', async () => {
    // The client's close reply waits until its events before the close were
    // delivered (closeReplyOnAck); the peer's close_notify came meanwhile.
    const { port, peer } = await tlsPeerServer(false);
    const c = await ourClient(port);
    const p = await peer;
    await c.events.waitType('open');
    p.tls.cork();
    p.tls.write(encodeFrame({ opcode: OP.close, payload: closePayload(4005, 'both') }, false));
    p.tls.end();
    p.tls.uncork();
    const close = await c.events.waitType('close', undefined, 5000);
    expect(close.ctx).toMatchObject({ code: 4005, reason: 'both', remote: true });
    await until(() => (p.seen.includes('fin') && p.seen.includes('notify')) || undefined, 5000, "our client's close_notify and FIN");
    expect(framesOf(p).map((f) => f.opcode)).toEqual([OP.close]);
  });

  test('our server: close_notify without a close frame and without FIN closes with 1006, answered with ours', async () => {
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key } });
    const p = await tlsPeerClient(srv.port, false);
    const open = await srv.events.waitType('open');
    p.tls.end();
    const close = await srv.events.waitType('close', open.client, 5000);
    expect(close.ctx).toMatchObject({ code: 1006, remote: true });
    expect(String(close.ctx.reason)).toMatch(/close_notify/);
    await until(() => (p.seen.includes('fin') && p.seen.includes('notify')) || undefined, 5000, "our server's close_notify and FIN");
  });

  test('our server: after our FIN, the peer’s close_notify ends the wait for its FIN', async () => {
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key } });
    const p = await tlsPeerClient(srv.port, false);
    const open = await srv.events.waitType('open');
    p.tls.write(encodeFrame({ opcode: OP.close, payload: closePayload(4003, 'done') }));
    // The server echoes the close, then sends close_notify and its FIN, and
    // waits for the peer's FIN.
    await until(() => (p.seen.includes('fin') && p.seen.includes('notify')) || undefined, 5000, "our server's close_notify and FIN");
    expect(framesOf(p).map((f) => f.opcode)).toEqual([OP.close]);
    expect(srv.events.of('close')).toEqual([]);
    const at = performance.now();
    p.tls.end(); // the peer's close_notify, and no FIN: nothing is left to wait for
    const close = await srv.events.waitType('close', open.client, 5000);
    // Without it the server waits out its 2 s close deadline.
    expect(performance.now() - at).toBeLessThan(1500);
    expect(close.ctx).toMatchObject({ code: 4003, reason: 'done', remote: true });
  });

  test('a close_notify followed by FIN at once: one close event, as before', async () => {
    const { port, peer } = await tlsPeerServer(true);
    const c = await ourClient(port);
    const p = await peer;
    await c.events.waitType('open');
    p.tls.end();
    const close = await c.events.waitType('close', undefined, 5000);
    expect(close.ctx).toMatchObject({ code: 1006, remote: true });
    await until(() => (p.seen.includes('rawclose')) || undefined, 5000, 'the TCP connection closed');
    expect(c.events.of('close')).toHaveLength(1);
    expect(c.events.of('error')).toEqual([]);
  });
});
