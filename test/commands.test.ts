// The eleven commands: refs, statuses, configuration round trips, send
// targets, stop/start, clear, unknown refs and argument type errors.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClient,
  websocketClientClear,
  websocketClientPing,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerPing,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
  WebSocketServer,
} from '../lib/index';
import type { ServerObject } from '../lib/index';
import {
  Collector,
  canListen,
  closedPort,
  connectClient,
  defer,
  newClient,
  newServer,
  runCleanup,
  startServer,
  upgradeRequest,
} from './support';

/** A distinct, valid Sec-WebSocket-Key per socket. */
const requestKeyFor = (i: number) => Buffer.from(`burst-key-${String(i).padStart(6, '0')}`).toString('base64');

afterEach(runCleanup);

describe('websocketServer / websocketClient', () => {
  test('return the configuration plus a negative / positive ref, lowest free first', () => {
    const s1 = newServer({ port: 0, backlog: 7, maxConnections: 3 });
    const s2 = newServer();
    expect(s1.ref).toBe(-1);
    expect(s2.ref).toBe(-2);
    expect(s1.port).toBe(0);
    expect(s1.backlog).toBe(7);
    expect(s1.maxConnections).toBe(3);
    // IXWebSocket defaults
    expect(s2.port).toBe(8080);
    expect(s2.host).toBe('127.0.0.1');
    expect(s2.backlog).toBe(511); // not IXWebSocket's 5: see README, Options
    expect(s2.maxConnections).toBe(128);

    const c1 = newClient({ url: 'ws://127.0.0.1:1/x', pingInterval: 5 });
    const c2 = newClient();
    expect(c1.ref).toBe(1);
    expect(c2.ref).toBe(2);
    expect(c1.url).toBe('ws://127.0.0.1:1/x');
    expect(c1.pingInterval).toBe(5);
    expect(c2.pingInterval).toBe(-1);
    expect(c2.enablePong).toBe(true);
    expect(c2.enableAutomaticReconnection).toBe(true);
  });

  test('clear frees the ref and the lowest free one is reused', () => {
    const a = websocketServer();
    const b = websocketServer();
    expect([a.ref, b.ref]).toEqual([-1, -2]);
    expect(websocketServerClear(a)).toEqual({});
    const c = websocketServer();
    expect(c.ref).toBe(-1);
    expect(websocketServerClear(b)).toEqual({});
    expect(websocketServerClear(c)).toEqual({});

    const x = websocketClient();
    const y = websocketClient();
    expect([x.ref, y.ref]).toEqual([1, 2]);
    expect(websocketClientClear(x)).toEqual({});
    const z = websocketClient();
    expect(z.ref).toBe(1);
    expect(websocketClientClear(y)).toEqual({});
    expect(websocketClientClear(z)).toEqual({});
  });
});

describe('unknown and cleared refs', () => {
  const refStatus = expect.objectContaining({ success: false, message: expect.stringMatching(/.+/) });

  test('server commands', () => {
    const cleared = websocketServer();
    websocketServerClear(cleared);
    for (const ref of [-99, cleared.ref, 5]) {
      expect(websocketServerStart({ ref })).toEqual(refStatus);
      expect(websocketServerStop({ ref })).toEqual(refStatus);
      expect(websocketServerClear({ ref })).toEqual(refStatus);
      expect(websocketServerSend({ ref }, 'x')).toEqual([]);
      expect(websocketServerClients({ ref })).toEqual([]);
    }
  });

  test('client commands', () => {
    const cleared = websocketClient();
    websocketClientClear(cleared);
    for (const ref of [99, cleared.ref, -1]) {
      expect(websocketClientStop({ ref })).toEqual(refStatus);
      expect(websocketClientClear({ ref })).toEqual(refStatus);
      expect(websocketClientSend({ ref }, 'x')).toEqual(refStatus);
    }
  });

  test('client start resolves with success false and a message', async () => {
    const cleared = websocketClient();
    websocketClientClear(cleared);
    for (const ref of [99, cleared.ref, -1]) {
      const st = await websocketClientStart({ ref });
      expect(st.success).toBe(false);
      expect(st).toEqual(refStatus);
    }
  });
});

