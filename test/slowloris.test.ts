// Issue 11, defect 5: sockets that connect and say nothing (slowloris) must
// not keep real clients out. Handshaking sockets are counted apart from open
// connections (maxHandshakes), a socket silent for firstByteTimeout is
// closed, and maxConnectionsPerAddress caps the sockets of one address.
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
} from '../lib/index';
import { RawPeer, connectClient, defer, delay, newClient, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

/** Upgrades a fresh raw connection, retrying while the server has not yet seen a slot freed. */
async function upgradeSoon(port: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    const p = await RawPeer.connect(port);
    try {
      await p.upgrade();
      return true;
    } catch {
      p.socket.destroy();
      await delay(50);
    }
  }
  return false;
}

/** Opens n TCP connections that never send a byte. */
async function idleSockets(port: number, n: number, localAddress?: string): Promise<RawPeer[]> {
  const out: RawPeer[] = [];
  for (let i = 0; i < n; i++) out.push(await RawPeer.connect(port, '127.0.0.1', localAddress));
  return out;
}

describe('handshaking sockets are not open connections', () => {
  test('four idle sockets do not keep four real clients out of maxConnections: 4', async () => {
    // A long firstByteTimeout: the idle sockets stay for the whole test.
    const srv = startServer({ maxConnections: 4, firstByteTimeout: 30, handshakeTimeout: 30 });
    const idle = await idleSockets(srv.port, 4);
    await delay(100);
    const clients = [];
    for (let i = 0; i < 4; i++) clients.push(await connectClient(srv));
    expect(websocketServerClients(srv.server)).toHaveLength(4);
    expect(idle.every((p) => !p.ended)).toBe(true);
    // They all work.
    websocketServerSend(srv.server, 'to all');
    for (const c of clients) expect((await c.events.waitType('message')).ctx.data).toBe('to all');
    // The fifth real client is over maxConnections: 503, and the others go on.
    const extra = newClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: extra.ref, timeout: 5 });
    expect(st).toMatchObject({ success: false, http_status: 503 });
    expect(websocketClientSend(clients[0].client, 'still').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'still');
  });

  test('beyond maxHandshakes a new socket is answered 503 at once; a freed slot is reusable', async () => {
    const srv = startServer({ maxHandshakes: 3, firstByteTimeout: 30, handshakeTimeout: 30 });
    const good = await connectClient(srv); // open connections do not count
    const idle = await idleSockets(srv.port, 3);
    await delay(100);
    const extra = await RawPeer.connect(srv.port);
    const head = await extra.readHead(3000);
    expect(head.status).toBe(503);
    await extra.waitEnd();
    // The open connection keeps working.
    expect(websocketClientSend(good.client, 'alive').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'alive');
    // One idle socket goes: a new handshake fits.
    idle[0].socket.destroy();
    expect(await upgradeSoon(srv.port)).toBe(true);
  });
});

describe('firstByteTimeout', () => {
  test('a socket that sends nothing is closed after firstByteTimeout; one that sent a byte gets the handshakeTimeout', async () => {
    const srv = startServer({ firstByteTimeout: 0.5, handshakeTimeout: 2.5 });
    const good = await connectClient(srv);
    const t0 = Date.now();
    const [silent] = await idleSockets(srv.port, 1);
    const talking = await RawPeer.connect(srv.port);
    talking.write('GET / HTTP/1.1\r\n');
    await silent.waitEnd(5000);
    const silentMs = Date.now() - t0;
    expect(silentMs).toBeGreaterThanOrEqual(400);
    expect(silentMs).toBeLessThan(2000);
    // The one that spoke is still there, and is dropped by handshakeTimeout.
    expect(talking.ended).toBe(false);
    await talking.waitEnd(6000);
    const talkingMs = Date.now() - t0;
    expect(talkingMs).toBeGreaterThanOrEqual(2300);
    expect(talkingMs).toBeLessThan(5000);
    // Neither became a connection; the good one is untouched.
    expect(websocketServerClients(srv.server)).toEqual([good.conn]);
    expect(websocketClientSend(good.client, 'ok').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'ok');
  });

  test('a client that upgrades at once is not affected, and firstByteTimeout 0 leaves only handshakeTimeout', async () => {
    const srv = startServer({ firstByteTimeout: 0.2 });
    const c = await connectClient(srv);
    await delay(400);
    expect(websocketClientSend(c.client, 'after').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'after');

    const off = startServer({ firstByteTimeout: 0, handshakeTimeout: 1 });
    const t0 = Date.now();
    const [silent] = await idleSockets(off.port, 1);
    await delay(500);
    expect(silent.ended).toBe(false);
    await silent.waitEnd(5000);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
  });
});

describe('maxConnectionsPerAddress', () => {
  test('the sockets of one address beyond the cap get HTTP 429; other addresses are served', async () => {
    const srv = startServer({ maxConnectionsPerAddress: 2 });
    // One open connection and one handshaking socket from 127.0.0.1.
    const open = await RawPeer.connect(srv.port);
    await open.upgrade();
    const [idle] = await idleSockets(srv.port, 1);
    await delay(100);
    const third = await RawPeer.connect(srv.port);
    const head = await third.readHead(3000);
    expect(head.status).toBe(429);
    await third.waitEnd();
    // Another address is not affected.
    const other = await RawPeer.connect(srv.port, '127.0.0.1', '127.0.0.2');
    await other.upgrade();
    await until(() => (websocketServerClients(srv.server).length === 2 ? true : undefined), 3000, 'two clients');
    // The open connection from the capped address still works.
    open.send({ opcode: 0x1, payload: 'from the capped address' });
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'from the capped address');
    // When one of its sockets goes, the address may connect again.
    idle.socket.destroy();
    expect(await upgradeSoon(srv.port)).toBe(true);
  });
});

describe('options', () => {
  test('defaults come back on the object, values are validated', () => {
    const s = websocketServer({ port: 0 });
    defer(() => websocketServerClear({ ref: s.ref }));
    expect(s).toMatchObject({
      maxHandshakes: 512,
      firstByteTimeout: 5,
      maxConnectionsPerAddress: 0,
      maxUnfinishedBytes: 256 * 1024 * 1024,
    });
    const t = websocketServer({ port: 0, maxHandshakes: 7, firstByteTimeout: 0.25, maxConnectionsPerAddress: 3, maxUnfinishedBytes: 0 });
    defer(() => websocketServerClear({ ref: t.ref }));
    expect(t).toMatchObject({ maxHandshakes: 7, firstByteTimeout: 0.25, maxConnectionsPerAddress: 3, maxUnfinishedBytes: 0 });
    expect(() => websocketServer({ maxHandshakes: 0 })).toThrow(/options\.maxHandshakes must be an integer between 1/);
    expect(() => websocketServer({ firstByteTimeout: -1 })).toThrow(/options\.firstByteTimeout must be a number of seconds/);
    expect(() => websocketServer({ maxConnectionsPerAddress: 1.5 })).toThrow(/options\.maxConnectionsPerAddress must be an integer/);
    expect(() => websocketServer({ maxUnfinishedBytes: -1 })).toThrow(/options\.maxUnfinishedBytes must be an integer/);
  });
});
