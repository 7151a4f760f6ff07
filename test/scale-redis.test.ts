// Topics across processes through a real redis-server (Debian's): three
// server processes, each with a Redis bus and its own WebSocket clients
// (`ws`, in this process). A publish in one process reaches the subscribers
// of every process, in publish order per publisher; a topic takes one Redis
// channel per process that has local subscribers, never one per client, and
// is given up when its last local subscriber goes; Redis killed mid-run is
// reported (publish statuses, error and bus events), local delivery goes on
// meanwhile, and after Redis comes back every process reconnects and
// resubscribes by itself.
import * as fs from 'fs';
import * as path from 'path';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage } from './support/compile';
import { until } from './support/events';
import { ServerNode, startNode } from './support/nodes';
import { describeWithPeers, peers } from './support/peers';
import { RedisServer, redisCommand } from './support/redis';

const outDir = path.join(root, 'build-scale-redis');
const pkg = path.join(outDir, 'lib', 'index.js');

interface Sub {
  ws: WebSocket;
  got: string[];
}

/** A `ws` client of one node, subscribed to `topics` (the node subscribes it on open). */
async function subscriber(node: ServerNode, port: number, topics: string[]): Promise<Sub> {
  const opens = node.of('open').length;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/?topics=${topics.join(',')}`);
  const got: string[] = [];
  ws.on('message', (d, isBinary) => got.push(isBinary ? `bin:${d.toString()}` : d.toString()));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  // Subscribed once the node has seen the open (it subscribes in its handler).
  await until(() => (node.of('open').length > opens ? true : undefined), 5000, `${node.name} open`);
  return { ws, got };
}

/** The messages of one publisher (prefix) in the order received. */
const from = (got: string[], prefix: string) => got.filter((m) => m.startsWith(`${prefix}-`));
const seq = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function numsub(port: number, channel: string): Promise<number> {
  // RESP: *2 $<len> <channel> :<n>
  const reply = await redisCommand(port, `PUBSUB NUMSUB ${channel}`);
  const m = /:(\d+)\r\n/.exec(reply);
  if (!m) throw new Error(`unexpected PUBSUB NUMSUB reply ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

describeWithPeers([peers.redis()], 'Redis bus across server processes', (found) => {
  let redis: RedisServer;
  const nodes: ServerNode[] = [];
  const ports = new Map<ServerNode, number>();
  const clients: WebSocket[] = [];

  beforeAll(async () => {
    compilePackage(outDir);
    if (!fs.existsSync(path.join(outDir, 'lib', 'redis.js'))) throw new Error('no lib/redis.js after tsc');
    redis = await RedisServer.start(found.redis!.exe);
    for (const name of ['A', 'B', 'C']) {
      const n = await startNode(pkg, name, { redis: redis.url, prefix: 'test:' });
      const st = n.of('started')[0];
      if (!st) throw new Error(`${name} did not start: ${n.tail()}`);
      nodes.push(n);
      ports.set(n, st.port);
    }
  }, 120_000);

  afterAll(async () => {
    for (const c of clients) c.terminate();
    await Promise.all(nodes.map((n) => n.stop()));
    await redis?.stop();
  });

  const sub = async (node: ServerNode, topics: string[]) => {
    const s = await subscriber(node, ports.get(node)!, topics);
    clients.push(s.ws);
    return s;
  };
  const ready = (n: ServerNode) => n.ask({ cmd: 'busReady' }, 'busReady', 20000);

  test('a publish in one process reaches the subscribers of every process, in order per publisher', async () => {
    const [A, B, C] = nodes;
    const subs = [await sub(A, ['news']), await sub(A, ['news']), await sub(B, ['news']), await sub(C, ['news', 'other'])];
    const bystander = await sub(B, ['sport']);
    await Promise.all(nodes.map(ready));
    // One channel per process with subscribers (A, B, C), not one per client (4).
    expect(await numsub(redis.port, 'test:news')).toBe(3);
    expect(await numsub(redis.port, 'test:sport')).toBe(1);

    // Two publishers at once.
    const [pa, pb] = await Promise.all([
      A.ask({ cmd: 'publish', topic: 'news', data: 'a', n: 300 }, 'published'),
      B.ask({ cmd: 'publish', topic: 'news', data: 'b', n: 300 }, 'published'),
    ]);
    expect(pa.busFailed).toBe(0);
    expect(pb.busFailed).toBe(0);
    expect(pa.local).toBe(300 * 2); // A's own two subscribers, at once
    expect(pb.local).toBe(300);
    await until(() => (subs.every((s) => s.got.length >= 600) ? true : undefined), 20000, 'every subscriber gets 600').catch(
      (e) => {
        throw new Error(`${e.message}: counts ${subs.map((s) => s.got.length).join(',')}`);
      },
    );
    for (const s of subs) {
      expect(from(s.got, 'a')).toEqual(seq('a', 300));
      expect(from(s.got, 'b')).toEqual(seq('b', 300));
      expect(s.got.length).toBe(600); // nothing twice (no echo of a process's own publishes)
    }
    expect(bystander.got).toEqual([]);
  }, 60_000);

  test("a topic's channel is given up when its last local subscriber closes", async () => {
    const [, , C] = nodes;
    const s1 = await sub(C, ['solo']);
    const s2 = await sub(C, ['solo']);
    await ready(C);
    expect(await numsub(redis.port, 'test:solo')).toBe(1);
    const count = async () => (await C.ask({ cmd: 'clients' }, 'clients')).n as number;
    const before = await count();
    s1.ws.close();
    // Once C has seen the close, one local subscriber is left: the channel stays.
    const deadline1 = Date.now() + 5000;
    while (Date.now() < deadline1 && (await count()) >= before) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, 200));
    expect(await numsub(redis.port, 'test:solo')).toBe(1);
    s2.ws.close();
    let n = -1;
    const deadline2 = Date.now() + 5000;
    while (Date.now() < deadline2 && (n = await numsub(redis.port, 'test:solo')) !== 0) await new Promise((r) => setTimeout(r, 50));
    expect(n).toBe(0);
  }, 30_000);

  test('Redis killed and restarted mid-run: reported, local delivery goes on, then every process is back', async () => {
    const [A, B] = nodes;
    const localSub = await sub(A, ['live']);
    const remoteSub = await sub(B, ['live']);
    await Promise.all([ready(A), ready(B)]);
    const before = await A.ask({ cmd: 'publish', topic: 'live', data: 'pre', n: 50 }, 'published');
    expect(before.busFailed).toBe(0);
    await until(() => (remoteSub.got.length >= 50 ? true : undefined), 10000, 'B gets the first 50');

    const busDownA = A.of('bus').filter((l) => l.connected === false).length;
    const errorsA = A.of('error').length;
    const upsBefore = [A, B].map((n) => n.of('bus').filter((l) => l.connected === true).length);
    await redis.kill();
    await A.waitFor((l) => l.ev === 'bus' && l.connected === false && A.of('bus').filter((x) => !x.connected).length > busDownA, 10000, 'bus down');
    // The bus is down as soon as one of its two connections has seen Redis
    // go; the publishing one may see its own socket close a moment later
    // (seen once in a dozen runs on a loaded machine). A publish in that
    // window is accepted and, lost with the connection, reported by an error
    // event, never sent late: probe one at a time until refusals begin.
    const publishFailures = () => A.of('error').filter((e) => /^bus: publish to "live" failed/.test(e.reason)).length;
    const failuresBefore = publishFailures();
    let gapAccepted = 0;
    const gapDeadline = Date.now() + 10000;
    for (;;) {
      const g = await A.ask({ cmd: 'publish', topic: 'live', data: 'gap', n: 1 }, 'published');
      if (g.busFailed === 1) break;
      gapAccepted++;
      if (Date.now() > gapDeadline) throw new Error(`publishes still accepted 10 s after the bus went down (${gapAccepted})`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await until(
      () => (publishFailures() - failuresBefore >= gapAccepted ? true : undefined),
      10000,
      `an error for each of the ${gapAccepted} publishes accepted before the publishing connection saw Redis go`,
    );
    // Publishes while Redis is away: reported per message, still delivered here.
    const during = await A.ask({ cmd: 'publish', topic: 'live', data: 'down', n: 50 }, 'published');
    expect(during.busFailed).toBe(50);
    expect(during.firstBusError).toMatch(/Redis is unreachable/);
    expect(during.local).toBe(50);
    await until(() => (from(localSub.got, 'down').length === 50 ? true : undefined), 5000, 'local delivery while Redis is down');
    expect(A.of('error').length).toBeGreaterThan(errorsA);
    expect(A.of('error').slice(errorsA).some((e) => /^bus: /.test(e.reason))).toBe(true);

    await redis.run();
    const ups = (n: ServerNode) => n.of('bus').filter((l) => l.connected === true).length;
    await Promise.all(
      [A, B].map((n, i) => until(() => (ups(n) > upsBefore[i] ? true : undefined), 15000, `${n.name} reconnected (${n.tail()})`)),
    );
    // B resubscribes after its reconnection: probe until a message gets through.
    const probeDeadline = Date.now() + 15000;
    let probes = 0;
    while (from(remoteSub.got, 'probe').length === 0 && Date.now() < probeDeadline) {
      await A.ask({ cmd: 'publish', topic: 'live', data: 'probe', n: 1 }, 'published');
      probes++;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(from(remoteSub.got, 'probe').length).toBeGreaterThan(0);
    const after = await A.ask({ cmd: 'publish', topic: 'live', data: 'post', n: 200 }, 'published');
    expect(after.busFailed).toBe(0);
    await until(() => (from(remoteSub.got, 'post').length >= 200 ? true : undefined), 10000, 'B gets the 200 after the restart');
    // A's own subscriber is another connection: its 200 may still be on the way (seen: 8 of 200 here once).
    await until(() => (from(localSub.got, 'post').length >= 200 ? true : undefined), 10000, 'A\'s subscriber gets the 200 after the restart');
    expect(from(remoteSub.got, 'post')).toEqual(seq('post', 200));
    // Nothing published while Redis was away reached B (Redis pub/sub keeps nothing).
    expect(from(remoteSub.got, 'down')).toEqual([]);
    expect(from(remoteSub.got, 'gap')).toEqual([]);
    expect(from(localSub.got, 'post')).toEqual(seq('post', 200));
    expect(probes).toBeGreaterThan(0);
  }, 90_000);
});