describe('wrong argument types throw a TypeError naming the argument', () => {
  const call = (f: (...a: any[]) => unknown, ...args: any[]) => () => f(...args);

  test('options', () => {
    expect(call(websocketServer, { port: 'x' })).toThrow(TypeError);
    expect(call(websocketServer, { port: 'x' })).toThrow(/options\.port/);
    expect(call(websocketServer, { host: 5 })).toThrow(/options\.host/);
    expect(call(websocketServer, { method: 'notAFunction' })).toThrow(/options\.method/);
    expect(call(websocketServer, 42)).toThrow(/options/);
    expect(call(websocketClient, { url: 5 })).toThrow(/options\.url/);
    expect(call(websocketClient, { pingInterval: 'often' })).toThrow(/options\.pingInterval/);
    expect(call(websocketClient, { perMessageDeflate: 3 })).toThrow(/options\.perMessageDeflate/);
  });

  test('the server / client object', () => {
    for (const f of [websocketServerStart, websocketServerStop, websocketServerClear, websocketServerClients]) {
      expect(call(f, 'x')).toThrow(TypeError);
      expect(call(f, 'x')).toThrow(/server/);
      expect(call(f, {})).toThrow(/server\.ref|ref/);
    }
    for (const f of [websocketClientStop, websocketClientClear]) {
      expect(call(f, 7)).toThrow(TypeError);
      expect(call(f, 7)).toThrow(/client/);
    }
    expect(call(websocketServerSend, null, 'x')).toThrow(/server/);
    expect(call(websocketClientSend, undefined, 'x')).toThrow(/client/);
  });

  test('data', () => {
    const s = newServer();
    const c = newClient();
    for (const bad of [42, {}, null, undefined, true]) {
      expect(call(websocketServerSend, s, bad)).toThrow(TypeError);
      expect(call(websocketServerSend, s, bad)).toThrow(/data/);
      expect(call(websocketClientSend, c, bad)).toThrow(TypeError);
      expect(call(websocketClientSend, c, bad)).toThrow(/data/);
    }
    expect(call(websocketServerSend, { ref: s.ref, clients: 'all' }, 'x')).toThrow(/clients/);
  });
});

