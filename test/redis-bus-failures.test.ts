// The Redis bus when Redis fails in ways a plain outage test misses: busReady after a
// reconnection, busReady under a trickle of new topics, abandoned busReady
// waits, a Redis that stops answering, a prefix that does not survive UTF-8,
// a password in the url's query, an inspected bus, a custom bus whose publish
// is async.
import * as net from 'net';
import * as util from 'util';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { WebSocketServer } from '../lib/index';
import { redisBus } from '../lib/redis';
import type { Bus } from '../lib/types';
import { describeWithPeers, peers } from './support/peers';
import { RedisServer, redisCommand } from './support/redis';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A proxy adding `delay` ms to what the client sends (a Redis farther away). */
function slowProxy(target: number, delay: number): Promise<{ port: number; close(): void }> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    const u = net.connect(target, '127.0.0.1');
    socks.add(c).add(u);
    c.on('data', (d) => setTimeout(() => u.writable && u.write(d), delay));
    u.on('data', (d) => c.writable && c.write(d));
    for (const s of [c, u]) {
      s.on('error', () => {});
      s.on('close', () => (c.destroy(), u.destroy()));
    }
  });
  return new Promise((resolve) =>
    srv.listen(0, '127.0.0.1', () =>
      resolve({ port: (srv.address() as net.AddressInfo).port, close: () => (srv.close(), socks.forEach((s) => s.destroy())) }),
    ),
  );
}

/** The client side of a subscription: a server-side connection ref is enough, so use a raw ws client. */
async function subscribed(server: WebSocketServer, topic: string): Promise<{ got: string[]; close(): void }> {
  const { default: WebSocket } = await import('ws');
  const got: string[] = [];
  const opened = new Promise<number>((r) => server.once('open', (c: number) => r(c)));
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  ws.on('message', (d) => got.push(d.toString()));
  const client = await opened;
  expect(server.subscribe(client, topic).success).toBe(true);
  return { got, close: () => ws.terminate() };
}

describeWithPeers([peers.redis()], 'Redis bus failures', (found) => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await RedisServer.start(found.redis!.exe);
  }, 30_000);
  afterAll(async () => {
    await redis?.stop();
  });

  test('busReady after Redis restarted waits for the resubscription', async () => {
    const px = await slowProxy(redis.port, 300);
    const a = new WebSocketServer({ port: 0, bus: redisBus({ url: redis.url }) });
    const b = new WebSocketServer({ port: 0, bus: redisBus({ url: `redis://127.0.0.1:${px.port}`, maxReconnectWait: 100 }) });
    const lost: boolean[] = [];
    b.on('bus', (up) => lost.push(up));
    b.on('error', () => {});
    a.on('error', () => {});
    expect(a.start().success).toBe(true);
    expect(b.start().success).toBe(true);
    const sub = await subscribed(b, 't');
    try {
      await b.busReady();
      await redis.kill();
      while (!lost.includes(false)) await sleep(10);
      await redis.run();
      await b.busReady();
      await a.busReady();
      const reply = await redisCommand(redis.port, 'PUBSUB NUMSUB ixws:t');
      expect(reply).toMatch(/:1\r\n$/);
      a.publish('t', 'after');
      for (let i = 0; i < 100 && sub.got.length === 0; i++) await sleep(10);
      expect(sub.got).toEqual(['after']);
    } finally {
      sub.close();
      a.clear();
      b.clear();
      px.close();
    }
  }, 30_000);

  test('busReady waits for what was asked before the call, not for a steady trickle after it', async () => {
    const px = await slowProxy(redis.port, 50);
    const b = new WebSocketServer({ port: 0, bus: redisBus({ url: `redis://127.0.0.1:${px.port}` }) });
    expect(b.start().success).toBe(true);
    const sub = await subscribed(b, 'first');
    const client = b.clients()[0];
    let n = 0;
    const timer = setInterval(() => b.subscribe(client, `room${n++}`), 20);
    try {
      const t0 = Date.now();
      await b.busReady();
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      clearInterval(timer);
      sub.close();
      b.clear();
      px.close();
    }
  }, 30_000);

  test('a Redis that stops answering is reported, and publishes are refused instead of piling up', async () => {
    const hole = net.createServer({ allowHalfOpen: true }, (c) => c.on('error', () => {}));
    await new Promise<void>((r) => hole.listen(0, '127.0.0.1', () => r()));
    const s = new WebSocketServer({ port: 0, bus: redisBus({ url: `redis://127.0.0.1:${(hole.address() as net.AddressInfo).port}`, answerTimeout: 300 }) });
    const reasons: string[] = [];
    s.on('error', (_c, ctx) => reasons.push(ctx.reason));
    try {
      expect(s.start().success).toBe(true);
      for (let i = 0; i < 300 && reasons.length === 0; i++) await sleep(10);
      expect(reasons[0]).toMatch(/^bus: Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer/);
    } finally {
      s.clear();
      hole.close();
    }
  }, 30_000);

  test('a frozen Redis (SIGSTOP): once reported, publishes are refused and the bus is down at once, not when ioredis lets go 2 s later', async () => {
    const s = new WebSocketServer({ port: 0, bus: redisBus({ url: redis.url, answerTimeout: 500 }) });
    const reasons: string[] = [];
    const states: boolean[] = [];
    s.on('error', (_c, ctx) => reasons.push(ctx.reason));
    s.on('bus', (up) => states.push(up));
    expect(s.start().success).toBe(true);
    const sub = await subscribed(s, 't');
    try {
      await s.busReady();
      redis.pause();
      for (let i = 0; i < 500 && !reasons.some((r) => /does not answer/.test(r)); i++) await sleep(10);
      expect(reasons.some((r) => /does not answer/.test(r))).toBe(true);
      expect(states.at(-1)).toBe(false);
      for (let i = 0; i < 10; i++) {
        expect(s.publish('t', `late ${i}`).bus).toMatchObject({ success: false, message: expect.stringMatching(/does not answer|unreachable/) });
        await sleep(100);
      }
      redis.resume();
      await Promise.race([s.busReady(), sleep(10_000).then(() => Promise.reject(new Error('busReady after SIGCONT')))]);
      expect(states.at(-1)).toBe(true);
      expect(s.publish('t', 'again').bus).toEqual({ success: true, message: '' });
    } finally {
      redis.resume();
      sub.close();
      s.clear();
    }
  }, 30_000);

  test('abandoned busReady waits leave no listeners behind', async () => {
    const s = new WebSocketServer({ port: 0, bus: redisBus({ url: 'redis://127.0.0.1:1' }) });
    s.on('error', () => {});
    expect(s.start().success).toBe(true);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      for (let i = 0; i < 30; i++) await Promise.race([s.busReady().catch(() => {}), sleep(5)]);
      await sleep(50);
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      s.clear();
    }
  });

  test('a prefix with a lone surrogate still carries messages', async () => {
    const a = new WebSocketServer({ port: 0, bus: redisBus({ url: redis.url, prefix: 'p\uD800:' }) });
    const b = new WebSocketServer({ port: 0, bus: redisBus({ url: redis.url, prefix: 'p\uD800:' }) });
    expect(a.start().success && b.start().success).toBe(true);
    const sub = await subscribed(b, 't');
    try {
      await b.busReady();
      await a.busReady();
      a.publish('t', 'x');
      for (let i = 0; i < 100 && sub.got.length === 0; i++) await sleep(10);
      expect(sub.got).toEqual(['x']);
    } finally {
      sub.close();
      a.clear();
      b.clear();
    }
  });
});

