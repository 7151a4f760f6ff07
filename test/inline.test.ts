// Inline mode (issue 15): a server or client started with `inlineLoop: true`
// runs its sockets on the JavaScript thread's own loop and gets its events
// without the thread hop. The rest of the suite runs in this mode too when
// IXWS_INLINE=1 (CI's section_vitest_inline); these tests pin what belongs to
// the mode itself: the option and its default, echo and close codes between
// an inline server and an inline client, handlers that stop or clear their
// own server from inside an inline event, microtasks after an inline
// delivery, that the engine really shares the JavaScript thread, and clean
// exits of processes and worker threads.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClient,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
} from '../lib/index';
import { binding, root } from '../lib/binding';
import { Collector, connectClient, newClient, runCleanup, startEchoServer, startServer, until } from './support';

afterEach(runCleanup);

const inlineDefault = process.env.IXWS_INLINE === '1' || process.env.IXWS_INLINE === 'true';

describe('the inlineLoop option', () => {
  test('its default follows IXWS_INLINE; given values are kept and written back', () => {
    const s = websocketServer({ port: 0 });
    const c = websocketClient({ url: 'ws://127.0.0.1:1' });
    try {
      expect(s.inlineLoop).toBe(inlineDefault);
      expect(c.inlineLoop).toBe(inlineDefault);
    } finally {
      websocketServerClear(s);
    }
    for (const v of [true, false]) {
      const s2 = websocketServer({ port: 0, inlineLoop: v });
      const c2 = websocketClient({ url: 'ws://127.0.0.1:1', inlineLoop: v });
      expect(s2.inlineLoop).toBe(v);
      expect(c2.inlineLoop).toBe(v);
      websocketServerClear(s2);
    }
  });

  test('a value that is not a boolean: TypeError naming inlineLoop', () => {
    for (const bad of [1, 'yes', {}, null]) {
      expect(() => websocketServer({ inlineLoop: bad as unknown as boolean })).toThrow(TypeError);
      expect(() => websocketServer({ inlineLoop: bad as unknown as boolean })).toThrow(/inlineLoop/);
      expect(() => websocketClient({ url: 'ws://127.0.0.1:1', inlineLoop: bad as unknown as boolean })).toThrow(/inlineLoop/);
    }
  });

  test('the IXWS_INLINE environment variable makes it the default in a fresh process', async () => {
    const script = `const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
      console.log(JSON.stringify([ix.websocketServer({}).inlineLoop, ix.websocketClient({ url: 'ws://a' }).inlineLoop]));`;
    for (const [value, want] of [['1', true], ['true', true], ['0', false], ['', false]] as const) {
      const out = await new Promise<string>((resolve) => {
        const p = spawn(process.execPath, ['-e', script], { env: { ...process.env, IXWS_INLINE: value }, stdio: ['ignore', 'pipe', 'inherit'] });
        let o = '';
        p.stdout.on('data', (d) => (o += d));
        p.on('exit', () => resolve(o));
      });
      expect(JSON.parse(out), `IXWS_INLINE=${JSON.stringify(value)}`).toEqual([want, want]);
    }
  });
});