/** Resolves once a plain TCP listener can take `port` (a stop releases it on the IO thread). */
async function waitUntilFree(port: number): Promise<void> {
  const deadline = Date.now() + 3000;
  while (!(await canListen(port))) {
    if (Date.now() > deadline) throw new Error(`port ${port} still taken after stop`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('websocketServerStart / Stop', () => {
  test('port 0 is reported by start, and stop returns the object with it', async () => {
    const srv = startServer();
    expect(srv.port).toBeGreaterThan(0);
    const stopped = websocketServerStop(srv.server);
    expect(stopped).toMatchObject({ ref: srv.server.ref, port: srv.port, host: '127.0.0.1' });
    // the port is released: a plain TCP listener can take it
    await waitUntilFree(srv.port);
  });

  test('port 0: a restart binds the port the first start got (where clients reconnect), or another if it was taken meanwhile', async () => {
    const srv = startServer();
    expect((websocketServerStop(srv.server) as ServerObject).port).toBe(srv.port);
    // with the object as created (port: 0) or by ref alone, as the class's start() does
    await waitUntilFree(srv.port);
    expect(websocketServerStart(srv.server)).toMatchObject({ success: true, port: srv.port });
    const again = await connectClient(srv);
    expect(websocketClientSend(again.client, 'same port').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'same port');
    expect((websocketServerStop(srv.server) as ServerObject).port).toBe(srv.port);
    await waitUntilFree(srv.port);
    expect(websocketServerStart({ ref: srv.server.ref })).toMatchObject({ success: true, port: srv.port });
    websocketServerStop(srv.server);
    await waitUntilFree(srv.port);

    // another listener took the port: the system picks a new one, the status and the object say which
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(srv.port, '127.0.0.1', resolve));
    defer(() => {
      if (squatter.listening) squatter.close();
    });
    const moved = websocketServerStart(srv.server);
    expect(moved.success).toBe(true);
    expect(moved.port).toBeGreaterThan(0);
    expect(moved.port).not.toBe(srv.port);
    expect((websocketServerStop(srv.server) as ServerObject).port).toBe(moved.port);

    // a fixed port given, then 0 again: the system picks (the fixed one is not kept as "the port 0 got")
    await new Promise<void>((resolve) => squatter.close(() => resolve()));
    await waitUntilFree(srv.port);
    expect(websocketServerStart({ ref: srv.server.ref, port: srv.port })).toMatchObject({ success: true, port: srv.port });
    websocketServerStop({ ref: srv.server.ref });
    await waitUntilFree(srv.port);
    const anew = websocketServerStart({ ref: srv.server.ref, port: 0 });
    expect(anew.success).toBe(true);
    expect(anew.port).not.toBe(srv.port);
    websocketServerStop({ ref: srv.server.ref });

    // the class: server.port, server.object and the next start() agree
    const cls = new WebSocketServer({ host: '127.0.0.1', port: 0 });
    defer(() => cls.clear());
    const first = cls.start();
    expect(first.success).toBe(true);
    cls.stop();
    expect(cls.object.port).toBe(first.port);
    expect(cls.port).toBe(first.port);
    await waitUntilFree(first.port!);
    expect(cls.start()).toMatchObject({ success: true, port: first.port });
  });

  test('stop then start again on the same port serves again', async () => {
    const srv = startServer();
    const first = await connectClient(srv);
    const stopped = websocketServerStop(srv.server);
    expect('ref' in stopped).toBe(true);
    // both sides see the close: the server with 1001
    const serverClose = await srv.events.waitType('close', first.conn);
    expect(serverClose.ctx.code).toBe(1001);
    const clientClose = await first.events.waitType('close');
    expect(clientClose.ctx.code).toBe(1001);
    expect(clientClose.ctx.remote).toBe(true);
    expect(websocketServerClients(srv.server)).toEqual([]);

    const again = websocketServerStart({ ref: srv.server.ref, port: srv.port });
    expect(again).toMatchObject({ success: true, port: srv.port });
    expect(typeof again.message).toBe('string');
    const second = await connectClient(srv);
    expect(websocketClientSend(second.client, 'after restart').success).toBe(true);
    const m = await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'after restart');
    expect(m.client).toBe(second.conn);
  });

  test('the default backlog takes a burst of 300 connections at once: no SYN dropped', async () => {
    // A full accept queue makes the kernel drop a SYN, which the client
    // sends again only after the initial retransmission timeout, 1 s (RFC
    // 6298 §2.1). With IXWebSocket's backlog of 5, a burst of 100 lost about
    // a tenth of its SYNs; 300 opening handshakes on loopback otherwise take
    // milliseconds.
    const srv = startServer({ maxConnections: 400 });
    const N = 300;
    const sockets: net.Socket[] = [];
    defer(() => sockets.forEach((s) => s.destroy()));
    const started = performance.now();
    const took = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        new Promise<number>((resolve, reject) => {
          const s = net.connect(srv.port, '127.0.0.1');
          sockets.push(s);
          let head = '';
          s.on('connect', () => s.write(upgradeRequest('/burst', requestKeyFor(i))));
          s.on('data', (b) => {
            head += b.toString('latin1');
            if (!head.includes('\r\n\r\n')) return;
            if (head.startsWith('HTTP/1.1 101 ')) resolve(performance.now() - started);
            else reject(new Error(`socket ${i}: ${head.split('\r\n')[0]}`));
          });
          s.on('error', reject);
          s.setTimeout(10000, () => reject(new Error(`socket ${i}: no answer in 10 s`)));
        }),
      ),
    );
    const slow = took.filter((ms) => ms >= 900);
    expect(slow, `handshakes that waited for a resent SYN (ms): ${slow.map(Math.round).join(', ')}`).toEqual([]);
    await srv.events.waitCount((e) => e.type === 'open', N, 10000, 'every connection open');
  });

  test('start fails with a message when the port is taken', () => {
    const a = startServer();
    const b = newServer({ port: a.port, host: '127.0.0.1' });
    const st = websocketServerStart(b);
    expect(st.success).toBe(false);
    expect(st.message.length).toBeGreaterThan(0);
  });

  test('properties on the object update the configuration (method, worker)', async () => {
    const first = new Collector();
    const second = new Collector();
    const server = newServer({ port: 0, method: first.method, worker: 'w1' });
    const st = websocketServerStart({ ref: server.ref, method: second.method, worker: 'w2' });
    expect(st.success).toBe(true);
    const c = newClient({ url: `ws://127.0.0.1:${st.port}/`, enableAutomaticReconnection: false, timeout: 5 });
    expect((await websocketClientStart(c)).success).toBe(true);
    const open = await second.waitType('open');
    expect(open.worker).toBe('w2');
    expect(first.events).toEqual([]);
    const stopped = websocketServerStop({ ref: server.ref });
    expect(stopped).toMatchObject({ worker: 'w2', method: second.method });
  });

  test('the ping commands apply what their object carries, and check it, as every other command', async () => {
    const s1 = new Collector();
    const s2 = new Collector();
    const c1 = new Collector();
    const c2 = new Collector();
    const server = newServer({ port: 0, method: s1.method });
    const st = websocketServerStart({ ref: server.ref });
    expect(st.success).toBe(true);
    const c = newClient({ url: `ws://127.0.0.1:${st.port}/`, enableAutomaticReconnection: false, timeout: 5, method: c1.method });
    expect((await websocketClientStart(c)).success).toBe(true);
    const open = await s1.waitType('open');
    // A wrong option throws the TypeError naming it, and changes nothing.
    expect(() => websocketServerPing({ ref: server.ref, maxPayload: -1 }, open.client)).toThrow(/maxPayload/);
    expect(() => websocketClientPing({ ref: c.ref, maxPayload: -1 })).toThrow(/maxPayload/);
    // The pong of each ping reaches the method the ping carried.
    expect(websocketServerPing({ ref: server.ref, method: s2.method, worker: 'w2' }, open.client, 'from-server')).toBe(true);
    expect(websocketClientPing({ ref: c.ref, method: c2.method }, 'from-client')).toBe(true);
    const serverPong = await s2.waitType('pong');
    expect(serverPong.worker).toBe('w2');
    expect(String(serverPong.ctx.data)).toBe('from-server');
    expect(String((await c2.waitType('pong')).ctx.data)).toBe('from-client');
    expect(s1.events.filter((e) => e.type === 'pong')).toEqual([]);
    expect(c1.events.filter((e) => e.type === 'pong')).toEqual([]);
    expect(websocketServerStop({ ref: server.ref })).toMatchObject({ worker: 'w2', method: s2.method });
  });
});

