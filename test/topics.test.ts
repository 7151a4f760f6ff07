// Topics in one process: subscribe/unsubscribe/publish on WebSocketServer
// and as commands; which clients get what, in order; subscriptions ending
// with their connection; text/binary; a deflate client; misuse (TypeErrors
// naming the argument, statuses with success false); reusePort in the
// server object; and a bus written against the Bus interface (no broker):
// when the server subscribes and unsubscribes it, what it publishes and
// receives, how its failures are reported.
import * as vm from 'vm';
import { afterEach, describe, expect, test } from 'vitest';
import {
  WebSocketServer,
  websocketServer,
  websocketServerClear,
  websocketServerPing,
  websocketServerPublish,
  websocketServerStart,
  websocketServerStop,
  websocketServerSubscribe,
  websocketServerTopics,
  websocketServerUnsubscribe,
} from '../lib/index';
import type { Bus, BusHandler } from '../lib/index';
import { canListen, closedPort, Collector, connectClient, defer, delay, RawPeer, runCleanup, startServer, until } from './support';
import { encodeFrame } from './support/wire';
import { binding } from '../lib/binding';

afterEach(runCleanup);

async function clientsOf(n: number, deflate = false) {
  const srv = startServer();
  const clients = [];
  for (let i = 0; i < n; i++) {
    const c = await connectClient(srv, deflate ? {} : { disablePerMessageDeflate: true });
    clients.push(c);
  }
  return { srv, clients, refs: clients.map((c) => c.conn) };
}

const messages = (c: { events: Collector }) => c.events.of('message').map((e) => e.ctx.data);