describe('inline server and inline client', () => {
  test('echo: text and binary, in order, both ways', async () => {
    const srv = startEchoServer({ inlineLoop: true });
    const cli = await connectClient(srv, { inlineLoop: true });
    const n = 500;
    for (let i = 0; i < n; i++) {
      const data = i % 2 ? `text ${i}` : Buffer.from([i & 0xff, (i >> 8) & 0xff, 7]);
      expect(websocketClientSend(cli.client, data).success).toBe(true);
    }
    const got = await cli.events.waitCount((e) => e.type === 'message', n, 10000, 'echoes');
    got.forEach((e, i) => {
      if (i % 2) expect(e.ctx.data).toBe(`text ${i}`);
      else expect(Buffer.compare(e.ctx.data, Buffer.from([i & 0xff, (i >> 8) & 0xff, 7]))).toBe(0);
      expect(e.ctx.binary).toBe(i % 2 === 0);
    });
  });

  test.each([true, false])('close codes: client stop (1000), the server closing one connection (4001), server stop (1001); inline %s', async (inlineLoop) => {
    const srv = startServer({ inlineLoop });
    const a = await connectClient(srv, { inlineLoop });
    websocketClientStop(a.client);
    const closeA = await srv.events.waitFor((e) => e.type === 'close' && e.client === a.conn);
    const clientA = await a.events.waitType('close');
    expect(closeA.ctx.code).toBe(1000);
    expect(closeA.ctx.remote).toBe(true);
    expect(clientA.ctx.code).toBe(1000);
    expect(clientA.ctx.remote).toBe(false);

    const c = await connectClient(srv, { inlineLoop });
    expect(binding.websocketServerCloseClient({ ref: srv.server.ref }, c.conn, 4001, 'go away')).toBe(true);
    const closeC = await c.events.waitType('close');
    expect(closeC.ctx.code).toBe(4001);
    expect(closeC.ctx.reason).toBe('go away');
    expect(closeC.ctx.remote).toBe(true);

    const b = await connectClient(srv, { inlineLoop });
    websocketServerStop(srv.server);
    const closeB = await b.events.waitType('close');
    expect(closeB.ctx.code).toBe(1001);
    expect(closeB.ctx.remote).toBe(true);
    const srvCloseB = await srv.events.waitFor((e) => e.type === 'close' && e.client === b.conn);
    // The server's event carries the client's reply, as on the IO threads.
    expect(srvCloseB.ctx.code).toBe(1000);
    expect(srvCloseB.ctx.remote).toBe(true);
  });

  test('an inline server with a client on the IO threads, and the other way round', async () => {
    for (const [serverInline, clientInline] of [[true, false], [false, true]]) {
      const srv = startEchoServer({ inlineLoop: serverInline });
      const cli = await connectClient(srv, { inlineLoop: clientInline });
      for (let i = 0; i < 50; i++) websocketClientSend(cli.client, `m${i}`);
      const got = await cli.events.waitCount((e) => e.type === 'message', 50, 5000, 'echoes');
      expect(got.map((e) => e.ctx.data)).toEqual(Array.from({ length: 50 }, (_, i) => `m${i}`));
      websocketServerClear(srv.server);
      const closed = await cli.events.waitType('close');
      expect(closed.ctx.code).toBe(1006);
    }
  });

  test('a server moves between modes across starts', async () => {
    const events = new Collector();
    let ref = 0;
    const server = websocketServer({
      host: '127.0.0.1',
      port: 0,
      method: (s, c, type, ctx, ...rest) => {
        events.method(s, c, type, ctx, ...rest);
        if (type === 'message') websocketServerSend({ ref, clients: [c] }, ctx.data);
      },
    });
    ref = server.ref;
    try {
      for (const inlineLoop of [true, false, true]) {
        const st = websocketServerStart({ ...server, port: 0, inlineLoop });
        expect(st.success).toBe(true);
        const cli = await connectClient({ server, port: st.port!, events }, { inlineLoop: !inlineLoop });
        websocketClientSend(cli.client, `via ${inlineLoop}`);
        await cli.events.waitFor((e) => e.type === 'message' && e.ctx.data === `via ${inlineLoop}`);
        websocketServerStop({ ref });
        await cli.events.waitType('close');
      }
    } finally {
      websocketServerClear({ ref });
    }
  });
});