describe('websocketClientStart / Stop', () => {
  test('start resolves with the handshake status', async () => {
    const srv = startServer();
    const events = new Collector();
    const url = `ws://127.0.0.1:${srv.port}/path?q=1`;
    const c = newClient({ url, enableAutomaticReconnection: false, method: events.method });
    const st = await websocketClientStart({ ...c, timeout: 5 });
    expect(st.success).toBe(true);
    expect(st.http_status).toBe(101);
    expect(st.errorStr).toBe('');
    expect(st.uri).toBe(url);
    expect(typeof st.headers).toBe('object');
    expect(String(Object.entries(st.headers).find(([k]) => k.toLowerCase() === 'upgrade')?.[1])).toMatch(/websocket/i);
  });

  test('start resolves with success false against a closed port', async () => {
    const port = await closedPort();
    const c = newClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(false);
    expect(st.errorStr.length).toBeGreaterThan(0);
    expect(st.uri).toBe(`ws://127.0.0.1:${port}/`);
  });

  test('stop closes with 1000 and returns the updated object; start works again', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    const stopped = websocketClientStop({ ref: conn.client.ref, pingInterval: 3 });
    expect(stopped).toMatchObject({ ref: conn.client.ref, url: conn.client.url, pingInterval: 3 });
    const sc = await srv.events.waitType('close', conn.conn);
    expect(sc.ctx).toMatchObject({ code: 1000, remote: true });
    const cc = await conn.events.waitType('close');
    expect(cc.ctx).toMatchObject({ code: 1000, remote: false });
    expect(websocketServerClients(srv.server)).toEqual([]);

    const st = await websocketClientStart({ ref: conn.client.ref, timeout: 5 });
    expect(st.success).toBe(true);
    await srv.events.waitCount((e) => e.type === 'open', 2);
  });
});

