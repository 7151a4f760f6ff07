// JavaScript misuse: missing, wrong-kind and cleared refs, wrong option
// types and ranges, non-buffer data, a throwing `method`, and commands called
// from inside `method` (re-entrancy), including clear of the very object
// whose event is being delivered. Each case asserts the exact error or status.
import { spawnSync } from 'child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { binding, root } from '../lib/binding';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketClientStop,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
  websocketServerStop,
  WebSocketServer,
} from '../lib/index';
import type { EventMethod } from '../lib/index';
import { Collector, RawPeer, connectClient, defer, delay, newClient, newServer, runCleanup, startServer, until } from './support';

afterEach(runCleanup);

// Untyped handles on the commands, to pass what TypeScript would refuse.
const any = (f: unknown) => f as (...args: unknown[]) => any;

const REF_ARG = (what: 'server' | 'client') => new RegExp(`^${what} must be an object with a numeric ref$`);
const DATA = /^data must be a string, Buffer, TypedArray, DataView or ArrayBuffer$/;

function expectTypeError(f: () => unknown, message: RegExp): void {
  let thrown: unknown;
  try {
    f();
  } catch (e) {
    thrown = e;
  }
  expect(thrown).toBeInstanceOf(TypeError);
  expect((thrown as Error).message).toMatch(message);
}

describe('missing refs', () => {
  const serverCmds = [
    websocketServerStart,
    websocketServerStop,
    websocketServerClear,
    websocketServerClients,
  ];
  const clientCmds = [websocketClientStop, websocketClientClear];
  const bad: unknown[] = [undefined, null, 42, 'x', {}, { ref: 'x' }, { ref: null }, { ref: {} }];

  it.each(bad.map((b) => [JSON.stringify(b) ?? 'undefined', b]))('server commands with %s throw a TypeError naming server', (_n, b) => {
    for (const cmd of serverCmds) expectTypeError(() => any(cmd)(b), REF_ARG('server'));
    expectTypeError(() => any(websocketServerSend)(b, 'x'), REF_ARG('server'));
  });

  it.each(bad.map((b) => [JSON.stringify(b) ?? 'undefined', b]))('client commands with %s throw a TypeError naming client', (_n, b) => {
    for (const cmd of clientCmds) expectTypeError(() => any(cmd)(b), REF_ARG('client'));
    expectTypeError(() => any(websocketClientSend)(b, 'x'), REF_ARG('client'));
    expectTypeError(() => any(websocketClientStart)(b), REF_ARG('client'));
  });
});

describe('refs of the wrong kind, unknown and cleared refs', () => {
  function expectUnknownServer(ref: number): void {
    // No object has ref 0: it is what a cleared WebSocketServer passes, and says so.
    const msg = new RegExp(`^Unknown server ref ${ref}${ref === 0 ? ' \\(the ref of a cleared WebSocketServer\\)' : ''}$`);
    for (const st of [
      websocketServerStart({ ref }),
      websocketServerStop({ ref }),
      websocketServerClear({ ref }),
    ] as any[]) {
      expect(st.success).toBe(false);
      expect(st.message).toMatch(msg);
    }
    expect(websocketServerSend({ ref }, 'x')).toEqual([]);
    expect(websocketServerClients({ ref })).toEqual([]);
  }

  async function expectUnknownClient(ref: number): Promise<void> {
    const msg = new RegExp(`^Unknown client ref ${ref}${ref === 0 ? ' \\(the ref of a cleared WebSocketClient\\)' : ''}$`);
    for (const st of [websocketClientStop({ ref }), websocketClientClear({ ref })] as any[]) {
      expect(st.success).toBe(false);
      expect(st.message).toMatch(msg);
    }
    const send = websocketClientSend({ ref }, 'x');
    expect(send.success).toBe(false);
    expect(send.message).toMatch(msg);
    const start = await websocketClientStart({ ref });
    expect(start.success).toBe(false);
    expect(start.errorStr).toMatch(msg);
  }

  it('a client ref given to server commands is unknown there (and the client is untouched)', async () => {
    const c = newClient({ url: 'ws://127.0.0.1:1/' });
    expect(c.ref).toBeGreaterThan(0);
    expectUnknownServer(c.ref);
    // The client still exists: clearing it works once.
    expect(websocketClientClear(c)).toEqual({});
  });

  it('a server ref given to client commands is unknown there (and the server is untouched)', async () => {
    const srv = startServer();
    await expectUnknownClient(srv.server.ref);
    const conn = await connectClient(srv);
    expect(websocketServerClients(srv.server)).toEqual([conn.conn]);
  });

  it('ref 0, non-integer and never-used refs', async () => {
    expectUnknownServer(0);
    expectUnknownServer(-9999);
    await expectUnknownClient(0);
    await expectUnknownClient(9999);
    // A number that cannot be a ref is a TypeError naming it (it used to read as "Unknown server ref 0").
    for (const ref of [-1.5, NaN, Infinity, 2 ** 40]) {
      expect(() => websocketServerStart({ ref })).toThrow(new TypeError('server.ref must be an integer between -2147483647 and 2147483647'));
      expect(() => websocketClientSend({ ref: -ref }, 'x')).toThrow(new TypeError('client.ref must be an integer between -2147483647 and 2147483647'));
    }
  });

  it('cleared refs behave as unknown, and a second clear says so', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    const sref = srv.server.ref;
    const cref = conn.client.ref;
    expect(websocketServerClear({ ref: sref })).toEqual({});
    expect(websocketClientClear({ ref: cref })).toEqual({});
    expectUnknownServer(sref);
    await expectUnknownClient(cref);
  });
});

