// Sends made outside event delivery are corked until the end of the
// JavaScript task (native/send_scope.h): a timer that sends 100 messages to
// each of N clients makes O(N) write system calls, not 100·N, and so does a
// batch of Redis bus messages that arrive in one read. The server runs in a
// child process under strace (test/fixtures/cork-node.js); the suite counts
// the write, writev, sendmsg and sendto calls on the server's accepted
// sockets (strace -yy names each descriptor's TCP endpoints) between two
// markers the child writes to a file, and checks with `ws` clients that
// every message arrived, in order, and promptly (a send before an `await`
// is received before the code after it runs; frames sent before a clear,
// stop or close are received before the close).
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import WebSocket from 'ws';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage } from './support/compile';
import { until } from './support/events';
import { ServerNode } from './support/nodes';
import { describeWithPeers, peerEnv, peers } from './support/peers';
import { RedisServer } from './support/redis';

const outDir = path.join(root, 'build-cork');
const pkg = path.join(outDir, 'lib', 'index.js');
const fixture = path.join(__dirname, 'fixtures', 'cork-node.js');
const N = 10; // clients
const ROUNDS = 100; // messages to each client per burst

interface Traced {
  node: ServerNode;
  port: number;
  log: string;
  marker: string;
  dir: string;
}

const running = new Set<Traced>();
const sockets = new Set<WebSocket>();