describe('topics (commands)', () => {
  test('publish reaches the subscribers of the topic only, in publish order', async () => {
    const { srv, clients, refs } = await clientsOf(3);
    const server = { ref: srv.server.ref };
    expect(websocketServerSubscribe(server, refs[0], 'news')).toEqual({ success: true, message: '', client: refs[0], topic: 'news', subscribers: 1 });
    expect(websocketServerSubscribe(server, refs[1], 'news').subscribers).toBe(2);
    expect(websocketServerSubscribe(server, refs[1], 'news').subscribers).toBe(2); // twice: once
    expect(websocketServerSubscribe(server, refs[2], 'sport').success).toBe(true);
    expect(websocketServerTopics(server)).toEqual([
      { topic: 'news', subscribers: 2 },
      { topic: 'sport', subscribers: 1 },
    ]);
    for (let i = 0; i < 100; i++) {
      const st = websocketServerPublish({ ...server, topic: 'news' }, `n${i}`);
      expect(st).toMatchObject({ success: true, topic: 'news', subscribers: 2, sent: 2, failed: 0, payloadSize: `n${i}`.length });
      expect(st.bus).toBeUndefined(); // no bus
    }
    const bin = Buffer.from([0, 1, 2, 255]);
    expect(websocketServerPublish({ ...server, topic: 'sport' }, bin).sent).toBe(1);
    const want = Array.from({ length: 100 }, (_, i) => `n${i}`);
    await until(() => (messages(clients[0]).length >= 100 && messages(clients[1]).length >= 100 ? true : undefined), 5000, '100 each');
    expect(messages(clients[0])).toEqual(want);
    expect(messages(clients[1])).toEqual(want);
    const m2 = await clients[2].events.waitType('message');
    expect(m2.ctx.binary).toBe(true);
    expect(Buffer.compare(m2.ctx.data, bin)).toBe(0);
    await delay(100);
    expect(clients[2].events.of('message').length).toBe(1); // no "news" for the "sport" client
  });

  test('binary option, unsubscribe, and subscriptions that end with the connection', async () => {
    const { srv, clients, refs } = await clientsOf(2);
    const server = { ref: srv.server.ref };
    websocketServerSubscribe(server, refs[0], 't');
    websocketServerSubscribe(server, refs[1], 't');
    websocketServerPublish({ ...server, topic: 't', binary: true }, 'as bytes');
    const m = await clients[0].events.waitType('message');
    expect(m.ctx.binary).toBe(true);
    expect(m.ctx.data.toString()).toBe('as bytes');
    // Bytes as text: valid UTF-8 goes, invalid is refused before anything is sent.
    websocketServerPublish({ ...server, topic: 't', binary: false }, Buffer.from('é text'));
    await clients[0].events.waitFor((e) => e.type === 'message' && e.ctx.data === 'é text');
    const bad = websocketServerPublish({ ...server, topic: 't', binary: false }, Buffer.from([0xc3, 0x28]));
    expect(bad.success).toBe(false);
    expect(bad.message).toMatch(/UTF-8/);

    expect(websocketServerUnsubscribe(server, refs[0], 't')).toMatchObject({ success: true, subscribers: 1 });
    expect(websocketServerUnsubscribe(server, refs[0], 't')).toMatchObject({ success: true, subscribers: 1 });
    expect(websocketServerPublish({ ...server, topic: 't' }, 'one').subscribers).toBe(1);
    await clients[1].events.waitFor((e) => e.type === 'message' && e.ctx.data === 'one');

    clients[1].events.events.length = 0;
    const closed = srv.events.of('close').length;
    const { websocketClientStop } = await import('../lib/index');
    websocketClientStop({ ref: clients[1].client.ref });
    await srv.events.waitCount((e) => e.type === 'close', closed + 1);
    expect(websocketServerTopics(server)).toEqual([]);
    expect(websocketServerPublish({ ...server, topic: 't' }, 'nobody')).toMatchObject({ success: true, subscribers: 0, sent: 0 });
    const late = websocketServerSubscribe(server, refs[1], 't');
    expect(late.success).toBe(false);
    expect(late.message).toMatch(/Unknown client ref|closed/);
  });

  test('a deflate client gets the published message intact, compressed', async () => {
    const { srv, clients, refs } = await clientsOf(2, true);
    const server = { ref: srv.server.ref };
    for (const r of refs) websocketServerSubscribe(server, r, 'big');
    const text = 'abcde'.repeat(4000);
    const st = websocketServerPublish({ ...server, topic: 'big' }, text);
    expect(st.sent).toBe(2);
    expect(st.wireSize).toBeLessThan(text.length); // both compressed
    for (const c of clients) {
      const m = await c.events.waitType('message');
      expect(m.ctx.data).toBe(text);
      expect(m.ctx.wireSize).toBeLessThan(text.length);
    }
  });

  test('misuse: TypeErrors name the argument; unknown refs and stopped servers say success false', async () => {
    const { srv, refs } = await clientsOf(1);
    const server = { ref: srv.server.ref };
    expect(() => websocketServerSubscribe(server, refs[0], '' as string)).toThrow(new TypeError('topic must be a non-empty string'));
    expect(() => websocketServerSubscribe(server, refs[0], 5 as unknown as string)).toThrow(/^topic must be a non-empty string$/);
    expect(() => websocketServerSubscribe(server, 'x' as unknown as number, 't')).toThrow(/client must be an integer/);
    expect(() => websocketServerSubscribe(null as unknown as { ref: number }, 1, 't')).toThrow(/server must be an object/);
    expect(() => websocketServerPublish(server, 'x')).toThrow(new TypeError('server.topic must be a non-empty string'));
    expect(() => websocketServerPublish({ ...server, topic: 't' }, 42 as unknown as string)).toThrow(/data must be a string/);
    expect(() => websocketServerPublish({ ...server, topic: 't', binary: 'yes' as unknown as boolean }, 'x')).toThrow(/binary must be a boolean/);
    expect(websocketServerSubscribe(server, 999, 't')).toMatchObject({ success: false, message: 'Unknown client ref' });
    expect(websocketServerSubscribe({ ref: -999 }, 1, 't')).toMatchObject({ success: false, message: 'Unknown server ref -999' });
    expect(websocketServerPublish({ ref: -999, topic: 't' }, 'x')).toMatchObject({ success: false, message: 'Unknown server ref -999' });
    expect(websocketServerTopics({ ref: -999 })).toEqual([]);
    websocketServerStop(server);
    expect(websocketServerPublish({ ...server, topic: 't' }, 'x')).toMatchObject({ success: false, message: 'Server is not running' });
  });

  test('reusePort is part of the server object (default false) and two servers of one process share a port with it', () => {
    const a = websocketServer({ port: 0, reusePort: true });
    defer(() => websocketServerClear(a));
    expect(a.reusePort).toBe(true);
    const d = websocketServer();
    defer(() => websocketServerClear(d));
    expect(d.reusePort).toBe(false);
    expect(() => websocketServer({ reusePort: 1 as unknown as boolean })).toThrow(TypeError);
    const sa = websocketServerStart(a);
    expect(sa.success).toBe(true);
    const b = websocketServer({ port: sa.port, reusePort: true });
    defer(() => websocketServerClear(b));
    expect(websocketServerStart(b)).toMatchObject({ success: true, port: sa.port });
    const c = websocketServer({ port: sa.port });
    defer(() => websocketServerClear(c));
    const sc = websocketServerStart(c);
    expect(sc.success).toBe(false);
    expect(sc.message).toMatch(/address already in use/);
  });
});