describe('send and clients', () => {
  test('websocketServerClients lists connection refs, lowest free first', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const b = await connectClient(srv);
    expect([a.conn, b.conn]).toEqual([1, 2]);
    expect(websocketServerClients(srv.server).sort()).toEqual([1, 2]);
    websocketClientStop(a.client);
    await srv.events.waitType('close', 1);
    expect(websocketServerClients(srv.server)).toEqual([2]);
    const c = await connectClient(srv);
    expect(c.conn).toBe(1);
    expect(websocketServerClients(srv.server).sort()).toEqual([1, 2]);
  });

  test('server send to all: one status per connection, every client receives', async () => {
    const srv = startServer();
    const peers = [await connectClient(srv), await connectClient(srv), await connectClient(srv)];
    const statuses = websocketServerSend(srv.server, 'to all');
    expect(statuses).toHaveLength(3);
    expect(statuses.map((s) => s.client).sort()).toEqual(peers.map((p) => p.conn).sort());
    for (const s of statuses) {
      expect(s).toMatchObject({ success: true, compressionError: false, payloadSize: 6, wireSize: 6 });
      expect(typeof s.bufferedAmount).toBe('number');
    }
    for (const p of peers) {
      const m = await p.events.waitType('message');
      expect(m.ctx).toMatchObject({ data: 'to all', binary: false, wireSize: 6 });
      expect(m.server).toBe(0);
    }
  });

  test('server send to a clients subset: statuses for exactly those targets', async () => {
    const srv = startServer();
    const [a, b, c] = [await connectClient(srv), await connectClient(srv), await connectClient(srv)];
    const statuses = websocketServerSend({ ...srv.server, clients: [c.conn, a.conn] }, Buffer.from([1, 2, 3]));
    expect(statuses.map((s) => s.client)).toEqual([c.conn, a.conn]);
    for (const s of statuses) expect(s).toMatchObject({ success: true, payloadSize: 3 });
    for (const p of [a, c]) {
      const m = await p.events.waitType('message');
      expect(m.ctx.binary).toBe(true);
      expect(Buffer.isBuffer(m.ctx.data)).toBe(true);
      expect([...m.ctx.data]).toEqual([1, 2, 3]);
    }
    // b got nothing: a later message to everyone is b's first
    websocketServerSend({ ref: srv.server.ref }, 'marker');
    const first = await b.events.waitType('message');
    expect(first.ctx.data).toBe('marker');
    expect(b.events.of('message')).toHaveLength(1);
  });

  test('a send to an unknown connection gets a failed status for that target', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const statuses = websocketServerSend({ ref: srv.server.ref, clients: [a.conn, 77] }, 'x');
    expect(statuses).toHaveLength(2);
    expect(statuses[0]).toMatchObject({ client: a.conn, success: true });
    expect(statuses[1]).toMatchObject({ client: 77, success: false });
  });

  test('client send statuses; a not-connected client fails', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    expect(websocketClientSend(a.client, 'héllo')).toMatchObject({
      success: true,
      compressionError: false,
      payloadSize: 6,
      wireSize: 6,
    });
    const m = await srv.events.waitType('message', a.conn);
    expect(m.ctx).toMatchObject({ data: 'héllo', binary: false, wireSize: 6 });
    expect(m.server).toBe(srv.server.ref);

    const idle = newClient({ url: `ws://127.0.0.1:${srv.port}/` });
    expect(websocketClientSend(idle, 'x').success).toBe(false);
  });

  test('binary: false sends bytes as text; invalid UTF-8 then fails', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    expect(websocketClientSend({ ref: a.client.ref, binary: false }, Buffer.from('as text')).success).toBe(true);
    const m = await srv.events.waitType('message', a.conn);
    expect(m.ctx).toMatchObject({ binary: false, data: 'as text' });
    const bad = websocketClientSend({ ref: a.client.ref, binary: false }, Buffer.from([0xff, 0xfe]));
    expect(bad.success).toBe(false);
    const bad2 = websocketServerSend({ ref: srv.server.ref, binary: false }, Buffer.from([0xc3]));
    expect(bad2).toHaveLength(1);
    expect(bad2[0].success).toBe(false);
  });

  test('ArrayBuffer and TypedArray views are sent as binary with their exact bytes', async () => {
    const srv = startServer();
    const a = await connectClient(srv);
    const ab = new Uint8Array([9, 8, 7, 6]).buffer;
    const backing = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const view = new Uint16Array(backing.buffer, 2, 2); // bytes 2..5
    expect(websocketClientSend(a.client, ab).payloadSize).toBe(4);
    expect(websocketClientSend(a.client, view).payloadSize).toBe(4);
    const ms = await srv.events.waitCount((e) => e.type === 'message', 2);
    expect([...ms[0].ctx.data]).toEqual([9, 8, 7, 6]);
    expect([...ms[1].ctx.data]).toEqual([2, 3, 4, 5]);
    expect(ms.every((e) => e.ctx.binary === true)).toBe(true);
  });
});

