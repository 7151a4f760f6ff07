// WebSocketServer / WebSocketClient: events, send, clients, close, stop and
// start, clear and dispose, on top of the same commands.
import { afterEach, describe, expect, test } from 'vitest';
import {
  WebSocketClient,
  WebSocketServer,
  websocketClientClear,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerPublish,
  websocketServerStart,
} from '../lib/index';
import type { CloseContext, DataContext, OpenContext } from '../lib/index';
import { Collector, canConnect, closedPort, defer, delay, runCleanup, until } from './support';

afterEach(runCleanup);

/** Collects emitted events of a class instance as [type, ...args]. */
function record(emitter: WebSocketServer | WebSocketClient): unknown[][] {
  const log: unknown[][] = [];
  for (const t of ['open', 'message', 'close', 'error', 'ping', 'pong', 'fragment'] as const) {
    (emitter as NodeJS.EventEmitter).on(t, (...args: unknown[]) => log.push([t, ...args]));
  }
  return log;
}

function waitLog(log: unknown[][], pred: (e: unknown[]) => boolean, what: string, timeoutMs = 5000) {
  return until(() => log.find(pred), timeoutMs, what);
}

function server(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): WebSocketServer {
  const s = new WebSocketServer({ port: 0, ...options });
  defer(() => s.clear());
  return s;
}

function client(url: string, options: ConstructorParameters<typeof WebSocketClient>[0] & object = {}): WebSocketClient {
  const c = new WebSocketClient({ url, enableAutomaticReconnection: false, timeout: 5, ...options });
  defer(() => c.clear());
  return c;
}