/** A bus of the test's own: records calls; `deliver` plays a message from elsewhere. */
class MemoryBus implements Bus {
  calls: string[] = [];
  handler: BusHandler | undefined;
  published: Array<{ topic: string; data: string; binary: boolean }> = [];
  up = true;
  get connected() {
    return this.up;
  }
  open(h: BusHandler) {
    this.calls.push('open');
    this.handler = h;
  }
  async subscribe(topic: string) {
    this.calls.push(`subscribe ${topic}`);
  }
  async unsubscribe(topic: string) {
    this.calls.push(`unsubscribe ${topic}`);
  }
  publish(topic: string, data: Buffer, binary: boolean) {
    if (!this.up) return { success: false, message: 'broker away' };
    this.published.push({ topic, data: data.toString(), binary });
    return { success: true, message: '' };
  }
  async flush() {}
  async close() {
    this.calls.push('close');
    this.handler = undefined;
  }
}

describe('a bus written against the Bus interface', () => {
  test("busReady() of a server object cleared through the commands waits for nothing, not for the bus of the ref's next owner", async () => {
    const a = new WebSocketServer({ port: 0 });
    expect(websocketServerClear({ ref: a.handle })).toEqual({});
    const bus = new MemoryBus();
    let flushes = 0;
    bus.flush = () => {
      flushes++;
      return new Promise<void>(() => undefined);  // never settles
    };
    const b = new WebSocketServer({ port: 0, bus });
    defer(() => b.clear());
    expect(b.handle).toBe(a.handle);
    expect(b.start().success).toBe(true);
    await a.busReady();
    expect(flushes).toBe(0);
  });

  test('subscribed on the first local subscriber, unsubscribed when the last goes (unsubscribe or close)', async () => {
    const bus = new MemoryBus();
    const events = new Collector();
    const server = new WebSocketServer({ port: 0, bus, method: events.method });
    defer(() => server.clear());
    expect(bus.calls).toEqual([]);
    expect(server.start().success).toBe(true);
    expect(bus.calls).toEqual(['open']);
    const srv = { server: server.object, port: server.port, events };
    const c1 = await connectClient(srv, { disablePerMessageDeflate: true });
    const c2 = await connectClient(srv, { disablePerMessageDeflate: true });
    const [r1, r2] = [c1.conn, c2.conn];
    server.subscribe(r1, 'a');
    server.subscribe(r2, 'a');
    server.subscribe(r2, 'b');
    expect(bus.calls).toEqual(['open', 'subscribe a', 'subscribe b']); // once per topic
    server.unsubscribe(r2, 'b');
    expect(bus.calls.at(-1)).toBe('unsubscribe b');
    server.unsubscribe(r2, 'a'); // r1 still listens to a
    expect(bus.calls.at(-1)).toBe('unsubscribe b');

    // A message from another process: delivered here, not published back.
    bus.handler!.message('a', Buffer.from('from afar'), false);
    await c1.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'from afar');
    expect(bus.published).toEqual([]);
    // A local publish: delivered here first, then handed to the bus.
    const st = server.publish('a', 'local', { binary: true });
    expect(st).toMatchObject({ success: true, sent: 1, bus: { success: true, message: '' } });
    expect(bus.published).toEqual([{ topic: 'a', data: 'local', binary: true }]);
    const m = await c1.events.waitFor((e) => e.type === 'message' && e.ctx.binary);
    expect(m.ctx.data.toString()).toBe('local');

    // r1 closes: its topic "a" has no local subscriber left.
    const { websocketClientStop } = await import('../lib/index');
    websocketClientStop({ ref: c1.client.ref });
    await until(() => (bus.calls.includes('unsubscribe a') ? true : undefined), 5000, 'unsubscribe a after the close');
    expect(c2.events.of('message')).toEqual([]);

    server.stop();
    expect(bus.calls.at(-1)).toBe('close');
  });

  test("a close asks the engine about the closed connection's topics only, never lists every topic of the server", async () => {
    const bus = new MemoryBus();
    const events = new Collector();
    const server = new WebSocketServer({ port: 0, bus, method: events.method });
    defer(() => server.clear());
    expect(server.start().success).toBe(true);
    const srv = { server: server.object, port: server.port, events };
    const many = await connectClient(srv, { disablePerMessageDeflate: true });
    for (let i = 0; i < 2000; i++) server.subscribe(many.conn, `room ${i}`);
    const other = await connectClient(srv, { disablePerMessageDeflate: true });
    server.subscribe(other.conn, 'room 7');
    // Count what the reconcile asks of the engine.
    const listed: number[] = [];
    const asked: string[][] = [];
    const realTopics = binding.websocketServerTopics;
    const realCounts = binding.topicSubscribers;
    binding.websocketServerTopics = (arg) => {
      const r = realTopics(arg);
      listed.push(r.length);
      return r;
    };
    binding.topicSubscribers = (ref, topics) => {
      asked.push([...topics]);
      return realCounts(ref, topics);
    };
    defer(() => {
      binding.websocketServerTopics = realTopics;
      binding.topicSubscribers = realCounts;
    });
    const { websocketClientStop } = await import('../lib/index');
    // Ten connections without a topic come and go: nothing to ask.
    for (let i = 0; i < 10; i++) {
      const c = await connectClient(srv, { disablePerMessageDeflate: true });
      websocketClientStop({ ref: c.client.ref });
      await c.events.waitType('close');
    }
    await until(() => (events.of('close').length === 10 ? true : undefined), 5000, 'ten closes');
    await delay(20);
    expect([listed, asked]).toEqual([[], []]);
    // The one with 2,000 topics closes: those are asked about, once; 1,999 are given up, "room 7" is kept.
    websocketClientStop({ ref: many.client.ref });
    await until(() => (bus.calls.filter((c) => c.startsWith('unsubscribe')).length === 1999 ? true : undefined), 5000, '1,999 unsubscribes');
    expect(listed).toEqual([]);
    expect(asked.length).toBe(1);
    expect(asked[0].length).toBe(2000);
    expect(bus.calls).not.toContain('unsubscribe room 7');
    websocketClientStop({ ref: other.client.ref });
    await until(() => (bus.calls.includes('unsubscribe room 7') ? true : undefined), 5000, 'unsubscribe room 7');
  });

  test('a method carried by a ping command is wrapped too: the bus still hears the closes (it stopped hearing them)', async () => {
    const bus = new MemoryBus();
    const events = new Collector();
    const later = new Collector();
    const server = new WebSocketServer({ port: 0, bus, method: events.method });
    defer(() => server.clear());
    expect(server.start().success).toBe(true);
    const srv = { server: server.object, port: server.port, events };
    const c = await connectClient(srv, { disablePerMessageDeflate: true });
    server.subscribe(c.conn, 'news');
    expect(websocketServerPing({ ref: server.handle, method: later.method }, c.conn)).toBe(true);
    await later.waitType('pong');
    const { websocketClientStop } = await import('../lib/index');
    websocketClientStop({ ref: c.client.ref });
    await later.waitType('close');
    await until(() => (bus.calls.includes('unsubscribe news') ? true : undefined), 5000, 'unsubscribe news after the close');
  });

  test('an unreachable broker: the status says so, local delivery happens anyway; errors and state reach the server', async () => {
    const bus = new MemoryBus();
    const events = new Collector();
    const obj = websocketServer({ port: 0, bus, method: events.method, worker: 'w1' });
    defer(() => websocketServerClear(obj));
    expect(obj.bus).toBe(bus);
    expect(websocketServerStart(obj).success).toBe(true);
    bus.up = false;
    const st = websocketServerPublish({ ref: obj.ref, topic: 'x' }, 'lost');
    expect(st).toMatchObject({ success: true, subscribers: 0, bus: { success: false, message: 'broker away' } });
    bus.handler!.error(new Error('connection refused'), 'x');
    const e = await events.waitType('error', 0);
    expect(e.ctx).toMatchObject({ reason: 'bus: connection refused', topic: 'x' });
    expect(e.server).toBe(obj.ref);
    expect(e.worker).toBe('w1');

    const cls = new WebSocketServer({ port: 0, bus: new MemoryBus() });
    defer(() => cls.clear());
    cls.start();
    const states: boolean[] = [];
    cls.on('bus', (c) => states.push(c));
    const b = (cls.object as { bus?: MemoryBus }).bus!;
    b.handler!.state(false);
    b.handler!.state(true);
    expect(states).toEqual([false, true]);
  });

  test('a bus that cannot open stops the start (the port stays free); the object given back keeps the bus working', async () => {
    const broken = new MemoryBus();
    broken.open = () => {
      throw new Error('no broker library');
    };
    const events = new Collector();
    const port = await closedPort();
    const obj = websocketServer({ port, bus: broken, method: events.method });
    defer(() => websocketServerClear(obj));
    expect(websocketServerStart(obj)).toEqual({ success: false, message: 'bus: no broker library' });
    expect(await canListen(port)).toBe(true);

    // The command form, the created object passed back whole, and a new method given later:
    // closes still reach the bus.
    const bus = new MemoryBus();
    const events2 = new Collector();
    const s = websocketServer({ port: 0, bus, method: events.method });
    defer(() => websocketServerClear(s));
    const st = websocketServerStart({ ...s, method: events2.method });
    expect(st.success).toBe(true);
    const c = await connectClient({ server: s, port: st.port!, events: events2 }, { disablePerMessageDeflate: true });
    expect(websocketServerSubscribe({ ref: s.ref }, c.conn, 'q').success).toBe(true);
    expect(bus.calls).toEqual(['open', 'subscribe q']);
    const { websocketClientStop } = await import('../lib/index');
    websocketClientStop({ ref: c.client.ref });
    await until(() => (bus.calls.includes('unsubscribe q') ? true : undefined), 5000, 'unsubscribe q after the close');
    expect(events2.of('close').length).toBe(1); // the method given last got the close
    expect(events.of('close').length).toBe(0);
  });

  test('bad buses are TypeErrors; one bus serves one server', () => {
    expect(() => websocketServer({ bus: {} as Bus })).toThrow(/options\.bus must be a bus .*missing: open, subscribe, unsubscribe, publish, flush, close/);
    expect(() => new WebSocketServer({ bus: 'redis://x' as unknown as Bus })).toThrow(TypeError);
    const bus = new MemoryBus();
    const a = new WebSocketServer({ port: 0, bus });
    defer(() => a.clear());
    expect(() => websocketServer({ bus })).toThrow(/already used by another server/);
  });

  test('a bus refused at creation leaves no server behind (the next ref is the lowest free)', () => {
    const bus = new MemoryBus();
    const a = websocketServer({ port: 0, bus });
    defer(() => websocketServerClear(a));
    for (let i = 0; i < 3; i++) expect(() => websocketServer({ port: 0, bus })).toThrow(/options\.bus is already used by another server/);
    const next = websocketServer({ port: 0 });
    defer(() => websocketServerClear(next));
    expect(next.ref).toBe(a.ref - 1); // without the check first: three orphans took the refs between
  });

  test('a bus carried by start or stop: its own is accepted, another or a new one is a TypeError', () => {
    const bus = new MemoryBus();
    const s = websocketServer({ port: 0, bus });
    defer(() => websocketServerClear(s));
    const plain = websocketServer({ port: 0 });
    defer(() => websocketServerClear(plain));
    expect(() => websocketServerStart({ ...plain, bus: new MemoryBus() })).toThrow(/server\.bus is given when the server is created/);
    expect(() => websocketServerStart({ ...plain, bus: 42 as unknown as Bus })).toThrow(/server\.bus must be a bus/);
    expect(() => websocketServerStart({ ...s, bus: new MemoryBus() })).toThrow(/server\.bus cannot be replaced/);
    expect(() => websocketServerStop({ ...s, bus: new MemoryBus() })).toThrow(/server\.bus cannot be replaced/);
    const st = websocketServerStart(s); // the object given back, its own bus with it
    expect(st.success).toBe(true);
    expect(websocketServerStop(s)).toMatchObject({ ref: s.ref });
    const cls = new WebSocketServer({ port: 0 });
    defer(() => cls.clear());
    expect(() => cls.start({ bus: new MemoryBus() })).toThrow(TypeError);
  });

  test('a bus whose subscribe/unsubscribe return no promise, or throw: error events, never an uncaught exception', async () => {
    const uncaught: unknown[] = [];
    const onUncaught = (e: unknown) => uncaught.push(e);
    process.on('uncaughtException', onUncaught);
    process.on('unhandledRejection', onUncaught);
    try {
      for (const style of ['sync', 'throws', 'rejects'] as const) {
        const bus = new MemoryBus();
        const fail = () => {
          if (style === 'throws') throw new Error('broker down');
          if (style === 'rejects') return Promise.reject(new Error('broker down'));
          return undefined; // a synchronous bus that succeeded
        };
        (bus as unknown as { subscribe: () => unknown }).subscribe = fail;
        (bus as unknown as { unsubscribe: () => unknown }).unsubscribe = fail;
        (bus as unknown as { close: () => unknown }).close = fail;
        const srv = startServer({ bus });
        const c = await connectClient(srv, { disablePerMessageDeflate: true });
        expect(websocketServerSubscribe({ ref: srv.server.ref }, c.conn, 't').success).toBe(true);
        const { websocketClientStop } = await import('../lib/index');
        websocketClientStop({ ref: c.client.ref });
        await srv.events.waitType('close');
        await delay(50); // the reconcile after the close runs on the next turn
        const errors = srv.events.of('error').map((e) => (e.ctx as { reason: string }).reason);
        if (style === 'sync') expect(errors).toEqual([]);
        // The subscribe failed: the topic is not the bus's, so its last subscriber leaving unsubscribes nothing.
        else expect(errors).toEqual(['bus: broker down']);
        websocketServerStop(srv.server);
        await delay(10);
      }
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      process.off('unhandledRejection', onUncaught);
    }
  });

  test('errors the bus reports after the stop do not reach the method', async () => {
    const bus = new MemoryBus();
    let rejectLater: (e: Error) => void = () => {};
    (bus as unknown as { subscribe: () => Promise<void> }).subscribe = () => new Promise((_, reject) => (rejectLater = reject));
    const srv = startServer({ bus });
    const c = await connectClient(srv, { disablePerMessageDeflate: true });
    expect(websocketServerSubscribe({ ref: srv.server.ref }, c.conn, 't').success).toBe(true);
    websocketServerStop(srv.server);
    rejectLater(new Error('Connection is closed.')); // what ioredis does with queued commands on disconnect
    await delay(20);
    expect(srv.events.of('error')).toEqual([]);
  });

  test('the bus gets a copy: a payload lent by borrowedPayloads and published from the method is whole when the bus reads it later', async () => {
    const kept: Buffer[] = [];
    const bus = new MemoryBus();
    bus.publish = (_topic: string, data: Buffer) => {
      kept.push(data); // a bus may keep what it is given (and send it later)
      return { success: true, message: '' };
    };
    let ref = 0;
    const payload = Buffer.alloc(200 * 1024, 7);
    const srv = startServer({
      bus,
      borrowedPayloads: true,
      disablePerMessageDeflate: true,
      method: (_s, _c, type, ctx) => {
        if (type === 'message') websocketServerPublish({ ref, topic: 't' }, (ctx as { data: Buffer }).data);
      },
    });
    ref = srv.server.ref;
    const raw = await RawPeer.connect(srv.port);
    await raw.upgrade('/publish');
    raw.write(encodeFrame({ opcode: 0x2, payload }));
    await until(() => (kept.length === 1 ? true : undefined), 5000, 'the publish');
    await delay(10); // the method has returned: a lent payload is detached by now
    expect(kept[0].length).toBe(payload.length);
    expect(kept[0].equals(payload)).toBe(true);
  });

  test('an ArrayBuffer of another realm is published to the bus whole, and the call does not throw', () => {
    const bus = new MemoryBus();
    const s = websocketServer({ port: 0, bus });
    defer(() => websocketServerClear(s));
    expect(websocketServerStart(s).success).toBe(true);
    const foreign = vm.runInNewContext('new Uint8Array([104, 105]).buffer') as ArrayBuffer;
    expect(foreign instanceof ArrayBuffer).toBe(false);
    const st = websocketServerPublish({ ref: s.ref, topic: 't' }, foreign);
    expect(st.bus).toEqual({ success: true, message: '' });
    expect(bus.published).toEqual([{ topic: 't', data: 'hi', binary: true }]);
  });
});