/** The cork-node child under strace (strace gets the peer environment, node the suite's, LD_PRELOAD included). */
async function startTraced(straceExe: string, opts: Record<string, unknown> = {}): Promise<Traced> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-cork-'));
  const log = path.join(dir, 'strace.log');
  const marker = path.join(dir, 'marker');
  const nodeEnv = process.env.LD_PRELOAD ? ['-E', `LD_PRELOAD=${process.env.LD_PRELOAD}`] : [];
  const child: ChildProcess = spawn(
    straceExe,
    ['-f', '-qq', '-yy', '-e', 'trace=write,writev,sendmsg,sendto', '-o', log, ...nodeEnv, '--',
      process.execPath, fixture, JSON.stringify({ ...opts, marker })],
    { env: { ...peerEnv(), IXWS_PKG: pkg }, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const node = new ServerNode(child, 'cork-node');
  const started = await node.waitFor((l) => l.ev === 'started' && l.name === 'main', 30000, 'start');
  const t = { node, port: started.port as number, log, marker, dir };
  running.add(t);
  return t;
}

/** Ends the child (strace then exits and has written its whole log). */
async function stopTraced(t: Traced): Promise<void> {
  if (!t.node.exited) {
    t.node.child.stdin!.write(JSON.stringify({ cmd: 'exit' }) + '\n');
    await t.node.stop();
  }
}

async function disposeTraced(t: Traced): Promise<void> {
  await stopTraced(t);
  running.delete(t);
  fs.rmSync(t.dir, { recursive: true, force: true });
}

/** Write-type system calls on sockets whose local port is `port`, per segment between marker writes. */
function writesBetween(t: Traced, port: number, begin: string, end: string): number {
  const lines = fs.readFileSync(t.log, 'utf8').split('\n');
  let inside = false;
  let n = 0;
  for (const line of lines) {
    // The descriptor's name ends at the '>' before the next argument (a TCP
    // name has '->' inside it).
    const m = /^\d+\s+(write|writev|sendmsg|sendto)\(\d+<(.*?)>[,)]/.exec(line);
    if (!m) continue;
    const target = m[2];
    if (target === t.marker) {
      if (line.includes(`"${begin}"`)) inside = true;
      else if (line.includes(`"${end}"`)) inside = false;
      continue;
    }
    if (!inside) continue;
    const tcp = /^TCP(?:v6)?:\[(.*)->/.exec(target);
    if (tcp && Number(tcp[1].slice(tcp[1].lastIndexOf(':') + 1)) === port) n++;
  }
  return n;
}

interface Client {
  ws: WebSocket;
  got: string[];
  closed?: { code: number };
}

/** n `ws` clients of the child's server `name`; resolves once the child has seen them open (and subscribed them). */
async function connect(t: Traced, name: string, port: number, n: number, query = ''): Promise<Client[]> {
  const opens = () => t.node.of('open').filter((l) => l.name === name).length;
  const before = opens();
  const out: Client[] = [];
  for (let i = 0; i < n; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/${query}`, { perMessageDeflate: false });
    sockets.add(ws);
    const c: Client = { ws, got: [] };
    ws.on('message', (d) => c.got.push(d.toString().replace(/\.+$/, '')));
    ws.on('close', (code) => (c.closed = { code }));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    out.push(c);
  }
  await until(() => (opens() >= before + n ? true : undefined), 10000, `${name}: open events`);
  return out;
}

const seq = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}-${i}`);

async function allGot(clients: Client[], count: number, what: string, timeoutMs = 10000): Promise<void> {
  await until(() => (clients.every((c) => c.got.length >= count) ? true : undefined), timeoutMs,
    `${what}: ${clients.map((c) => c.got.length).join(',')} of ${count}`);
}

afterAll(async () => {
  for (const ws of sockets) ws.terminate();
  for (const t of [...running]) await disposeTraced(t);
});

describeWithPeers([peers.strace()], 'sends outside event delivery are corked per task', (found) => {
  beforeAll(() => compilePackage(outDir), 120_000);

  /** Runs a burst between markers and returns the writes counted on the main server's sockets. */
  async function measuredBurst(t: Traced, clients: Client[], burst: Record<string, unknown>, expected: number) {
    await t.node.ask({ cmd: 'mark', text: 'begin' }, 'marked');
    const done = await t.node.ask({ cmd: 'burst', ...burst }, 'burst');
    await allGot(clients, expected, String(burst.mode));
    await t.node.ask({ cmd: 'mark', text: 'end' }, 'marked');
    return done;
  }

  for (const mode of ['send', 'broadcast', 'publish'] as const) {
    const verb = { send: 'sends', broadcast: 'broadcasts', publish: 'publishes' }[mode];
    test(`a timer that ${verb} ${ROUNDS} messages to each of ${N} clients writes each socket about once`, async () => {
      const t = await startTraced(found.strace!.exe);
      try {
        const clients = await connect(t, 'main', t.port, N, '?topics=a');
        const done = await measuredBurst(t, clients, { mode, n: ROUNDS }, ROUNDS);
        expect(done.refused).toBe(0);
        for (const c of clients) expect(c.got).toEqual(seq(mode, ROUNDS));
        await stopTraced(t);
        const writes = writesBetween(t, t.port, 'begin', 'end');
        console.log(`[cork] ${mode}: ${N * ROUNDS} messages to ${N} clients in ${writes} write calls`);
        // Uncorked: one call per message (N·ROUNDS = 1000). Corked: one per
        // connection at the end of the task, plus the first few written at
        // once (pass-through, 8) and slack for a socket that took a part.
        expect(writes).toBeGreaterThanOrEqual(N);
        expect(writes).toBeLessThanOrEqual(3 * N + 8);
      } finally {
        await disposeTraced(t);
      }
    }, 60_000);
  }

  test('a send, an await, then more sends: the first sends arrive before the code after the await runs; both halves corked', async () => {
    const t = await startTraced(found.strace!.exe);
    try {
      const clients = await connect(t, 'main', t.port, N);
      await t.node.ask({ cmd: 'mark', text: 'begin' }, 'marked');
      t.node.child.stdin!.write(JSON.stringify({ cmd: 'burst', id: 999, mode: 'send', n: ROUNDS, then: 'await' }) + '\n');
      // The child now waits for 'go': the first half must already be here.
      await allGot(clients, ROUNDS, 'before the await', 5000);
      await t.node.ask({ cmd: 'mark', text: 'middle' }, 'marked');
      await t.node.ask({ cmd: 'go' }, 'went');
      await allGot(clients, 2 * ROUNDS, 'after the await', 5000);
      await t.node.waitFor((l) => l.ev === 'burst' && l.id === 999, 5000, 'burst done');
      await t.node.ask({ cmd: 'mark', text: 'end' }, 'marked');
      for (const c of clients) expect(c.got).toEqual([...seq('send', ROUNDS), ...seq('send-late', ROUNDS)]);
      await stopTraced(t);
      const first = writesBetween(t, t.port, 'begin', 'middle');
      const second = writesBetween(t, t.port, 'middle', 'end');
      console.log(`[cork] await: ${first} + ${second} write calls for 2 x ${N * ROUNDS} messages`);
      expect(first).toBeLessThanOrEqual(3 * N + 8);
      expect(second).toBeLessThanOrEqual(3 * N + 8);
    } finally {
      await disposeTraced(t);
    }
  }, 60_000);

  test('the scope closes when the timer throws after sending: everything arrives, corked', async () => {
    const t = await startTraced(found.strace!.exe);
    try {
      const clients = await connect(t, 'main', t.port, N);
      await measuredBurst(t, clients, { mode: 'send', n: ROUNDS, then: 'throw' }, ROUNDS);
      await t.node.waitFor((l) => l.ev === 'uncaught', 5000, 'the uncaught exception');
      for (const c of clients) expect(c.got).toEqual(seq('send', ROUNDS));
      await stopTraced(t);
      expect(writesBetween(t, t.port, 'begin', 'end')).toBeLessThanOrEqual(3 * N + 8);
    } finally {
      await disposeTraced(t);
    }
  }, 60_000);

  for (const then of ['clear', 'stop', 'close'] as const) {
    test(`${then} in the same task as the sends: every accepted message arrives before the close`, async () => {
      const t = await startTraced(found.strace!.exe);
      try {
        const other = await t.node.ask({ cmd: 'server', name: then }, 'started');
        const clients = await connect(t, then, other.port, N);
        const done = await t.node.ask({ cmd: 'burst', name: then, mode: 'send', n: ROUNDS, then }, 'burst');
        expect(done.refused).toBe(0);
        await until(() => (clients.every((c) => c.closed) ? true : undefined), 10000, 'closes');
        for (const c of clients) expect(c.got).toEqual(seq('send', ROUNDS));
        const codes = new Set(clients.map((c) => c.closed!.code));
        // clear is a hard stop (no close frame: 1006); stop sends 1001, close 1000.
        expect([...codes]).toEqual([then === 'clear' ? 1006 : then === 'stop' ? 1001 : 1000]);
      } finally {
        await disposeTraced(t);
      }
    }, 60_000);
  }

  test('clear inside a message event after 100 replies: every reply arrives before the close', async () => {
    const t = await startTraced(found.strace!.exe);
    try {
      const other = await t.node.ask({ cmd: 'server', name: 'rc' }, 'started');
      const [c] = await connect(t, 'rc', other.port, 1);
      await t.node.ask({ cmd: 'replyClear', name: 'rc' }, 'armed');
      c.ws.send('go');
      await until(() => (c.closed ? true : undefined), 10000, 'close');
      expect(c.got).toEqual(seq('reply', 100));
    } finally {
      await disposeTraced(t);
    }
  }, 60_000);

  test('a long burst to one client with a small sendHighWaterMark: every send is accepted, as uncorked', async () => {
    const t = await startTraced(found.strace!.exe);
    try {
      // 400 x 4 KiB = 1.6 MiB in one task against a 256 KiB high-water
      // mark: corked without a bound, the queue would pass the mark and the
      // sends after it would be refused.
      const other = await t.node.ask({ cmd: 'server', name: 'hwm', options: { sendHighWaterMark: 256 * 1024 } }, 'started');
      const clients = await connect(t, 'hwm', other.port, 1);
      const done = await t.node.ask({ cmd: 'burst', name: 'hwm', mode: 'send', n: 400, size: 4096 }, 'burst');
      expect(done.refused).toBe(0);
      await allGot(clients, 400, 'hwm');
      expect(clients[0].got).toEqual(seq('send', 400));
    } finally {
      await disposeTraced(t);
    }
  }, 60_000);
});

describeWithPeers([peers.strace(), peers.redis()], 'Redis bus messages that arrive in one read are corked', (found) => {
  let redis: RedisServer;
  beforeAll(async () => {
    compilePackage(outDir);
    redis = await RedisServer.start(found.redis!.exe);
  }, 120_000);
  afterAll(async () => {
    await redis?.stop();
  });

  test(`${ROUNDS} messages published by another process in one Redis write reach ${N} clients in O(N) writes, in order`, async () => {
    const t = await startTraced(found.strace!.exe, { redis: redis.url, prefix: 'cork:' });
    try {
      const clients = await connect(t, 'main', t.port, N, '?topics=a');
      // The bus subscribes to cork:a once the first client is subscribed.
      for (let i = 0; (await numsub(redis.port, 'cork:a')) !== 1; i++) {
        if (i >= 100) throw new Error('the bus did not subscribe to cork:a within 10 s');
        await new Promise((r) => setTimeout(r, 100));
      }
      await t.node.ask({ cmd: 'mark', text: 'begin' }, 'marked');
      await publishPipelined(redis.port, 'cork:a', seq('bus', ROUNDS));
      await allGot(clients, ROUNDS, 'bus');
      await t.node.ask({ cmd: 'mark', text: 'end' }, 'marked');
      for (const c of clients) expect(c.got).toEqual(seq('bus', ROUNDS));
      await stopTraced(t);
      const writes = writesBetween(t, t.port, 'begin', 'end');
      console.log(`[cork] bus: ${N * ROUNDS} messages to ${N} clients in ${writes} write calls`);
      expect(writes).toBeLessThanOrEqual(3 * N + 8);
    } finally {
      await disposeTraced(t);
    }
  }, 60_000);
});

/** Number of subscribers of a channel (PUBSUB NUMSUB). */
async function numsub(port: number, channel: string): Promise<number> {
  const reply = await rawRedis(port, resp(['PUBSUB', 'NUMSUB', channel]), (b) => /:(\d+)\r\n/.test(b.toString('latin1')));
  return Number(/:(\d+)\r\n/.exec(reply.toString('latin1'))![1]);
}

/** RESP encoding of one command. */
function resp(args: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === 'string' ? Buffer.from(a) : a;
    parts.push(Buffer.from(`$${b.length}\r\n`), b, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/**
 * Publishes every message, in ix-websocket's bus format (lib/redis.ts:
 * version 1, flags 0 = text, an 8-byte sender id that is not the child's),
 * with all PUBLISH commands in one TCP write, so Redis forwards them to the
 * subscriber together; resolves when Redis answered every one.
 */
async function publishPipelined(port: number, channel: string, messages: string[]): Promise<void> {
  const sender = Buffer.from('0123456789abcdef', 'hex');
  const cmds = messages.map((m) => resp(['PUBLISH', channel, Buffer.concat([Buffer.from([1, 0]), sender, Buffer.from(m)])]));
  await rawRedis(port, Buffer.concat(cmds), (b) => (b.toString('latin1').match(/:\d+\r\n/g) ?? []).length >= messages.length);
}

function rawRedis(port: number, bytes: Buffer, done: (got: Buffer) => boolean): Promise<Buffer> {
  const net = require('net') as typeof import('net');
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = Buffer.alloc(0);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error('redis: no complete answer within 5 s'));
    }, 5000);
    s.once('connect', () => s.write(bytes));
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      if (done(got)) {
        clearTimeout(timer);
        s.destroy();
        resolve(got);
      }
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}