describe('WebSocketServer + WebSocketClient', () => {
  test('events, send both ways, clients, close', async () => {
    const userEvents = new Collector();
    const srv = server({ method: userEvents.method, worker: 'w' });
    expect(srv.handle).toBeLessThan(0);
    expect(srv.object.ref).toBe(srv.handle);
    expect(srv.object.worker).toBe('w');
    const slog = record(srv);
    const st = srv.start();
    expect(st.success).toBe(true);
    expect(srv.port).toBe(st.port);
    expect(srv.port).toBeGreaterThan(0);

    const cli = client(`ws://127.0.0.1:${srv.port}/cls`);
    expect(cli.handle).toBeGreaterThan(0);
    expect(cli.url).toBe(`ws://127.0.0.1:${srv.port}/cls`);
    const clog = record(cli);
    const cst = await cli.start();
    expect(cst).toMatchObject({ success: true, http_status: 101 });

    const sopen = await waitLog(slog, (e) => e[0] === 'open', 'server open');
    const conn = sopen[1] as number;
    expect(conn).toBe(1);
    expect((sopen[2] as OpenContext).uri).toBe('/cls');
    const copen = await waitLog(clog, (e) => e[0] === 'open', 'client open');
    expect((copen[1] as OpenContext).uri).toBe(`ws://127.0.0.1:${srv.port}/cls`);
    // the user's method sees the same events, with the handed-back values
    const uopen = await userEvents.waitType('open');
    expect(uopen).toMatchObject({ server: srv.handle, client: conn, worker: 'w' });

    expect(srv.clients()).toEqual([conn]);
    expect(cli.send('from client').success).toBe(true);
    expect(cli.send(Buffer.from('as text'), { binary: false }).success).toBe(true);
    const [m1, m2] = await until(() => {
      const ms = slog.filter((e) => e[0] === 'message');
      return ms.length >= 2 ? ms : undefined;
    }, 5000, 'two server messages');
    expect(m1[1]).toBe(conn);
    expect(m1[2]).toEqual({ data: 'from client', binary: false, wireSize: 11 });
    expect((m2[2] as DataContext).data).toBe('as text');

    const statuses = srv.send(Buffer.from([7, 7]), { clients: [conn] });
    expect(statuses).toEqual([expect.objectContaining({ success: true, client: conn, payloadSize: 2 })]);
    const cm = await waitLog(clog, (e) => e[0] === 'message', 'client message');
    expect([...((cm[1] as DataContext).data as Buffer)]).toEqual([7, 7]);
    expect(srv.bufferedAmount(conn)).toBeGreaterThanOrEqual(0);
    expect(cli.bufferedAmount).toBeGreaterThanOrEqual(0);

    expect(srv.close(conn, 4100, 'closing you')).toBe(true);
    const cclose = await waitLog(clog, (e) => e[0] === 'close', 'client close');
    expect(cclose[1] as CloseContext).toEqual({ code: 4100, reason: 'closing you', remote: true });
    const sclose = await waitLog(slog, (e) => e[0] === 'close', 'server close');
    expect(sclose[1]).toBe(conn);
    expect(sclose[2]).toEqual({ code: 4100, reason: 'closing you', remote: false });
    await until(() => (srv.clients().length === 0 ? true : undefined), 3000, 'no clients');
    expect(srv.close(conn)).toBe(false);
  });

  test('stop and start again; the stopped object carries the port', async () => {
    const srv = server();
    const st = srv.start();
    const port = st.port!;
    const obj = srv.stop();
    expect(obj).toMatchObject({ ref: srv.handle, port });
    expect(srv.object.port).toBe(port);
    expect(srv.start({ port }).port).toBe(port);
    const cli = client(`ws://127.0.0.1:${port}/`);
    expect((await cli.start()).success).toBe(true);
    const stopped = cli.stop();
    expect(stopped).toMatchObject({ ref: cli.handle });
    await until(() => (srv.clients().length === 0 ? true : undefined), 3000, 'client gone');
    expect((await cli.start()).success).toBe(true);
  });

  test('the client constructor takes a url string', async () => {
    const srv = server();
    srv.start();
    const c = new WebSocketClient(`ws://127.0.0.1:${srv.port}/s`);
    defer(() => c.clear());
    expect(c.object.url).toBe(`ws://127.0.0.1:${srv.port}/s`);
    expect((await c.start({ enableAutomaticReconnection: false, timeout: 5 })).success).toBe(true);
  });

  test('constructors refuse options that are neither an object nor (client) a url string', () => {
    for (const bad of [5, null, true, () => {}]) {
      expect(() => new WebSocketClient(bad as never)).toThrow(new TypeError('options must be an object or a url string'));
    }
    for (const bad of [5, null, 'ws://x', true]) {
      expect(() => new WebSocketServer(bad as never)).toThrow(new TypeError('options must be an object'));
    }
  });

  test("a method's TypeError names the method's own arguments, not the command form's fields", async () => {
    const srv = server();
    expect(() => new WebSocketServer({ port: 'x' as never })).toThrow(new TypeError('options.port must be an integer between 0 and 65535'));
    expect(() => srv.start({ port: -1 })).toThrow(new TypeError('options.port must be an integer between 0 and 65535'));
    expect(() => srv.stop({ port: 70000 })).toThrow(new TypeError('options.port must be an integer between 0 and 65535'));
    srv.start();
    expect(() => srv.send('x', { clients: 'a' as never })).toThrow(new TypeError('options.clients must be an array of client refs'));
    expect(() => srv.send('x', { binary: 1 as never })).toThrow(new TypeError('options.binary must be a boolean'));
    expect(() => srv.publish('', 'x')).toThrow(new TypeError('topic must be a non-empty string'));
    expect(() => srv.publish('t', 'x', { binary: 'yes' as never })).toThrow(new TypeError('options.binary must be a boolean'));
    // The stack starts at the method the caller called.
    let caught: unknown;
    try {
      srv.publish(5 as never, 'x');
    } catch (e) {
      caught = e;
    }
    expect(String((caught as Error).stack).split('\n')[1]).toMatch(/WebSocketServer\.publish/);
    expect(() => new WebSocketClient({ url: 5 as never })).toThrow(new TypeError('options.url must be a string'));
    const c = client(`ws://127.0.0.1:${srv.port}/`);
    expect(() => c.start({ timeout: 'a' as never })).toThrow(new TypeError('options.timeout must be a positive number of seconds'));
    expect(() => c.stop({ timeout: -1 })).toThrow(new TypeError('options.timeout must be a positive number of seconds'));
    expect(() => c.send('x', { binary: 3 as never })).toThrow(new TypeError('options.binary must be a boolean'));
    // The command form keeps its own words.
    expect(() => websocketServerPublish({ ref: srv.handle }, 'x')).toThrow(new TypeError('server.topic must be a non-empty string'));
  });

  test('a cleared object answers that it was cleared', () => {
    const srv = server();
    expect(srv.clear()).toEqual({});
    expect(srv.clear()).toEqual({ success: false, message: 'Unknown server ref 0 (the ref of a cleared WebSocketServer)' });
    expect(srv.start()).toMatchObject({ success: false, message: 'Unknown server ref 0 (the ref of a cleared WebSocketServer)' });
    const c = client('ws://127.0.0.1:1/');
    expect(c.clear()).toEqual({});
    expect(c.send('x')).toMatchObject({ success: false, message: 'Unknown client ref 0 (the ref of a cleared WebSocketClient)' });
    expect(websocketServerClear({ ref: 7777 } as never)).toMatchObject({ success: false, message: 'Unknown server ref 7777' });
  });

  test("an object cleared through the commands lets go of its ref: it never stops, sends on or clears the ref's next owner", async () => {
    const a = new WebSocketServer({ port: 0 });
    a.start();
    expect(websocketServerClear({ ref: a.handle })).toEqual({});
    // The next server made takes the ref.
    const b = websocketServer({ port: 0 });
    defer(() => websocketServerClear(b));
    expect(b.ref).toBe(a.handle);
    const bs = websocketServerStart(b);
    expect(bs.success).toBe(true);
    expect(a.stop()).toMatchObject({ success: false, message: 'Unknown server ref 0 (the ref of a cleared WebSocketServer)' });
    expect(a.clear()).toMatchObject({ success: false });
    expect(await canConnect(bs.port!)).toBe(true);  // b still listens

    const srv = server();
    srv.start();
    const got: unknown[] = [];
    srv.on('message', (_c, ctx) => got.push(ctx.data));
    const c1 = client(`ws://127.0.0.1:${srv.port}/`);
    expect((await c1.start()).success).toBe(true);
    expect(websocketClientClear({ ref: c1.handle })).toEqual({});
    const c2 = client(`ws://127.0.0.1:${srv.port}/`);
    expect(c2.handle).toBe(c1.handle);
    expect((await c2.start()).success).toBe(true);
    expect(c1.send('from the cleared one')).toMatchObject({ success: false });
    expect(c1.clear()).toMatchObject({ success: false });
    expect(c2.send('from c2').success).toBe(true);
    await until(() => (got.length > 0 ? true : undefined), 3000, 'a message');
    await delay(50);
    expect(got).toEqual(['from c2']);
  });

  test("'error' is emitted only with a listener, and never throws without one", async () => {
    const port = await closedPort();
    const quiet = client(`ws://127.0.0.1:${port}/`);
    const userEvents = new Collector();
    const heard = client(`ws://127.0.0.1:${port}/`, { method: userEvents.method });
    const errors: unknown[] = [];
    heard.on('error', (ctx) => errors.push(ctx));
    expect((await quiet.start()).success).toBe(false);
    expect((await heard.start()).success).toBe(false);
    await until(() => (errors.length ? true : undefined), 5000, 'error event');
    expect(errors[0]).toMatchObject({ decompressionError: false, http_status: 0, reason: expect.any(String) });
    // the user's method gets errors regardless of listeners
    await userEvents.waitType('error');
    await delay(100);
  });

  test('clear frees the ref; a cleared instance never touches the ref\'s next owner', async () => {
    const a = new WebSocketServer({ port: 0 });
    expect(a.start().success).toBe(true);
    const ref = a.handle;
    expect(a.clear()).toEqual({});
    const other = websocketServer({ port: 0 });
    defer(() => websocketServerClear(other));
    expect(other.ref).toBe(ref);
    expect(a.stop()).toMatchObject({ success: false });
    expect(a.send('x')).toEqual([]);
    expect(a.clients()).toEqual([]);
    expect(a.clear()).toMatchObject({ success: false });
    expect(websocketServerClients(other)).toEqual([]);
  });

  test('Symbol.dispose clears (and using-style disposal works)', async () => {
    const srv = new WebSocketServer({ port: 0 });
    srv.start();
    const port = srv.port;
    const cli = new WebSocketClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false });
    expect((await cli.start({ timeout: 5 })).success).toBe(true);
    cli[Symbol.dispose]();
    expect(cli.send('x').success).toBe(false);
    srv[Symbol.dispose]();
    expect(srv.start().success).toBe(false);
    // the port is released: connections are refused
    const deadline = Date.now() + 3000;
    while (await canConnect(port)) {
      if (Date.now() > deadline) throw new Error('port still accepting after dispose');
      await delay(20);
    }
  });

  test('ref() and unref() chain', () => {
    const srv = server();
    srv.start();
    expect(srv.unref()).toBe(srv);
    expect(srv.ref()).toBe(srv);
    const c = client('ws://127.0.0.1:1/');
    expect(c.unref().ref()).toBe(c);
  });
});
