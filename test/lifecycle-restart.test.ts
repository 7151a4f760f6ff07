// Stop and restart: server stop closes every connection with 1001 (a close event
// each), releases the port at once and returns without waiting; start after
// stop uses the options the object carries; client stop is a bounded close
// handshake; clear frees the ref for reuse.
import * as net from 'net';
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerStart,
  websocketServerStop,
} from '../lib/index';
import type { ServerObject } from '../lib/index';
import { Collector, RawPeer, connectClient, defer, delay, newClient, rawServer, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

// A stop returns without waiting for any close handshake (the close wait is
// 2 s): an eighth of that leaves room for a preempted call on a loaded machine
// and under the sanitizer build.
const STOP_RETURNS_MS = 250;

describe('server stop / start cycles', () => {
  test('6 cycles on the same port: each stop gives a 1001 close per connection on both sides', async () => {
    const srv = startServer();
    const port = srv.port;
    let obj: ServerObject = srv.server;
    for (let cycle = 0; cycle < 6; cycle++) {
      if (cycle > 0) {
        const st = websocketServerStart(obj);
        expect(st, `cycle ${cycle}`).toMatchObject({ success: true, port });
      }
      const clients = [];
      for (let k = 0; k < 3; k++) clients.push(await connectClient(srv));
      const conns = websocketServerClients(srv.server).sort();
      expect(conns).toEqual(clients.map((c) => c.conn).sort());
      const before = srv.events.events.length;

      const t0 = Date.now();
      const stopped = websocketServerStop(obj);
      const ms = Date.now() - t0;
      expect(ms, `stop took ${ms} ms`).toBeLessThan(STOP_RETURNS_MS);
      expect('ref' in stopped).toBe(true);
      obj = stopped as ServerObject;
      expect(obj.port).toBe(port);

      // Server side: one close per connection, 1001.
      const closes = await until(
        () => {
          const c = srv.events.events.slice(before).filter((e) => e.type === 'close');
          return c.length >= conns.length ? c : undefined;
        },
        4000,
        `server closes in cycle ${cycle} (seen: ${srv.events.summary()})`,
      );
      expect(closes.map((e) => e.client).sort()).toEqual(conns);
      for (const e of closes) expect(e.ctx.code).toBe(1001);
      // Client side: each sees 1001 from the peer.
      for (const c of clients) {
        const close = await c.events.waitType('close', undefined, 4000);
        expect(close.ctx.code).toBe(1001);
        expect(close.ctx.remote).toBe(true);
        websocketClientClear(c.client);
      }
      expect(websocketServerClients(srv.server)).toEqual([]);
      // The port is released at once: a plain listener can take it.
      await new Promise<void>((resolve, reject) => {
        const probe = net.createServer();
        probe.once('error', reject);
        probe.listen(port, '127.0.0.1', () => probe.close(() => resolve()));
      });
    }
  });

  test('stop returns at once even with many connected clients', async () => {
    const srv = startServer();
    const clients = [];
    for (let k = 0; k < 20; k++) clients.push(await connectClient(srv));
    const t0 = process.hrtime.bigint();
    websocketServerStop(srv.server);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    console.log(`server stop with 20 connected clients returned in ${ms.toFixed(2)} ms`);
    expect(ms).toBeLessThan(STOP_RETURNS_MS);
    await srv.events.waitCount((e) => e.type === 'close', 20, 5000, 'server closes');
    for (const c of clients) await c.events.waitType('close', undefined, 5000);
  });

  test('start after stop uses changed options the object carries (maxConnections, port)', async () => {
    const srv = startServer({ maxConnections: 5 });
    const stopped = websocketServerStop(srv.server) as ServerObject;
    expect(stopped.maxConnections).toBe(5);
    // Restart with maxConnections 1 carried on the object.
    const st = websocketServerStart({ ...stopped, maxConnections: 1 });
    expect(st).toMatchObject({ success: true, port: srv.port });
    await connectClient(srv);
    const ev = new Collector();
    const second = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      method: ev.method,
    });
    const r = await websocketClientStart(second);
    expect(r.success).toBe(false);
    expect(r.http_status).toBe(503);
    // {ref} only: srv.server still carries maxConnections 5 and would set it back.
    const stopped2 = websocketServerStop({ ref: srv.server.ref }) as ServerObject;
    expect(stopped2.maxConnections).toBe(1);
    // Restart on another port given in the start call: the old one is free.
    const other = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const st2 = websocketServerStart({ ref: srv.server.ref, port: other, maxConnections: 2 });
    expect(st2).toMatchObject({ success: true, port: other });
    const stopped3 = websocketServerStop({ ref: srv.server.ref }) as ServerObject;
    expect(stopped3).toMatchObject({ port: other, maxConnections: 2 });
  });

  test('a raw connection that ignores the close frame does not hold the stop: its close event still comes', async () => {
    const srv = startServer();
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade();
    const open = await srv.events.waitType('open');
    const t0 = Date.now();
    websocketServerStop(srv.server);
    expect(Date.now() - t0).toBeLessThan(STOP_RETURNS_MS);
    const f = await raw.readUntilClose(3000);
    expect(f.code).toBe(1001);
    // Never answered: the server gives up after its close wait and reports
    // that no close frame came back (1006, RFC 6455 7.1.5), not the 1001 it sent.
    const close = await srv.events.waitType('close', open.client, 5000);
    expect(close.ctx).toEqual({ code: 1006, reason: 'Close handshake timed out', remote: false });
    await raw.waitEnd(5000);
    // Meanwhile the port was already free for a new start.
    expect(websocketServerStart(srv.server).success).toBe(true);
  });

  test('clear drops connections, frees the ref and the lowest free ref is reused', async () => {
    const a = websocketServer({ port: 0 });
    const b = websocketServer({ port: 0 });
    defer(() => websocketServerClear({ ref: b.ref }));
    const refA = a.ref;
    const ev = new Collector();
    const st = websocketServerStart({ ref: a.ref, method: ev.method });
    expect(st.success).toBe(true);
    const client = await connectClient({ server: a, port: st.port!, events: ev });
    expect(websocketServerClear(a)).toEqual({});
    const close = await client.events.waitType('close', undefined, 3000);
    expect([1001, 1006]).toContain(close.ctx.code);
    const c = websocketServer({ port: 0 });
    defer(() => websocketServerClear({ ref: c.ref }));
    expect(c.ref).toBe(refA);
    // The cleared server's port is free again.
    const again = websocketServer({ port: st.port });
    defer(() => websocketServerClear({ ref: again.ref }));
    expect(websocketServerStart(again).success).toBe(true);
  });
});