describe('wrong option types and ranges', () => {
  const serverCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['port "x"', { port: 'x' }, /^options\.port must be an integer between 0 and 65535$/],
    ['port 70000', { port: 70000 }, /^options\.port must be an integer between 0 and 65535$/],
    ['port -1', { port: -1 }, /^options\.port must be an integer between 0 and 65535$/],
    ['port 1.5', { port: 1.5 }, /^options\.port must be an integer between 0 and 65535$/],
    ['port NaN', { port: NaN }, /^options\.port must be an integer between 0 and 65535$/],
    ['host 1', { host: 1 }, /^options\.host must be a string$/],
    ['backlog "5"', { backlog: '5' }, /^options\.backlog must be an integer/],
    ['maxConnections -1', { maxConnections: -1 }, /^options\.maxConnections must be an integer between 1 and 2147483647$/],
    ['maxConnections 0', { maxConnections: 0 }, /^options\.maxConnections must be an integer between 1/],
    ['method 5', { method: 5 }, /^options\.method must be a function$/],
    ['method "cb"', { method: 'cb' }, /^options\.method must be a function$/],
    ['window bits 20', { perMessageDeflate: { serverMaxWindowBits: 20 } }, /^options\.perMessageDeflate\.serverMaxWindowBits must be an integer between 8 and 15$/],
    ['window bits 7', { perMessageDeflate: { clientMaxWindowBits: 7 } }, /^options\.perMessageDeflate\.clientMaxWindowBits must be an integer between 8 and 15$/],
    ['perMessageDeflate true', { perMessageDeflate: true }, /^options\.perMessageDeflate must be an object$/],
    ['disablePerMessageDeflate 1', { disablePerMessageDeflate: 1 }, /^options\.disablePerMessageDeflate must be a boolean$/],
    ['pingInterval "1"', { pingInterval: '1' }, /^options\.pingInterval must be an integer/],
    ['maxPayload 0', { maxPayload: 0 }, /^options\.maxPayload must be an integer between 1/],
    ['maxHeaderSize -5', { maxHeaderSize: -5 }, /^options\.maxHeaderSize must be an integer between 1/],
    ['sendHighWaterMark "big"', { sendHighWaterMark: 'big' }, /^options\.sendHighWaterMark must be an integer/],
    ['handshakeTimeout 0', { handshakeTimeout: 0 }, /^options\.handshakeTimeout must be a positive number of seconds$/],
    ['tls 5', { tls: 5 }, /^options\.tls must be an object$/],
  ];

  it.each(serverCases)('websocketServer with %s throws a TypeError naming it', (_n, opts, msg) => {
    expectTypeError(() => any(websocketServer)(opts), msg);
  });

  it.each(serverCases)('websocketServerStart with %s throws (as server.*) and leaves the server as it was', (_n, opts, msg) => {
    const s = newServer({ port: 0 });
    const serverMsg = new RegExp(msg.source.replace('^options', '^server'));
    expectTypeError(() => any(websocketServerStart)({ ref: s.ref, ...opts }), serverMsg);
    // Nothing of the bad object was applied: it still starts as configured.
    const st = websocketServerStart({ ref: s.ref });
    expect(st.success).toBe(true);
  });

  const clientCases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['url 5', { url: 5 }, /^options\.url must be a string$/],
    ['url {}', { url: {} }, /^options\.url must be a string$/],
    ['timeout -1', { timeout: -1 }, /^options\.timeout must be a positive number of seconds$/],
    ['timeout "20"', { timeout: '20' }, /^options\.timeout must be a positive number of seconds$/],
    ['enableAutomaticReconnection "yes"', { enableAutomaticReconnection: 'yes' }, /^options\.enableAutomaticReconnection must be a boolean$/],
    ['minWait -1', { minWaitBetweenReconnectionRetries: -1 }, /^options\.minWaitBetweenReconnectionRetries must be an integer/],
    ['headers "x"', { headers: 'x' }, /^options\.headers must be an object$/],
    ['header value 1', { headers: { 'X-A': 1 } }, /^options\.headers\.X-A must be a string$/],
    ['header with CRLF', { headers: { 'X-A': 'a\r\nX-Evil: 1' } }, /^options\.headers\.X-A must be a header name and value without CR or LF$/],
    ['window bits 20', { perMessageDeflate: { clientMaxWindowBits: 20 } }, /^options\.perMessageDeflate\.clientMaxWindowBits must be an integer between 8 and 15$/],
    ['method {}', { method: {} }, /^options\.method must be a function$/],
  ];

  it.each(clientCases)('websocketClient with %s throws a TypeError naming it', (_n, opts, msg) => {
    expectTypeError(() => any(websocketClient)(opts), msg);
  });

  it.each(clientCases)('websocketClientStart with %s throws (as client.*)', (_n, opts, msg) => {
    const c = newClient({ url: 'ws://127.0.0.1:1/' });
    const clientMsg = new RegExp(msg.source.replace('^options', '^client'));
    expectTypeError(() => any(websocketClientStart)({ ref: c.ref, ...opts }), clientMsg);
  });

  it('options that are not an object', () => {
    for (const o of ['x', 5, true]) {
      expectTypeError(() => any(websocketServer)(o), /^options must be an object$/);
      expectTypeError(() => any(websocketClient)(o), /^options must be an object$/);
    }
  });

  it('a url that is a string but not a ws url fails the start with a status', async () => {
    for (const url of ['nope', 'http://127.0.0.1:1/', 'ws://', '']) {
      const c = newClient({ url, enableAutomaticReconnection: false });
      const st = await websocketClientStart(c);
      expect(st.success).toBe(false);
      expect(st.errorStr).not.toBe('');
    }
  });

  it('server send options of the wrong type', async () => {
    const srv = startServer();
    expectTypeError(() => any(websocketServerSend)({ ref: srv.server.ref, clients: 'x' }, 'a'), /^server\.clients must be an array of client refs$/);
    expectTypeError(() => any(websocketServerSend)({ ref: srv.server.ref, clients: [1.5] }, 'a'), /^server\.clients must be an array of client refs$/);
    expectTypeError(() => any(websocketServerSend)({ ref: srv.server.ref, binary: 1 }, 'a'), /^server\.binary must be a boolean$/);
    // A target that is not a connection: a status, not an exception.
    expect(websocketServerSend({ ref: srv.server.ref, clients: [999] }, 'a')).toEqual([
      expect.objectContaining({ success: false, client: 999, message: expect.stringMatching(/Unknown client ref/) }),
    ]);
  });

  it('an option whose getter answers differently at each read is judged on one read', () => {
    // Found by test/api-fuzz: tls was read twice, and an undefined the second
    // time left the nested reader without an object ("Error: Invalid argument").
    for (const kind of ['server', 'client'] as const) {
      let reads = 0;
      const opts: Record<string, unknown> = kind === 'client' ? { url: 'ws://127.0.0.1:1/' } : { port: 0 };
      Object.defineProperty(opts, 'tls', { enumerable: true, configurable: true, get: () => (reads++ >= 2 ? undefined : {}) });
      const made = kind === 'client' ? websocketClient(opts) : websocketServer(opts);
      defer(() => (kind === 'client' ? websocketClientClear(made) : websocketServerClear(made)));
      expect(reads).toBe(2); // the presence check, then the value itself
      // Now a value that turns into a non-object: a TypeError for what was read.
      reads = 0;
      Object.defineProperty(opts, 'tls', { enumerable: true, get: () => (reads++ >= 1 ? 5 : {}) });
      expectTypeError(() => (kind === 'client' ? websocketClient(opts) : websocketServer(opts)), /^options\.tls must be an object$/);
    }
  });
});