describe('worker / window / process', () => {
  test('are handed back untouched to the method and kept in the object', async () => {
    const worker = { name: 'w' };
    const win = [1, 2];
    const proc = { pid: 3 };
    const srv = startServer({ worker, window: win, process: proc });
    expect(srv.server.worker).toBe(worker);
    expect(srv.server.window).toBe(win);
    expect(srv.server.process).toBe(proc);
    const cw = { client: true };
    const conn = await connectClient(srv, { worker: cw, window: 5, process: 'p' });
    expect(conn.client.worker).toBe(cw);
    const so = srv.events.of('open')[0];
    expect(so.worker).toBe(worker);
    expect(so.window).toBe(win);
    expect(so.process).toBe(proc);
    const co = conn.events.of('open')[0];
    expect(co.worker).toBe(cw);
    expect(co.window).toBe(5);
    expect(co.process).toBe('p');
    expect(co.server).toBe(0);
  });
});

describe('IPv6', () => {
  test('listen on ::1 and connect to [::1]', async (ctx) => {
    if (!(await ipv6Loopback())) ctx.skip();
    const srv = startServer({ host: '::1' });
    const events = new Collector();
    const c = newClient({
      url: `ws://[::1]:${srv.port}/v6`,
      enableAutomaticReconnection: false,
      method: events.method,
    });
    const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
    expect(st.success).toBe(true);
    const open = await srv.events.waitType('open');
    expect(open.ctx.uri).toBe('/v6');
    websocketClientSend(c, 'v6');
    const m = await srv.events.waitType('message');
    expect(m.ctx.data).toBe('v6');
    websocketServerSend(srv.server, 'back');
    expect((await events.waitType('message')).ctx.data).toBe('back');
  });
});

describe('maxConnections', () => {
  test('the connection beyond the limit is refused while the others keep working', async () => {
    const srv = startServer({ maxConnections: 2 });
    const a = await connectClient(srv);
    const b = await connectClient(srv);
    const extra = newClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    const st = await websocketClientStart({ ref: extra.ref, timeout: 5 });
    expect(st.success).toBe(false);
    expect(st.http_status).toBe(503);
    expect(websocketServerClients(srv.server).sort()).toEqual([a.conn, b.conn].sort());
    expect(srv.events.of('open')).toHaveLength(2);
    websocketServerSend(srv.server, 'still here');
    for (const p of [a, b]) expect((await p.events.waitType('message')).ctx.data).toBe('still here');
    // a freed slot is usable again
    websocketClientStop(a.client);
    await srv.events.waitType('close', a.conn);
    await connectClient(srv);
  });
});



function ipv6Loopback(): Promise<boolean> {
  return new Promise((resolve) => {
    const l = net.createServer();
    l.once('error', () => resolve(false));
    l.listen(0, '::1', () => l.close(() => resolve(true)));
  });
}