describe('client stop / start', () => {
  test('client stop against a peer that never answers the close: close event within the close wait', async () => {
    // A raw server that completes the handshake and then ignores everything.
    const { port } = await rawServer((s) => s.resume());
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${port}/`, method: ev.method });
    expect((await websocketClientStart(client)).success).toBe(true);
    const t0 = Date.now();
    websocketClientStop(client);
    expect(Date.now() - t0).toBeLessThan(STOP_RETURNS_MS);
    const close = await ev.waitType('close', undefined, 5000);
    const ms = Date.now() - t0;
    console.log(`client stop against a mute peer: close event after ${ms} ms`);
    expect(close.ctx).toEqual({ code: 1006, reason: 'Close handshake timed out', remote: false }); // no close frame came back
    expect(ms).toBeLessThan(2000 + 700);
    await delay(300);
    expect(ev.of('open')).toHaveLength(1);
  });

  test('start after stop with a changed url; 5 client stop/start cycles', async () => {
    const s1 = startServer();
    const s2 = startServer();
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${s1.port}/a`, method: ev.method });
    for (let cycle = 0; cycle < 5; cycle++) {
      const target = cycle % 2 === 0 ? s1 : s2;
      const url = `ws://127.0.0.1:${target.port}/c${cycle}`;
      const before = ev.events.length;
      const st = await websocketClientStart({ ref: client.ref, url });
      expect(st.success, `cycle ${cycle}: ${st.errorStr}`).toBe(true);
      expect(st.uri).toBe(url);
      const open = await until(() => ev.events.slice(before).find((e) => e.type === 'open'), 3000, 'open');
      expect(open.ctx.uri).toBe(url);
      // {ref} only: the created object still carries the first url, and any
      // command taking it would set that url back.
      websocketClientSend({ ref: client.ref }, `hello ${cycle}`);
      await target.events.waitFor((e) => e.type === 'message' && e.ctx.data === `hello ${cycle}`, 3000);
      const stopped = websocketClientStop({ ref: client.ref });
      expect('ref' in stopped && stopped.url).toBe(url);
      const close = await until(() => ev.events.slice(before).find((e) => e.type === 'close'), 3000, 'close');
      expect(close.ctx.code).toBe(1000);
    }
    expect(ev.of('open')).toHaveLength(5);
    expect(ev.of('error')).toHaveLength(0);
  });

  test('start while open, or right after stop(): the open connection ends with a close handshake and its close event comes before the new open', async () => {
    const srv = startServer();
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${srv.port}/first`, method: ev.method, enableAutomaticReconnection: false });
    expect((await websocketClientStart({ ref: client.ref })).success).toBe(true);
    const first = await srv.events.waitType('open');

    // start() on the open client, with another path
    const again = await websocketClientStart({ ref: client.ref, url: `ws://127.0.0.1:${srv.port}/second` });
    expect(again.success, again.errorStr).toBe(true);
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close', 'open']);
    expect(ev.of('close')[0]!.ctx).toMatchObject({ code: 1000, reason: 'Client restarted', remote: false });
    const serverClose = await srv.events.waitFor((e) => e.type === 'close' && e.client === first.client);
    expect(serverClose.ctx.code).toBe(1000);
    const second = await srv.events.waitFor((e) => e.type === 'open' && e.ctx.uri === '/second');

    // stop() then start() at once: the stop's close handshake is not cut short
    websocketClientStop({ ref: client.ref });
    const third = await websocketClientStart({ ref: client.ref, url: `ws://127.0.0.1:${srv.port}/third` });
    expect(third.success, third.errorStr).toBe(true);
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close', 'open', 'close', 'open']);
    expect(ev.of('close')[1]!.ctx).toMatchObject({ code: 1000, remote: false });
    expect((await srv.events.waitFor((e) => e.type === 'close' && e.client === second.client)).ctx.code).toBe(1000);
    await srv.events.waitFor((e) => e.type === 'open' && e.ctx.uri === '/third');

    // two starts in a row while open: the first gives way to the second, one connection results
    const [a, b] = await Promise.all([
      websocketClientStart({ ref: client.ref, url: `ws://127.0.0.1:${srv.port}/a` }),
      websocketClientStart({ ref: client.ref, url: `ws://127.0.0.1:${srv.port}/b` }),
    ]);
    expect(a).toMatchObject({ success: false, errorStr: 'Superseded by a new start' });
    expect(b.success, b.errorStr).toBe(true);
    await srv.events.waitFor((e) => e.type === 'open' && e.ctx.uri === '/b');
    await delay(100);
    expect(websocketServerClients(srv.server)).toHaveLength(1);
    expect(ev.of('close')).toHaveLength(3);
    expect(ev.of('open')).toHaveLength(4);
  });

  test('stop() while a restart waits for its close, and stop() twice: the close event still comes; the waiting start resolves "Stopped"', async () => {
    // A peer that never answers a close frame: the restart's close handshake
    // waits (up to the close wait, 2 s), and the stop lands while it does.
    const received: Buffer[] = [];
    const { port } = await rawServer((s) => {
      const i = received.push(Buffer.alloc(0)) - 1;
      s.on('data', (d: Buffer) => (received[i] = Buffer.concat([received[i]!, d])));
    });
    const closeFrameAt = (i: number) => () => (received[i] && received[i]!.length >= 2 && (received[i]![0]! & 0x0f) === 8 ? true : undefined);
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${port}/`, method: ev.method, enableAutomaticReconnection: false });
    expect((await websocketClientStart({ ref: client.ref })).success).toBe(true);
    const waiting = websocketClientStart({ ref: client.ref });
    await until(closeFrameAt(0), 3000, "the restart's close frame");
    websocketClientStop({ ref: client.ref });
    expect(await waiting).toMatchObject({ success: false, errorStr: 'Stopped' });
    const close = await ev.waitType('close', undefined, 5000);
    // The close frame said 1000 "Client restarted"; no answer came: 1006.
    expect(close.ctx).toMatchObject({ code: 1006, reason: 'Close handshake timed out', remote: false });

    expect((await websocketClientStart({ ref: client.ref })).success).toBe(true);
    websocketClientStop({ ref: client.ref });
    await until(closeFrameAt(1), 3000, "the stop's close frame");
    websocketClientStop({ ref: client.ref });
    await until(() => (ev.of('close').length === 2 ? true : undefined), 5000, 'the second close event');
    expect(ev.of('close')[1]!.ctx).toMatchObject({ code: 1006, remote: false });
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close', 'open', 'close']);
  });

  test('a start that moves an open client to the other loop (inlineLoop changed): its close event comes first', async () => {
    const srv = startServer();
    const ev = new Collector();
    const client = newClient({ url: `ws://127.0.0.1:${srv.port}/`, method: ev.method, enableAutomaticReconnection: false, inlineLoop: false });
    expect((await websocketClientStart({ ref: client.ref })).success).toBe(true);
    const moved = await websocketClientStart({ ref: client.ref, inlineLoop: true });
    expect(moved.success, moved.errorStr).toBe(true);
    expect(ev.events.map((e) => e.type)).toEqual(['open', 'close', 'open']);
    expect(ev.of('close')[0]!.ctx).toMatchObject({ code: 1006, reason: 'Client restarted on another loop', remote: false });
    expect(websocketClientSend({ ref: client.ref }, 'after the move').success).toBe(true);
    await srv.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'after the move');
  });

  test('clear while connected frees the ref; the lowest free ref is reused', async () => {
    const srv = startServer();
    const a = websocketClient({ url: `ws://127.0.0.1:${srv.port}/`, enableAutomaticReconnection: false });
    const b = newClient({ url: `ws://127.0.0.1:${srv.port}/` });
    expect((await websocketClientStart(a)).success).toBe(true);
    await srv.events.waitType('open');
    expect(websocketClientClear(a)).toEqual({});
    await srv.events.waitType('close', undefined, 3000);
    const c = newClient({ url: `ws://127.0.0.1:${srv.port}/` });
    expect(c.ref).toBe(a.ref);
    expect(b.ref).not.toBe(a.ref);
    expect(websocketClientSend(a, 'x').success).toBe(false);
  });
});