describe('close codes an application may not send', () => {
  const CODE = /^code must be an integer in 1000-1003, 1007-1014 or 3000-4999 \(1004-1006, 1015 and 1016-2999 are reserved by RFC 6455/;
  // RFC 6455 §7.4: 1004 reserved, 1005/1006 never on the wire, 1015 TLS,
  // 1016-2999 the protocol's and extensions'; and what is no code at all.
  const refused: unknown[] = [1004, 1005, 1006, 1015, 1016, 1100, 1999, 2000, 2500, 2999, 999, 0, -1, 5000, 65535, 1000.5, NaN, Infinity, '1000', null, true];

  /** A raw peer connected to a server of ours; its server-side ref. */
  async function connected(srv: ReturnType<typeof startServer>): Promise<{ peer: RawPeer; conn: number }> {
    const seen = srv.events.of('open').length;
    const peer = await RawPeer.connect(srv.port);
    await peer.upgrade();
    const opens = await srv.events.waitCount((e) => e.type === 'open', seen + 1);
    return { peer, conn: opens[seen].client };
  }

  it('websocketServerCloseClient and WebSocketServer.close refuse them with a TypeError and send nothing', async () => {
    const srv = startServer();
    const { peer, conn } = await connected(srv);
    const cls = new WebSocketServer({ port: 0 });
    defer(() => cls.clear());
    for (const code of refused) {
      expectTypeError(() => any(binding.websocketServerCloseClient)({ ref: srv.server.ref }, conn, code), CODE);
      expectTypeError(() => any(binding.websocketServerCloseClient)({ ref: srv.server.ref }, conn, code, 'why'), CODE);
      expectTypeError(() => any(cls.close.bind(cls))(1, code, 'why'), CODE);
    }
    // Nothing reached the wire: the first frame the peer gets is this close.
    expect(binding.websocketServerCloseClient({ ref: srv.server.ref }, conn, 4000, 'now')).toBe(true);
    const { code, before } = await peer.readUntilClose();
    expect(before).toEqual([]);
    expect(code).toBe(4000);
  });

  it.each([1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999])('code %i is sent as given', async (want) => {
    const srv = startServer();
    const { peer, conn } = await connected(srv);
    expect(binding.websocketServerCloseClient({ ref: srv.server.ref }, conn, want, 'bye')).toBe(true);
    const { code, close } = await peer.readUntilClose();
    expect(code).toBe(want);
    expect(close.payload.subarray(2).toString()).toBe('bye');
  });
});

describe('the arguments beside the object', () => {
  const REF = /^ref must be an integer$/;
  const CLIENT = /^client must be an integer$/;

  it('setKeepAlive and bufferedAmount: ref and client must be integers; any other number is a ref not in use', async () => {
    const srv = startServer();
    const { conn } = await connectClient(srv);
    for (const bad of ['x', 1.5, NaN, Infinity, null, undefined, {}]) {
      expectTypeError(() => any(binding.setKeepAlive)(bad, true), REF);
      expectTypeError(() => any(binding.bufferedAmount)(bad), REF);
      expectTypeError(() => any(binding.bufferedAmount)(srv.server.ref, bad === undefined ? 'x' : bad), CLIENT);
    }
    expectTypeError(() => any(binding.setKeepAlive)(srv.server.ref, 1), /^keepAlive must be a boolean$/);
    for (const unknown of [0, 2 ** 31, -(2 ** 31), 2 ** 53]) {
      expect(binding.setKeepAlive(unknown, true)).toBe(false);
      expect(binding.bufferedAmount(unknown)).toBe(0);
    }
    expect(binding.setKeepAlive(srv.server.ref, true)).toBe(true);
    // Connection refs start at 1: 0, negatives and values beyond int range are none.
    for (const none of [0, -1, 2 ** 31, 2 ** 32 + conn]) expect(binding.bufferedAmount(srv.server.ref, none)).toBe(0);
    expect(binding.bufferedAmount(srv.server.ref, conn)).toBe(0);
  });

  it('websocketServerCloseClient: client an integer, reason a string of at most 123 bytes; an unknown client is false', async () => {
    const srv = startServer();
    const { events, conn } = await connectClient(srv);
    const close = any(binding.websocketServerCloseClient);
    const server = { ref: srv.server.ref };
    for (const bad of ['1', 1.5, NaN, null, undefined]) expectTypeError(() => close(server, bad), CLIENT);
    expectTypeError(() => close(server, conn, 1000, 5), /^reason must be a string$/);
    expectTypeError(() => close(server, conn, 1000, 'x'.repeat(124)), /^reason must be at most 123 bytes of UTF-8$/);
    expectTypeError(() => close(server, conn, 1000, 'é'.repeat(62)), /^reason must be at most 123 bytes of UTF-8$/);
    // The client is checked before the server is looked up.
    expectTypeError(() => close({ ref: -99 }, 'x'), CLIENT);
    expect(close({ ref: -99 }, conn)).toBe(false);
    for (const none of [0, -1, 2 ** 31, 2 ** 32 + conn]) expect(close(server, none)).toBe(false);
    expect(close(server, conn, 4001, 'x'.repeat(123))).toBe(true);
    const ev = await events.waitType('close');
    expect([ev.ctx.code, ev.ctx.reason]).toEqual([4001, 'x'.repeat(123)]);
  });

  it("a client send's binary must be a boolean, checked even for an unknown ref", () => {
    const c = newClient();
    expectTypeError(() => any(websocketClientSend)({ ref: c.ref, binary: 'no' }, 'a'), /^client\.binary must be a boolean$/);
    expectTypeError(() => any(websocketClientSend)({ ref: 99, binary: 0 }, 'a'), /^client\.binary must be a boolean$/);
    expectTypeError(() => any(websocketServerSend)({ ref: -99, binary: 0 }, 'a'), /^server\.binary must be a boolean$/);
    expect(websocketClientSend({ ref: c.ref, binary: undefined }, 'a')).toMatchObject({ success: false, message: 'Client is not started' });
  });
});

describe('data that is not a string or bytes', () => {
  const bad: Array<[string, unknown]> = [
    ['number', 42],
    ['object', { a: 1 }],
    ['null', null],
    ['undefined', undefined],
    ['array', [1, 2, 3]],
    ['boolean', true],
    ['symbol', Symbol('s')],
    ['function', () => 1],
  ];

  it.each(bad)('server send with a %s throws a TypeError naming data', async (_n, data) => {
    const srv = startServer();
    const conn = await connectClient(srv);
    expectTypeError(() => any(websocketServerSend)(srv.server, data), DATA);
    expectTypeError(() => any(websocketClientSend)(conn.client, data), DATA);
    // Even for an unknown ref the data is checked first.
    expectTypeError(() => any(websocketServerSend)({ ref: -99 }, data), DATA);
    expectTypeError(() => any(websocketClientSend)({ ref: 99 }, data), DATA);
    // Nothing was sent.
    await delay(50);
    expect(srv.events.of('message').length).toBe(0);
    expect(conn.events.of('message').length).toBe(0);
  });

  it('bytes sent as text (binary: false) must be UTF-8: a status says so', async () => {
    const srv = startServer();
    const conn = await connectClient(srv);
    const st = websocketClientSend({ ref: conn.client.ref, binary: false }, Buffer.from([0xff, 0xfe]));
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/UTF-8/);
    const [s] = websocketServerSend({ ref: srv.server.ref, binary: false }, Buffer.from([0xc3]));
    expect(s.success).toBe(false);
    expect(s.message).toMatch(/UTF-8/);
  });

  it('sending on a created but never started client, or a stopped one, is a status', async () => {
    const c = newClient({ url: 'ws://127.0.0.1:1/' });
    const st = websocketClientSend(c, 'x');
    expect(st.success).toBe(false);
    expect(st.message).toMatch(/not (started|connected)/i);
    const srv = startServer();
    const conn = await connectClient(srv);
    websocketClientStop(conn.client);
    const after = websocketClientSend(conn.client, 'x');
    expect(after.success).toBe(false);
    expect(after.message).toMatch(/not (started|connected)/i);
  });
});