test('a password never shows: in the query, or in an inspected server object', () => {
  const s = new WebSocketServer({ port: 0, bus: redisBus({ url: 'redis://:s3cret@127.0.0.1:1/?password=s3cret' }) });
  try {
    s.on('error', () => {});
    expect(s.start().success).toBe(true);
    expect(s.publish('t', 'x').bus!.message).not.toContain('s3cret');
    expect(util.inspect(s.object, { depth: 10 })).not.toContain('s3cret');
    expect(util.inspect(s, { depth: 10 })).not.toContain('s3cret');
    expect(JSON.stringify(s.object)).not.toContain('s3cret');
  } finally {
    s.clear();
  }
});

test('a custom bus whose publish is async: no unhandled rejection, the failure is an error event', async () => {
  const bus: Bus = {
    open() {},
    subscribe: async () => {},
    unsubscribe: async () => {},
    publish: (async () => {
      throw new Error('broker down');
    }) as unknown as Bus['publish'],
    flush: async () => {},
    close: async () => {},
    connected: true,
  };
  const s = new WebSocketServer({ port: 0, bus });
  const reasons: string[] = [];
  s.on('error', (_c, ctx) => reasons.push(ctx.reason));
  try {
    expect(s.start().success).toBe(true);
    const st = s.publish('t', 'x');
    expect(typeof st.bus!.success).toBe('boolean');
    await sleep(20);
    expect(reasons).toEqual(['bus: broker down']);
  } finally {
    s.clear();
  }
});

test('a custom bus: a failed subscribe is asked again by the next subscriber; a missed unsubscribe is repeated when a message comes', async () => {
  const calls: string[] = [];
  let failSub = true;
  let failUnsub = false;
  let handler: import('../lib/types').BusHandler | undefined;
  const bus: Bus = {
    open(h) {
      handler = h;
    },
    subscribe: (t) => (calls.push(`subscribe ${t}`), failSub ? ((failSub = false), Promise.reject(new Error('away'))) : Promise.resolve()),
    unsubscribe: (t) => (calls.push(`unsubscribe ${t}`), failUnsub ? ((failUnsub = false), Promise.reject(new Error('away'))) : Promise.resolve()),
    publish: () => ({ success: true, message: '' }),
    flush: async () => {},
    close: async () => {},
    connected: true,
  };
  const s = new WebSocketServer({ port: 0, bus });
  s.on('error', () => {});
  try {
    expect(s.start().success).toBe(true);
    const a = await subscribed(s, 'room');
    await sleep(20);
    const b = await subscribed(s, 'room');
    await sleep(20);
    expect(calls).toEqual(['subscribe room', 'subscribe room']);
    calls.length = 0;
    failUnsub = true;
    a.close();
    b.close();
    for (let i = 0; i < 100 && s.topics().length > 0; i++) await sleep(10);
    await sleep(20);
    handler!.message('room', Buffer.from('x'), false);
    await sleep(20);
    expect(calls).toEqual(['unsubscribe room', 'unsubscribe room']);
  } finally {
    s.clear();
  }
});