describe('handlers that end their own server inside an inline event', () => {
  test('clear from a message event: the rest of the batch is dropped, the peers see 1006, the ref is gone', async () => {
    let ref = 0;
    const seen: string[] = [];
    const events = new Collector();
    const started = startServer({
      inlineLoop: true,
      method: (s, c, type, ctx, ...rest) => {
        events.method(s, c, type, ctx, ...rest);
        seen.push(type === 'message' ? `${type}:${ctx.data}` : type);
        if (type === 'message' && ctx.data === 'clear') {
          websocketServerClear({ ref });
          // The server is gone for every later command, even inside this handler.
          expect(websocketServerClients({ ref })).toEqual([]);
          expect(websocketServerSend({ ref, clients: [c] }, 'late')).toEqual([]);
        }
      },
    });
    const srv = { ...started, events };
    ref = srv.server.ref;
    const a = await connectClient(srv, { inlineLoop: true });
    const b = await connectClient(srv, { inlineLoop: true });
    websocketClientSend(a.client, 'one');
    websocketClientSend(a.client, 'clear');
    websocketClientSend(a.client, 'after');
    const ca = await a.events.waitType('close');
    const cb = await b.events.waitType('close');
    expect(ca.ctx.code).toBe(1006);
    expect(cb.ctx.code).toBe(1006);
    expect(seen.filter((x) => x.startsWith('message'))).toEqual(['message:one', 'message:clear']);
    expect(seen).not.toContain('close'); // a clear raises no close event
  });

  test('stop from the open event, and a send plus stop from a message event', async () => {
    let ref = 0;
    let mode: 'open' | 'message' = 'open';
    const srv = startServer({
      inlineLoop: true,
      method: (s, c, type, ctx) => {
        if (mode === 'open' && type === 'open') websocketServerStop({ ref });
        if (mode === 'message' && type === 'message') {
          const [st] = websocketServerSend({ ref, clients: [c] }, `reply ${ctx.data}`);
          expect(st.success).toBe(true);
          websocketServerStop({ ref });
        }
      },
    });
    ref = srv.server.ref;
    const events1 = new Collector();
    const c1 = newClient({ url: `ws://127.0.0.1:${srv.port}`, enableAutomaticReconnection: false, inlineLoop: true, method: events1.method });
    await websocketClientStart(c1);
    const close1 = await events1.waitType('close');
    expect(close1.ctx.code).toBe(1001);
    // Started again: a reply sent before the stop in the same handler goes out first.
    mode = 'message';
    const st = websocketServerStart({ ref, port: 0 });
    expect(st.success).toBe(true);
    const events2 = new Collector();
    const c2 = newClient({ url: `ws://127.0.0.1:${st.port}`, enableAutomaticReconnection: false, inlineLoop: true, method: events2.method });
    expect((await websocketClientStart(c2)).success).toBe(true);
    websocketClientSend(c2, 'x');
    const close2 = await events2.waitType('close');
    expect(close2.ctx.code).toBe(1001);
    expect(events2.of('message').map((e) => e.ctx.data)).toEqual(['reply x']);
  });
});

