// The Redis bus's own options and messages, without a Redis server (the
// suites with a real redis-server are scale-redis.test.ts): a url's password
// never shows in a status or an error event, and a message over
// maxMessageSize is kept local (Redis's default pub/sub output limit would
// otherwise cut every subscriber of the channel off, and their other topics
// with them).
import { afterEach, expect, test } from 'vitest';
import { websocketServer, websocketServerClear, websocketServerPublish, websocketServerStart } from '../lib/index';
import { redisBus } from '../lib/redis';
import { Collector, closedPort, defer, runCleanup } from './support';

afterEach(runCleanup);

test('a password in the url shows as *** in publish statuses and error events, never as given', async () => {
  const port = await closedPort();
  const events = new Collector();
  const s = websocketServer({ port: 0, method: events.method, bus: redisBus({ url: `redis://:s3cret@127.0.0.1:${port}` }) });
  defer(() => websocketServerClear(s));
  expect(websocketServerStart(s).success).toBe(true);
  const err = await events.waitType('error');
  const reason = (err.ctx as { reason: string }).reason;
  expect(reason).toMatch(/^bus: Redis unreachable at redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/);
  const st = websocketServerPublish({ ref: s.ref, topic: 't' }, 'x');
  expect(st.bus!.success).toBe(false);
  expect(st.bus!.message).toContain(':***@');
  for (const text of [reason, st.bus!.message]) expect(text).not.toContain('s3cret');
  expect(() => redisBus({ url: 'http://:s3cret@h/' })).toThrow(/redis:\/\/ or rediss:\/\/ URL: http:\/\/:\*\*\*@h\//);
  expect(() => redisBus({ url: 'redis://:s3cret@h:99999' })).toThrow(/^options\.url is not a URL/);
  try {
    redisBus({ url: 'redis://:s3cret@h:99999' });
  } catch (e) {
    expect(String(e)).not.toContain('s3cret');
  }
});

test('maxMessageSize: a larger message is local only, its status says why; bad values are TypeErrors', async () => {
  const port = await closedPort();
  const s = websocketServer({ port: 0, bus: redisBus({ url: `redis://127.0.0.1:${port}`, maxMessageSize: 4 }) });
  defer(() => websocketServerClear(s));
  expect(websocketServerStart(s).success).toBe(true);
  const over = websocketServerPublish({ ref: s.ref, topic: 't' }, Buffer.alloc(5));
  expect(over.success).toBe(true); // delivered locally (to no one here)
  expect(over.bus).toEqual({
    success: false,
    message: "5 bytes is over the Redis bus's maxMessageSize (4): not published to other processes",
  });
  // At the limit the size is not the reason (Redis being away is).
  const at = websocketServerPublish({ ref: s.ref, topic: 't' }, Buffer.alloc(4));
  expect(at.bus!.message).toMatch(/^Redis is unreachable/);
  for (const bad of [-1, 1.5, '8', NaN]) {
    expect(() => redisBus({ maxMessageSize: bad as unknown as number })).toThrow(/options\.maxMessageSize/);
  }
  // The default: 8 MiB less the 10-byte header.
  const d = websocketServer({ port: 0, bus: redisBus({ url: `redis://127.0.0.1:${port}` }) });
  defer(() => websocketServerClear(d));
  expect(websocketServerStart(d).success).toBe(true);
  const big = websocketServerPublish({ ref: d.ref, topic: 't' }, Buffer.alloc(8 * 1024 * 1024 - 9));
  expect(big.bus!.message).toMatch(/over the Redis bus's maxMessageSize \(8388598\)/);
});