// The throwing method runs in a child process: an uncaught exception there is
// the point, and this runner must not see it as its own.
const throwingScript = `
const b = (process.env.IXWS_BINARY ? require(require('path').resolve(process.env.IXWS_BINARY)) : require('node-gyp-build')(${JSON.stringify(root)}));
const mode = process.argv[1];
const got = [];
const uncaught = [];
if (mode === 'handled') process.on('uncaughtException', (e) => uncaught.push(e.message));
const s = b.websocketServer({ port: 0, method: (srv, conn, type, ctx) => {
  if (type !== 'message') return;
  got.push(ctx.data);
  if (ctx.data.startsWith('boom')) throw new Error('thrown by method: ' + ctx.data);
  if (ctx.data === 'last') {
    console.log(JSON.stringify({ got, uncaught }));
    b.websocketServerClear(s);
    b.websocketClientClear(c);
  }
}});
const st = b.websocketServerStart(s);
const c = b.websocketClient({ url: 'ws://127.0.0.1:' + st.port + '/', enableAutomaticReconnection: false,
  method: (srv, conn, type) => {
    if (type !== 'open') return;
    for (const m of ['a', 'boom1', 'b', 'boom2', 'c']) b.websocketClientSend(c, m);
    // A later batch too: the engine keeps running after the throws.
    setTimeout(() => { b.websocketClientSend(c, 'd'); b.websocketClientSend(c, 'last'); }, 100);
  } });
b.websocketClientStart(c);
setTimeout(() => { console.log('timeout'); process.exit(3); }, 10000).unref();
`;