describe('delivery on the JavaScript thread', () => {
  test('microtasks and nextTicks queued in an inline event run before a setImmediate queued there', async () => {
    const order: string[] = [];
    const events = new Collector();
    const started = startServer({
      inlineLoop: true,
      method: (s, c, type, ...rest) => {
        events.method(s, c, type, ...rest);
        if (type !== 'message') return;
        setImmediate(() => order.push('immediate'));
        Promise.resolve().then(() => order.push('microtask'));
        process.nextTick(() => order.push('tick'));
      },
    });
    const cli = await connectClient({ ...started, events }, { inlineLoop: true });
    websocketClientSend(cli.client, 'go');
    await until(() => (order.length === 3 ? true : undefined), 5000, `three callbacks (got ${order})`);
    expect(order).toEqual(['tick', 'microtask', 'immediate']);
  });

  test('the inline engine shares the JavaScript thread: while it is blocked, no ping is answered', async () => {
    // The peer is another process (it keeps running while this thread is
    // blocked): it pings and reports when the pong came.
    for (const inlineLoop of [true, false]) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-inline-'));
      const marker = path.join(dir, 'pinging');
      const srv = startServer({ inlineLoop });
      const peer = spawn(process.execPath, ['-e', `
        const WebSocket = require('ws');
        const ws = new WebSocket('ws://127.0.0.1:${srv.port}');
        ws.on('open', () => { process.stdout.write('open\\n'); });
        process.stdin.on('data', () => { const t = Date.now(); require('fs').writeFileSync(${JSON.stringify(marker)}, ''); ws.ping(); ws.once('pong', () => { process.stdout.write('pong ' + (Date.now() - t) + '\\n'); ws.terminate(); }); });
      `], { cwd: root, stdio: ['pipe', 'pipe', 'inherit'] });
      let out = '';
      peer.stdout.on('data', (d) => (out += d));
      await until(() => (out.includes('open') ? true : undefined), 5000, 'peer open');
      await srv.events.waitType('open');
      peer.stdin.write('ping\n');
      // Block this thread (the peer may take a while to read its stdin: wait,
      // blocked, until it is about to ping), then 400 ms more: the IO thread
      // answers meanwhile, the inline engine cannot.
      const cell = new Int32Array(new SharedArrayBuffer(4));
      const until5s = Date.now() + 5000;
      while (!fs.existsSync(marker) && Date.now() < until5s) Atomics.wait(cell, 0, 0, 2);
      expect(fs.existsSync(marker), 'the peer pinged').toBe(true);
      Atomics.wait(cell, 0, 0, 400);
      const m = await until(() => /pong (\d+)/.exec(out) ?? undefined, 5000, 'pong');
      const ms = Number(m[1]);
      if (inlineLoop) expect(ms, 'inline: the pong waits for the thread').toBeGreaterThanOrEqual(250);
      else expect(ms, 'IO thread: the pong does not wait').toBeLessThan(250);
      peer.kill();
      websocketServerClear(srv.server);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a stalled JavaScript thread delays the inline engine, it does not time its peers out', () => {
  // libuv runs timers before it polls: after JavaScript ran longer than a
  // timeout, the deadline must not fire before the bytes that came in time
  // (a pong, a request) are read (Deadlines::run gives it one loop turn).
  const stall = (ms: number, times: number) =>
    new Promise<void>((resolve) => {
      let n = 0;
      const work = () => {
        const until = Date.now() + ms;
        while (Date.now() < until) {}
        if (++n < times) setImmediate(work);
        else resolve();
      };
      setImmediate(work);
    });

  test('pingTimeout: a peer that answered every ping at once stays open', async () => {
    const srv = startServer({ inlineLoop: true, pingInterval: 1, pingTimeout: 1 });
    const cli = await connectClient(srv, { inlineLoop: false, enableAutomaticReconnection: false });
    await stall(1200, 4);
    await new Promise((r) => setTimeout(r, 300));
    expect(srv.events.of('close').map((e) => e.ctx)).toEqual([]);
    expect(cli.events.of('close')).toEqual([]);
  });

  test('firstByteTimeout / handshakeTimeout: requests sent at once are answered', async () => {
    const srv = startServer({ inlineLoop: true, firstByteTimeout: 1, handshakeTimeout: 1 });
    const stalled = stall(1200, 4);
    const starts = [];
    for (let i = 0; i < 3; i++) {
      const c = newClient({ url: `ws://127.0.0.1:${srv.port}/`, inlineLoop: false, enableAutomaticReconnection: false, timeout: 10 });
      starts.push(websocketClientStart(c));
      await new Promise((r) => setTimeout(r, 10));
    }
    await stalled;
    for (const st of await Promise.all(starts)) expect(st).toMatchObject({ success: true, http_status: 101 });
  });
});

describe('lifetime', () => {
  const script = (tail: string) => `
    const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
    const srv = ix.websocketServer({ port: 0, inlineLoop: true, method: (s, c, type, ctx) => {
      if (type === 'message') ix.websocketServerSend({ ref: s, clients: [c] }, ctx.data);
    } });
    const st = ix.websocketServerStart(srv);
    const cli = ix.websocketClient({ url: 'ws://127.0.0.1:' + st.port, inlineLoop: true, enableAutomaticReconnection: false,
      method: (s, c, type, ctx) => { if (type === 'message') { console.log('echo ' + ctx.data); done(); } } });
    ix.websocketClientStart(cli).then(() => ix.websocketClientSend(cli, 'hi'));
    function done() { ${tail} }
  `;

  function run(code: string, deadlineMs: number, env: NodeJS.ProcessEnv = process.env) {
    return new Promise<{ code: number | null; out: string; alive: boolean }>((resolve) => {
      const p = spawn(process.execPath, ['-e', code], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      p.stdout.on('data', (d) => (out += d));
      p.stderr.on('data', (d) => (out += d));
      let alive = false;
      const t = setTimeout(() => {
        alive = true;
        p.kill('SIGKILL');
      }, deadlineMs);
      p.on('exit', (code) => {
        clearTimeout(t);
        resolve({ code, out, alive });
      });
    });
  }

  test('a process exits by itself after stop, and stays alive while started', async () => {
    const stopped = await run(script('ix.websocketClientStop(cli); ix.websocketServerStop(srv);'), 8000);
    expect(stopped.out).toContain('echo hi');
    expect(stopped.alive).toBe(false);
    expect(stopped.code).toBe(0);
    const kept = await run(script(''), 1500);
    expect(kept.out).toContain('echo hi');
    expect(kept.alive).toBe(true);
    const exited = await run(script('process.exit(3)'), 8000);
    expect(exited.out).toContain('echo hi');
    expect(exited.code).toBe(3);
  });

  test('an inline client started and stopped or cleared in the same tick: the start is void, nothing connects, a worker ends cleanly', async () => {
    // The start is posted to the loop and an inline stop runs at once: the
    // start used to run after the stop and connect anyway (after a clear: a
    // forgotten client reconnecting for ever, and a worker ending with it
    // aborted the whole process, its loop still holding the connection).
    const code = `
      const { Worker } = require('worker_threads');
      const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
      let opens = 0;
      const srv = ix.websocketServer({ port: 0, method: (s, c, type) => { if (type === 'open') opens++; } });
      const st = ix.websocketServerStart(srv);
      const url = 'ws://127.0.0.1:' + st.port + '/';
      const out = { starts: [], clientEvents: [] };
      (async () => {
        for (const how of ['Stop', 'Clear']) {
          const cli = ix.websocketClient({ url, inlineLoop: true, method: (s, c, type) => out.clientEvents.push(type) });
          const p = ix.websocketClientStart(cli);
          ix['websocketClient' + how](cli);
          out.starts.push((await p).errorStr);
        }
        const w = new Worker(\`
          const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
          const cli = ix.websocketClient({ url: '\${url}', inlineLoop: true });
          ix.websocketClientStart(cli);
          ix.websocketClientClear(cli);
        \`, { eval: true });
        out.worker = await new Promise((resolve) => w.on('exit', resolve));
        await new Promise((r) => setTimeout(r, 300));
        out.opens = opens;
        console.log(JSON.stringify(out));
        ix.websocketServerClear(srv);
      })();
    `;
    const r = await run(code, 15000);
    expect(r.alive, r.out).toBe(false);
    expect(r.code, r.out).toBe(0);
    const out = JSON.parse(r.out.trim().split('\n').pop()!);
    expect(out).toEqual({ starts: ['Stopped', 'Client cleared'], clientEvents: [], worker: 0, opens: 0 });
  });

  test('a worker whose inline server moved to the IO threads while a connection still closed on its loop ends cleanly', async () => {
    // A graceful stop leaves the connection waiting for the peer's close
    // reply (it never comes here); the restart on the IO threads used to
    // leave it on the worker's loop, and the worker's end then aborted the
    // whole process ("uv loop has open handles").
    for (const how of ['terminate', 'exit']) {
      const code = `
        const { Worker } = require('worker_threads');
        const net = require('net');
        const w = new Worker(\`
          const { parentPort } = require('worker_threads');
          const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
          const srv = ix.websocketServer({ port: 0, inlineLoop: true, method: (s, c, type) => {
            if (type !== 'open') return;
            ix.websocketServerStop(srv);
            const st = ix.websocketServerStart({ ...srv, port: 0, inlineLoop: false });
            parentPort.postMessage({ restarted: st.success });
            if ('${how}' === 'exit') setTimeout(() => process.exit(0), 100);
          } });
          parentPort.postMessage({ port: ix.websocketServerStart(srv).port });
        \`, { eval: true });
        let peer;
        w.on('message', (m) => {
          if (m.port) {
            // Upgrades, then reads and never answers (no close reply).
            peer = net.connect(m.port, '127.0.0.1', () => peer.write('GET / HTTP/1.1\\r\\nHost: x\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n'));
            peer.on('data', () => {});
            peer.on('error', () => {});
          } else {
            console.log('restarted ' + m.restarted);
            if ('${how}' === 'terminate') setTimeout(() => w.terminate(), 100);
          }
        });
        w.on('exit', (c) => { console.log('worker exit ' + c); peer.destroy(); });
      `;
      const r = await run(code, 15000);
      expect(r.alive, `${how}: ${r.out}`).toBe(false);
      expect(r.code, `${how}: ${r.out}`).toBe(0);
      expect(r.out, how).toContain('restarted true');
      expect(r.out, how).toContain(`worker exit ${how === 'terminate' ? 1 : 0}`);
    }
  });

  test('worker threads using inline mode end cleanly: process.exit, terminate, a natural end after clear, and during a host lookup', async () => {
    for (const how of ['exit', 'terminate', 'clear']) {
      const tail =
        how === 'exit' ? 'process.exit(0)' :
        // Nothing else holds the worker's loop: it ends by itself.
        how === 'clear' ? 'ix.websocketClientClear(cli); ix.websocketServerClear(srv);' :
        'require("worker_threads").parentPort.postMessage("echoed")';
      const w = new Worker(script(tail), { eval: true, stdout: true });
      let out = '';
      w.stdout.on('data', (d) => (out += d));
      w.on('message', (m) => {
        if (m === 'echoed') void w.terminate();
      });
      const code = await new Promise<number>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`worker (${how}) did not end`)), 10000);
        w.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect(out, how).toContain('echo hi');
      expect(code, how).toBe(how === 'terminate' ? 1 : 0);
    }
    // A worker that ends while its inline client is resolving a host name
    // (the lookup must not be left pending on the worker's loop: Node aborts
    // the whole process when a worker's loop cannot close).
    for (let i = 0; i < 6; i++) {
      const exitInside = i % 2 === 0;
      const w = new Worker(`
        const ix = require(${JSON.stringify(root + '/dist/lib/index.js')});
        const c = ix.websocketClient({ url: 'ws://localhost:1', inlineLoop: true, minWaitBetweenReconnectionRetries: 1, maxWaitBetweenReconnectionRetries: 1 });
        ix.websocketClientStart(c);
        // setImmediate: right after the loop turn that ran the start (and began the lookup).
        ${exitInside ? `setImmediate(() => process.exit(0));` : `require('worker_threads').parentPort.postMessage('started');`}
      `, { eval: true });
      if (!exitInside) w.once('message', () => void w.terminate());
      const code = await new Promise<number>((resolve) => w.on('exit', resolve));
      expect(code).toBe(exitInside ? 0 : 1);
    }
    // This process still serves after the workers' loops are gone.
    const srv = startEchoServer({ inlineLoop: true });
    const cli = await connectClient(srv, { inlineLoop: true });
    websocketClientSend(cli.client, 'still here');
    await cli.events.waitFor((e) => e.type === 'message' && e.ctx.data === 'still here');
  });
});
