// TLS session resumption. Our client keeps the sessions a server offers (TLS
// 1.3 tickets, a TLS 1.2 session) and offers them back when it reconnects to
// that server, so the reconnection skips the certificate exchange: no
// chain to verify on the client, no signature on the server. Node's TLS
// server says whether each connection resumed (isSessionReused).
//
// Our server, for its part, must accept a client that resumes while it
// verifies client certificates (verifyPeer): without a session id context
// OpenSSL refuses every such handshake ("session id context
// uninitialized"). Browsers and Node's https agents resume by themselves.
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import * as https from 'https';
import * as tls from 'tls';
import type { AddressInfo } from 'net';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { websocketClientSend, websocketClientStart, websocketClientStop, websocketServerStart, websocketServerStop } from '../lib/index';
import type { ServerObject, TlsOptions } from '../lib/index';
import { Collector, defer, newClient, runCleanup, startServer, until } from './support';
import { makeTestCa, type CertPair, type TestCa } from './support/certs';
import { issueCert } from './support/x509';

afterEach(runCleanup);

let ca: TestCa;
let leaf: CertPair;

beforeAll(() => {
  ca = makeTestCa('resumption test CA');
  leaf = ca.leaf('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
});
afterAll(() => ca?.remove());

interface Handshake {
  reused: boolean;
  protocol: string | null;
}

/** ws on Node's https: every TLS connection's resumption recorded, every
 * WebSocket kept (to cut them from the server side). */
async function nodeServer(options: https.ServerOptions = {}) {
  const hs = https.createServer({ cert: leaf.cert, key: leaf.key, ...options });
  const wss = new WsServer({ server: hs });
  const handshakes: Handshake[] = [];
  const sockets: WebSocket[] = [];
  hs.on('secureConnection', (s: tls.TLSSocket) => handshakes.push({ reused: s.isSessionReused(), protocol: s.getProtocol() }));
  wss.on('connection', (ws) => {
    sockets.push(ws);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((r) => hs.listen(0, '127.0.0.1', () => r()));
  defer(() => new Promise((r) => hs.close(() => r(undefined))));
  defer(() => {
    for (const ws of sockets) ws.terminate();
    return new Promise((r) => wss.close(() => r(undefined)));
  });
  return { port: (hs.address() as AddressInfo).port, handshakes, sockets };
}

/** Our client with automatic reconnection (100 ms between attempts). */
async function reconnectingClient(url: string, tlsOptions: TlsOptions = { ca: ca.ca }) {
  const events = new Collector();
  const client = newClient({
    url,
    tls: tlsOptions,
    method: events.method,
    enableAutomaticReconnection: true,
    minWaitBetweenReconnectionRetries: 100,
    maxWaitBetweenReconnectionRetries: 100,
  });
  defer(() => websocketClientStop({ ref: client.ref, timeout: 1 }));
  const status = await websocketClientStart({ ref: client.ref, timeout: 5 });
  expect(status).toMatchObject({ success: true });
  return { client, events };
}

/** Cuts the newest connection from the server side and waits for the
 * client to be back (one more open event, one more TLS handshake). */
async function cutAndWait(srv: { sockets: WebSocket[]; handshakes: Handshake[] }, events: Collector) {
  const opens = events.of('open').length;
  const handshakes = srv.handshakes.length;
  srv.sockets[srv.sockets.length - 1].terminate();
  await events.waitCount((e) => e.type === 'open', opens + 1, 5000, 'the client to reconnect');
  await until(() => (srv.handshakes.length > handshakes || undefined), 5000, 'the new TLS handshake');
}

describe('our client resumes its TLS session when it reconnects', () => {
  test('TLS 1.3: each ticket is used once; the two a Node server sends after a full handshake resume the next two reconnections', async () => {
    // Node's server sends two tickets after a full handshake and none after
    // a resumption (OpenSSL's own server, ours, sends one more each time:
    // tls_test resumes five times in a row against it).
    const srv = await nodeServer();
    const { client, events } = await reconnectingClient(`wss://localhost:${srv.port}/`);
    for (let i = 0; i < 5; i++) await cutAndWait(srv, events);
    expect(srv.handshakes.map((h) => h.protocol)).toEqual(Array(6).fill('TLSv1.3'));
    expect(srv.handshakes.map((h) => h.reused)).toEqual([false, true, true, false, true, true]);
    expect(websocketClientSend(client, 'after resumption').success).toBe(true);
    expect((await events.waitType('message')).ctx.data).toBe('after resumption');
  });

  test('TLS 1.2: the session is resumed too, and again on the next reconnection', async () => {
    const srv = await nodeServer({ maxVersion: 'TLSv1.2' });
    const { events } = await reconnectingClient(`wss://localhost:${srv.port}/`);
    for (let i = 0; i < 2; i++) await cutAndWait(srv, events);
    expect(srv.handshakes.map((h) => h.protocol)).toEqual(['TLSv1.2', 'TLSv1.2', 'TLSv1.2']);
    expect(srv.handshakes.map((h) => h.reused)).toEqual([false, true, true]);
  });

  test('sessions belong to one client and one server name: another client, or the same server by IP, starts afresh', async () => {
    const srv = await nodeServer();
    const first = await reconnectingClient(`wss://localhost:${srv.port}/`);
    await cutAndWait(srv, first.events);
    // A second client object: its own start, its own (empty) cache.
    await reconnectingClient(`wss://localhost:${srv.port}/`);
    // The same server under its IP address: another name verified, another key.
    await reconnectingClient(`wss://127.0.0.1:${srv.port}/`);
    await until(() => (srv.handshakes.length === 4 || undefined), 5000, 'four handshakes');
    expect(srv.handshakes.map((h) => h.reused)).toEqual([false, true, false, false]);
  });
});

describe('our server accepts clients that resume', () => {
  test("with verifyPeer (client certificates): Node's tls resuming its session is accepted", async () => {
    const clientCert = issueCert({ cn: 'resuming client', extKeyUsage: ['clientAuth'] });
    // The client certificate is self-signed: the server trusts it as its own CA.
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key, ca: clientCert.cert, verifyPeer: true } });
    const connect = (session?: Buffer) =>
      new Promise<{ session?: Buffer; reused: boolean; error?: string }>((resolve) => {
        let got: Buffer | undefined;
        const s = tls.connect({ host: '127.0.0.1', port: srv.port, servername: 'localhost', ca: ca.ca, cert: clientCert.cert, key: clientCert.key, session });
        s.on('session', (b: Buffer) => {
          got = b;
        });
        s.on('secureConnect', () => {
          const reused = s.isSessionReused();
          // A WebSocket upgrade, so the server really serves this connection.
          s.write(`GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
          s.once('data', (d: Buffer) => {
            const ok = d.toString('latin1').startsWith('HTTP/1.1 101');
            // Wait a moment for the TLS 1.3 ticket, which follows the handshake.
            setTimeout(() => {
              s.destroy();
              resolve({ session: got, reused, error: ok ? undefined : d.toString('latin1').split('\r\n')[0] });
            }, 100);
          });
        });
        s.on('error', (e) => resolve({ reused: false, error: e.message }));
      });
    const first = await connect();
    expect(first.error).toBeUndefined();
    expect(first.session).toBeDefined();
    const second = await connect(first.session);
    expect(second.error).toBeUndefined();
    expect(second.reused).toBe(true);
    await srv.events.waitCount((e) => e.type === 'open', 2, 5000, 'both connections open on the server');
  });

  test('across a stop and start of the server: sessions resume without verifyPeer, not with it (it may verify against other CAs now)', async () => {
    const session = (port: number, extra: tls.ConnectionOptions = {}, offer?: Buffer) =>
      new Promise<{ session?: Buffer; reused: boolean; upgraded: boolean }>((resolve) => {
        let got: Buffer | undefined;
        const s = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.ca, session: offer, ...extra });
        s.on('session', (b: Buffer) => {
          got = b;
        });
        s.on('error', () => resolve({ reused: false, upgraded: false }));
        s.on('secureConnect', () => {
          const reused = s.isSessionReused();
          s.write(`GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n`);
          s.once('data', (d: Buffer) => {
            const upgraded = d.toString('latin1').startsWith('HTTP/1.1 101');
            setTimeout(() => {
              s.destroy();
              resolve({ session: got, reused, upgraded });
            }, 100);
          });
        });
      });
    const restart = (srv: ReturnType<typeof startServer>) => {
      const stopped = websocketServerStop(srv.server) as ServerObject;
      expect(websocketServerStart(stopped)).toMatchObject({ success: true, port: srv.port });
    };

    const plain = startServer({ tls: { cert: leaf.cert, key: leaf.key } });
    const first = await session(plain.port);
    expect(first).toMatchObject({ reused: false, upgraded: true });
    restart(plain);
    const again = await session(plain.port, {}, first.session);
    expect(again).toMatchObject({ reused: true, upgraded: true });

    const cc = issueCert({ cn: 'restart client', extKeyUsage: ['clientAuth'] });
    const mtls = startServer({ tls: { cert: leaf.cert, key: leaf.key, ca: cc.cert, verifyPeer: true } });
    const withCert = { cert: cc.cert, key: cc.key };
    const one = await session(mtls.port, withCert);
    expect(one).toMatchObject({ reused: false, upgraded: true });
    // Before a restart it resumes...
    const two = await session(mtls.port, withCert, one.session);
    expect(two).toMatchObject({ reused: true, upgraded: true });
    restart(mtls);
    // ... after one, a full handshake (the client certificate verified again).
    const three = await session(mtls.port, withCert, two.session ?? one.session);
    expect(three).toMatchObject({ reused: false, upgraded: true });
  });

  test('our client ↔ our server with client certificates: reconnections resume and are accepted; after a server restart too', async () => {
    const cc = issueCert({ cn: 'our client', extKeyUsage: ['clientAuth'] });
    // maxPayload: a message over it makes the server close (1009), which
    // the client answers by reconnecting, with its session.
    const srv = startServer({ tls: { cert: leaf.cert, key: leaf.key, ca: cc.cert, verifyPeer: true }, maxPayload: 16 });
    const { client, events } = await reconnectingClient(`wss://localhost:${srv.port}/`, { ca: ca.ca, cert: cc.cert, key: cc.key });
    for (let i = 1; i <= 3; i++) {
      expect(websocketClientSend(client, 'x'.repeat(100)).success).toBe(true);
      await events.waitCount((e) => e.type === 'close' && e.ctx.code === 1009, i, 5000, `close ${i} (1009)`);
      await events.waitCount((e) => e.type === 'open', i + 1, 5000, `reconnection ${i}`);
    }
    // A restart: another TLS context, whose ticket keys the client's
    // sessions do not match: a full handshake, and it connects.
    const stopped = websocketServerStop(srv.server) as ServerObject;
    expect(websocketServerStart(stopped)).toMatchObject({ success: true, port: srv.port });
    await events.waitCount((e) => e.type === 'open', 5, 5000, 'reconnection after the restart');
    expect(events.of('error')).toEqual([]);
    expect(websocketClientSend(client, 'mutual').success).toBe(true);
    await until(() => (srv.events.of('message').some((e) => e.ctx.data === 'mutual') || undefined), 5000, 'the message');
  });
});