describe('a method that throws', () => {
  it('surfaces as an uncaughtException and the engine keeps delivering', () => {
    const r = spawnSync(process.execPath, ['-e', throwingScript, 'handled'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.got).toEqual(['a', 'boom1', 'b', 'boom2', 'c', 'd', 'last']);
    expect(out.uncaught).toEqual(['thrown by method: boom1', 'thrown by method: boom2']);
  });

  it('without a handler it ends the process like any uncaught error in an event handler', () => {
    const r = spawnSync(process.execPath, ['-e', throwingScript, 'unhandled'], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/Error: thrown by method: boom1/);
    expect(r.stdout).not.toMatch(/"got"/);
  });
});

describe('re-entrancy: commands from inside method', () => {
  it('send from inside a message callback (server echo, client ping-pong)', async () => {
    const rounds = 200;
    let serverRef = 0;
    const echo: EventMethod = (_s, conn, type, ctx) => {
      if (type === 'message') {
        const [st] = websocketServerSend({ ref: serverRef, clients: [conn] }, ctx.data);
        if (!st.success) throw new Error(`echo failed: ${st.message}`);
      }
    };
    const srv = startServer({ method: echo });
    serverRef = srv.server.ref;
    const got: string[] = [];
    let clientRef = 0;
    const events = new Collector();
    const c = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      method: (...a) => {
        events.method(...a);
        const [, , type, ctx] = a;
        if (type === 'open') websocketClientSend({ ref: clientRef }, '0');
        if (type === 'message') {
          got.push(ctx.data);
          const n = Number(ctx.data);
          if (n + 1 < rounds) websocketClientSend({ ref: clientRef }, String(n + 1));
        }
      },
    });
    clientRef = c.ref;
    expect((await websocketClientStart(c)).success).toBe(true);
    await until(() => (got.length >= rounds ? true : undefined), 10_000, `${rounds} echoes (got ${got.length})`);
    expect(got).toEqual(Array.from({ length: rounds }, (_, i) => String(i)));
  });

  it('websocketServerClear of the server whose message is being delivered', async () => {
    const seen: string[] = [];
    let sref = 0;
    let clearResult: unknown;
    const col = new Collector();
    const srv = startServer({
      method: (...a) => {
        col.method(...a);
        const [, , type, ctx] = a;
        seen.push(type === 'message' ? `message:${ctx.data}` : type);
        if (type === 'message' && ctx.data === '3') clearResult = websocketServerClear({ ref: sref });
      },
    });
    // connectClient waits for the server's open through srv.events.
    (srv as { events: Collector }).events = col;
    sref = srv.server.ref;
    const conn = await connectClient(srv);
    // One burst: the later messages are in the same delivery batch as '3'.
    for (let i = 1; i <= 50; i++) websocketClientSend(conn.client, String(i));
    await conn.events.waitType('close', undefined, 5000);
    expect(clearResult).toEqual({});
    expect(seen).toEqual(['open', 'message:1', 'message:2', 'message:3']);
    // The ref is free again (the lowest free server ref is reused) and unknown meanwhile.
    expect((websocketServerStart({ ref: sref }) as any).message).toBe(`Unknown server ref ${sref}`);
    const next = newServer();
    expect(next.ref).toBe(sref);
  });

  it('websocketClientClear of the client whose message is being delivered', async () => {
    const srv = startServer();
    const seen: string[] = [];
    let cref = 0;
    let clearResult: unknown;
    const c = websocketClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      method: (_s, _c, type, ctx) => {
        seen.push(type === 'message' ? `message:${ctx.data}` : type);
        if (type === 'message' && ctx.data === '2') clearResult = websocketClientClear({ ref: cref });
      },
    });
    cref = c.ref;
    defer(() => websocketClientClear({ ref: cref }));
    expect((await websocketClientStart(c)).success).toBe(true);
    const open = await srv.events.waitType('open');
    for (let i = 1; i <= 20; i++) websocketServerSend({ ref: srv.server.ref, clients: [open.client] }, String(i));
    await srv.events.waitType('close', open.client, 5000);
    await delay(50);
    expect(clearResult).toEqual({});
    expect(seen).toEqual(['open', 'message:1', 'message:2']);
    expect(websocketClientSend({ ref: cref }, 'x').message).toBe(`Unknown client ref ${cref}`);
    // Its ref is the lowest free one again.
    const again = newClient();
    expect(again.ref).toBe(cref);
  });

  it('clear of the client inside its own open event settles its pending start', async () => {
    const srv = startServer();
    let cref = 0;
    const c = websocketClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      method: (_s, _c, type) => {
        if (type === 'open') websocketClientClear({ ref: cref });
      },
    });
    cref = c.ref;
    defer(() => websocketClientClear({ ref: cref }));
    const st = await Promise.race([websocketClientStart(c), delay(5000).then(() => 'hung' as const)]);
    expect(st).not.toBe('hung');
    expect(websocketClientClear({ ref: cref })).toEqual({ success: false, message: `Unknown client ref ${cref}` });
  });

  it('stop, start, create and clear other objects from inside callbacks', async () => {
    const srv = startServer();
    const other = startServer();
    const made: number[] = [];
    let cref = 0;
    const c = newClient({
      url: `ws://127.0.0.1:${srv.port}/`,
      enableAutomaticReconnection: false,
      method: (_s, _c, type) => {
        if (type !== 'open') return;
        // Another server, created and cleared right here, and another client created.
        const s2 = websocketServer({ port: 0 });
        made.push(s2.ref);
        expect(websocketServerStart(s2).success).toBe(true);
        expect(websocketServerClear(s2)).toEqual({});
        const c2 = websocketClient({ url: `ws://127.0.0.1:${other.port}/`, enableAutomaticReconnection: false });
        made.push(c2.ref);
        defer(() => websocketClientClear(c2));
        void websocketClientStart(c2);
        // Stop the unrelated server and our own client.
        websocketServerStop(other.server);
        websocketClientStop({ ref: cref });
      },
    });
    cref = c.ref;
    expect((await websocketClientStart(c)).success).toBe(true);
    await until(() => (made.length === 2 ? true : undefined), 5000, 'callback ran');
    const close = await srv.events.waitType('close', undefined, 5000);
    expect(close.ctx.code).toBe(1000);
    expect(made[0]).toBeLessThan(0);
    expect(made[1]).toBeGreaterThan(0);
    // The stopped server can start again.
    expect(websocketServerStart(other.server).success).toBe(true);
  });
});

// A send opens its send scope by calling the `then` of a resolved promise,
// taken from Promise.prototype at the first send. An application (or an APM
// agent) that replaced Promise.prototype.then before that runs its own code
// there, in the middle of the send, and that code may clear the very server
// or client being sent on. The send must then answer as for an unknown ref;
// it used to go on with the freed entry (heap-use-after-free under ASan in
// all four sends; on the plain build, statuses read from freed memory).
const replacedThenScript = `
const b = (process.env.IXWS_BINARY ? require(require('path').resolve(process.env.IXWS_BINARY)) : require('node-gyp-build')(${JSON.stringify(root)}));
const mode = process.argv[1];
const orig = Promise.prototype.then;
let armed = null;
Promise.prototype.then = function (...a) {
  if (armed) {
    const clear = armed;
    armed = null;
    clear();
    // Reuse what the clear freed.
    for (let i = 0; i < 20; i++) b.websocketServerClear(b.websocketServer({ port: 0 }));
  }
  return orig.apply(this, a);
};
let conn = 0;
const s = b.websocketServer({ port: 0, method: (srv, c, type) => { if (type === 'open') conn = c; } });
const st = b.websocketServerStart(s);
const c = b.websocketClient({ url: 'ws://127.0.0.1:' + st.port + '/', enableAutomaticReconnection: false, method: () => {} });
b.websocketClientStart(c);
const wait = setInterval(() => {
  if (!conn) return;
  clearInterval(wait);
  // From a timer: outside event delivery, so the send opens a scope of its own.
  armed = mode === 'client' ? () => b.websocketClientClear(c) : () => b.websocketServerClear(s);
  let r;
  if (mode === 'sendTo') r = b.websocketServerSendTo(s.ref, conn, undefined, 'x', new Float64Array(5));
  else if (mode === 'publish') r = b.websocketServerPublish({ ref: s.ref, topic: 't' }, 'x');
  else if (mode === 'client') r = b.websocketClientSend(c, 'x');
  else r = b.websocketServerSend({ ref: s.ref, clients: [conn] }, 'x');
  console.log(JSON.stringify({ r, thenRan: armed === null }));
  b.websocketClientClear(c);
  b.websocketServerClear(s);
}, 10);
setTimeout(() => { console.log('timeout'); process.exit(3); }, 10000).unref();
`;

describe('a replaced Promise.prototype.then that clears during a send', () => {
  const cases: [string, unknown][] = [
    ['send', []],
    // null: the facade's general path answers (the unknown ref's statuses)
    ['sendTo', null],
    ['publish', expect.objectContaining({ success: false, message: 'Unknown server ref -1', sent: 0 })],
    ['client', expect.objectContaining({ success: false, message: 'Unknown client ref 1', payloadSize: 0 })],
  ];
  for (const [mode, want] of cases) {
    it(`${mode}: answers as for an unknown ref, reads nothing freed`, () => {
      const r = spawnSync(process.execPath, ['-e', replacedThenScript, mode], { encoding: 'utf8', timeout: 20_000 });
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out.thenRan).toBe(true);
      expect(out.r).toEqual(want);
    });
  }
});
