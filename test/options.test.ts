// The options of websocketServer / websocketClient and of the commands'
// objects, option by option: the exact shape of the objects (keys in order,
// the engine's defaults), each option's accepted range (both ends kept, one
// step past either end a TypeError naming the option), its round trip through
// creation and through a command, options of the other side left alone, the
// nested perMessageDeflate and tls objects (partial updates, tls written back
// as given, null turning it off), and an update that fails changing nothing.
import { afterEach, describe, expect, test } from 'vitest';
import {
  websocketClient,
  websocketClientClear,
  websocketClientStop,
  websocketServer,
  websocketServerClear,
  websocketServerStop,
} from '../lib/index';
import type { ClientObject, ServerObject } from '../lib/index';
import { defer, newClient, newServer, runCleanup } from './support';

afterEach(runCleanup);

// Untyped handles, to pass what TypeScript would refuse.
const anyServer = websocketServer as (o?: unknown) => ServerObject;
const anyClient = websocketClient as (o?: unknown) => ClientObject;
const anyServerStop = websocketServerStop as unknown as (o: unknown) => Record<string, unknown>;
const anyClientStop = websocketClientStop as unknown as (o: unknown) => Record<string, unknown>;

function typeError(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TypeError);
    return (e as Error).message;
  }
  throw new Error('no TypeError');
}

const MAX_INT = 2147483647;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const fmt = (n: number) => (n === MAX_SAFE ? '2^53-1' : String(n));

// inlineLoop defaults to false, or to true when the suite runs with IXWS_INLINE=1.
const INLINE_DEFAULT = process.env.IXWS_INLINE === '1' || process.env.IXWS_INLINE === 'true';

const DEFLATE_DEFAULT = {
  enabled: true,
  clientNoContextTakeover: false,
  serverNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
  threshold: 1024,
};

describe('the objects as created', () => {
  test('a server: every option with its default, in this order, then ref', () => {
    const s = newServer();
    expect(JSON.stringify(s)).toBe(
      JSON.stringify({
        port: 8080,
        host: '127.0.0.1',
        backlog: 511,
        noServer: false,
        maxConnections: 128,
        maxHandshakes: 512,
        maxConnectionsPerAddress: 0,
        maxUnfinishedBytes: 256 * 1024 * 1024,
        firstByteTimeout: 5,
        allowedOrigins: [],
        reusePort: false,
        pingInterval: -1,
        pingTimeout: -1,
        enablePong: true,
        protocols: [],
        inlineLoop: INLINE_DEFAULT,
        borrowedPayloads: false,
        perMessageDeflate: DEFLATE_DEFAULT,
        disablePerMessageDeflate: false,
        maxPayload: 100 * 1024 * 1024,
        maxHeaderSize: 16384,
        maxHeaders: 100,
        handshakeTimeout: 10,
        sendHighWaterMark: 128 * 1024 * 1024,
        ref: s.ref,
      }),
    );
  });

  test('a client: every option with its default, in this order, then ref', () => {
    const c = newClient();
    expect(JSON.stringify(c)).toBe(
      JSON.stringify({
        url: '',
        pingInterval: -1,
        pingTimeout: -1,
        enablePong: true,
        enableAutomaticReconnection: true,
        minWaitBetweenReconnectionRetries: 1,
        maxWaitBetweenReconnectionRetries: 10000,
        reconnectionJitter: 0,
        timeout: 20,
        headers: {},
        protocols: [],
        followRedirects: false,
        maxRedirects: 10,
        proxy: '',
        inlineLoop: INLINE_DEFAULT,
        borrowedPayloads: false,
        perMessageDeflate: DEFLATE_DEFAULT,
        disablePerMessageDeflate: false,
        maxPayload: 100 * 1024 * 1024,
        maxHeaderSize: 16384,
        maxHeaders: 100,
        sendHighWaterMark: 128 * 1024 * 1024,
        ref: c.ref,
      }),
    );
  });

  test('tls (as given) after the options, then ref, then the values given for method, worker, window, process', () => {
    const method = () => {};
    const s = newServer({ tls: { verifyPeer: true, cert: 'C' }, method, worker: 1, window: null, process: 'p' });
    const keys = Object.keys(s);
    expect(keys.slice(keys.indexOf('sendHighWaterMark'))).toEqual([
      'sendHighWaterMark', 'tls', 'ref', 'method', 'worker', 'window', 'process',
    ]);
    // The tls fields in table order (strings first), only those given.
    expect(JSON.stringify(s.tls)).toBe('{"cert":"C","verifyPeer":true}');
    expect(s.method).toBe(method);

    const c = newClient({ tls: {}, window: 0, worker: undefined });
    expect(Object.keys(c).slice(-3)).toEqual(['tls', 'ref', 'window']);
    expect(c.tls).toEqual({});
  });
});

type Side = 'server' | 'client';
interface IntCase {
  path: string[];
  sides: Side[];
  lo: number;
  hi: number;
}

const BOTH: Side[] = ['server', 'client'];
const INTS: IntCase[] = [
  { path: ['port'], sides: ['server'], lo: 0, hi: 65535 },
  { path: ['backlog'], sides: ['server'], lo: 0, hi: MAX_INT },
  { path: ['maxConnections'], sides: ['server'], lo: 1, hi: MAX_INT },
  { path: ['maxHandshakes'], sides: ['server'], lo: 1, hi: MAX_INT },
  { path: ['maxConnectionsPerAddress'], sides: ['server'], lo: 0, hi: MAX_INT },
  { path: ['maxUnfinishedBytes'], sides: ['server'], lo: 0, hi: MAX_SAFE },
  { path: ['pingInterval'], sides: BOTH, lo: -1, hi: MAX_INT },
  { path: ['pingTimeout'], sides: BOTH, lo: -1, hi: MAX_INT },
  { path: ['maxPayload'], sides: BOTH, lo: 1, hi: MAX_SAFE },
  { path: ['maxHeaderSize'], sides: BOTH, lo: 1, hi: MAX_INT },
  { path: ['maxHeaders'], sides: BOTH, lo: 1, hi: MAX_INT },
  { path: ['sendHighWaterMark'], sides: BOTH, lo: 1, hi: MAX_SAFE },
  { path: ['minWaitBetweenReconnectionRetries'], sides: ['client'], lo: 0, hi: 4294967295 },
  { path: ['maxWaitBetweenReconnectionRetries'], sides: ['client'], lo: 0, hi: 4294967295 },
  { path: ['maxRedirects'], sides: ['client'], lo: 0, hi: MAX_INT },
  { path: ['perMessageDeflate', 'serverMaxWindowBits'], sides: BOTH, lo: 8, hi: 15 },
  { path: ['perMessageDeflate', 'clientMaxWindowBits'], sides: BOTH, lo: 8, hi: 15 },
  { path: ['perMessageDeflate', 'threshold'], sides: BOTH, lo: 0, hi: MAX_SAFE },
];

const SECONDS: Array<{ name: string; sides: Side[]; zeroOff: boolean }> = [
  { name: 'handshakeTimeout', sides: ['server'], zeroOff: false },
  { name: 'firstByteTimeout', sides: ['server'], zeroOff: true },
  { name: 'timeout', sides: ['client'], zeroOff: false },
];

const BOOLS: Array<{ path: string[]; sides: Side[] }> = [
  { path: ['enablePong'], sides: BOTH },
  { path: ['disablePerMessageDeflate'], sides: BOTH },
  { path: ['enableAutomaticReconnection'], sides: ['client'] },
  { path: ['reusePort'], sides: ['server'] },
  { path: ['noServer'], sides: ['server'] },
  { path: ['followRedirects'], sides: ['client'] },
  { path: ['perMessageDeflate', 'enabled'], sides: BOTH },
  { path: ['perMessageDeflate', 'clientNoContextTakeover'], sides: BOTH },
  { path: ['perMessageDeflate', 'serverNoContextTakeover'], sides: BOTH },
  { path: ['tls', 'verifyPeer'], sides: BOTH },
  { path: ['tls', 'disableHostnameValidation'], sides: BOTH },
];

const STRINGS: Array<{ path: string[]; sides: Side[] }> = [
  { path: ['host'], sides: ['server'] },
  { path: ['url'], sides: ['client'] },
  ...['cert', 'key', 'ca', 'certFile', 'keyFile', 'caFile', 'ciphers', 'servername', 'passphrase'].map((k) => ({
    path: ['tls', k],
    sides: BOTH,
  })),
];

/** { a: { b: v } } for path [a, b]. */
function nest(path: string[], v: unknown): Record<string, unknown> {
  return path.reduceRight<unknown>((inner, k) => ({ [k]: inner }), v) as Record<string, unknown>;
}
function dig(o: unknown, path: string[]): unknown {
  return path.reduce<unknown>((x, k) => (x as Record<string, unknown>)[k], o);
}

const create = (side: Side) => (side === 'server' ? anyServer : anyClient);
const stop = (side: Side) => (side === 'server' ? anyServerStop : anyClientStop);

/** Created through the facade and cleared after the test. */
function made(side: Side, options: unknown): Record<string, unknown> {
  const o = create(side)(options) as unknown as Record<string, unknown>;
  const ref = o.ref as number;
  defer(() => (side === 'server' ? websocketServerClear({ ref }) : websocketClientClear({ ref })));
  return o;
}

describe('integer options: both ends accepted, one step beyond either a TypeError naming the option', () => {
  for (const c of INTS) {
    for (const side of c.sides) {
      const name = c.path.join('.');
      test(`${side} ${name} in ${fmt(c.lo)}..${fmt(c.hi)}`, () => {
        const msg = `options.${name} must be an integer between ${fmt(c.lo)} and ${fmt(c.hi)}`;
        for (const v of [c.lo, c.hi]) expect(dig(made(side, nest(c.path, v)), c.path)).toBe(v);
        for (const bad of [c.lo - 1, c.hi + (c.hi === MAX_SAFE ? 2 : 1), c.lo + 0.5, String(c.lo), NaN, Infinity]) {
          expect(typeError(() => create(side)(nest(c.path, bad)))).toBe(msg);
        }
        // Through a command: named after the command's argument, applied to the object.
        const o = made(side, {});
        const v = c.lo === c.hi ? c.lo : c.lo + 1;
        expect(dig(stop(side)({ ref: o.ref, ...nest(c.path, v) }), c.path)).toBe(v);
        expect(typeError(() => stop(side)({ ref: o.ref, ...nest(c.path, c.lo - 1) }))).toBe(
          `${side}.${name} must be an integer between ${fmt(c.lo)} and ${fmt(c.hi)}`,
        );
      });
    }
  }
});

describe('seconds', () => {
  for (const c of SECONDS) {
    for (const side of c.sides) {
      test(`${side} ${c.name}${c.zeroOff ? ' (0: off)' : ''}`, () => {
        const msg = c.zeroOff
          ? `options.${c.name} must be a number of seconds (0 or more)`
          : `options.${c.name} must be a positive number of seconds`;
        for (const v of [0.25, 3600]) expect(made(side, { [c.name]: v })[c.name]).toBe(v);
        if (c.zeroOff) expect(made(side, { [c.name]: 0 })[c.name]).toBe(0);
        else expect(typeError(() => create(side)({ [c.name]: 0 }))).toBe(msg);
        for (const bad of [-1, Infinity, NaN, '1', true]) expect(typeError(() => create(side)({ [c.name]: bad }))).toBe(msg);
      });
    }
  }
});

describe('fractions', () => {
  test('client reconnectionJitter: 0..1 kept as given; anything else a TypeError naming it', () => {
    const msg = 'options.reconnectionJitter must be a number from 0 to 1';
    for (const v of [0, 0.5, 1, 1e-9]) expect(made('client', { reconnectionJitter: v }).reconnectionJitter).toBe(v);
    for (const bad of [-0.01, 1.01, NaN, Infinity, '0.5', true, null]) {
      expect(typeError(() => create('client')({ reconnectionJitter: bad }))).toBe(msg);
    }
    const o = made('client', {});
    expect(stop('client')({ ref: o.ref, reconnectionJitter: 0.3 }).reconnectionJitter).toBe(0.3);
    expect(typeError(() => stop('client')({ ref: o.ref, reconnectionJitter: 2 }))).toBe(
      'client.reconnectionJitter must be a number from 0 to 1',
    );
  });
});

describe('booleans and strings', () => {
  for (const c of BOOLS) {
    for (const side of c.sides) {
      const name = c.path.join('.');
      test(`${side} ${name}`, () => {
        for (const v of [true, false]) expect(dig(made(side, nest(c.path, v)), c.path)).toBe(v);
        for (const bad of [1, 'true', null]) {
          expect(typeError(() => create(side)(nest(c.path, bad)))).toBe(`options.${name} must be a boolean`);
        }
      });
    }
  }
  for (const c of STRINGS) {
    for (const side of c.sides) {
      const name = c.path.join('.');
      test(`${side} ${name}`, () => {
        expect(dig(made(side, nest(c.path, 'é x')), c.path)).toBe('é x');
        for (const bad of [1, true, {}]) {
          expect(typeError(() => create(side)(nest(c.path, bad)))).toBe(`options.${name} must be a string`);
        }
      });
    }
  }
});

describe('objects and the event values', () => {
  test('perMessageDeflate and tls must be plain objects; method a function (or null)', () => {
    for (const side of BOTH) {
      for (const key of ['perMessageDeflate', 'tls']) {
        for (const bad of [1, 'x', [], () => {}]) {
          expect(typeError(() => create(side)({ [key]: bad }))).toBe(`options.${key} must be an object`);
        }
      }
      for (const bad of [1, 'x', {}]) expect(typeError(() => create(side)({ method: bad }))).toBe('options.method must be a function');
      expect(made(side, { method: null }).method).toBe(null);
    }
  });

  test('client headers: strings without CR, LF, NUL; names without colon or space', () => {
    expect(made('client', { headers: { 'X-A': 'b c', y: '' } }).headers).toEqual({ 'X-A': 'b c', y: '' });
    expect(typeError(() => anyClient({ headers: 1 }))).toBe('options.headers must be an object');
    expect(typeError(() => anyClient({ headers: { a: 1 } }))).toBe('options.headers.a must be a string');
    for (const [k, v] of [['a b', 'x'], ['a:', 'x'], ['a', 'x\r\ny: z'], ['a', 'x\0']]) {
      expect(typeError(() => anyClient({ headers: { [k]: v } }))).toBe(
        `options.headers.${k} must be a header name and value without CR or LF`,
      );
    }
    // What the client writes itself would go out twice (two versions read "13, 13": 426).
    for (const k of ['Upgrade', 'connection', 'Sec-WebSocket-Key', 'SEC-WEBSOCKET-VERSION']) {
      expect(typeError(() => anyClient({ headers: { [k]: 'x' } }))).toBe(`options.headers.${k} is written by ix-websocket itself`);
    }
    expect(typeError(() => anyClient({ headers: { 'Sec-WebSocket-Protocol': 'chat' } }))).toBe(
      'options.headers.Sec-WebSocket-Protocol is written by ix-websocket itself: offer subprotocols with protocols',
    );
    expect(typeError(() => anyClient({ headers: { 'sec-websocket-extensions': 'permessage-deflate' } }))).toBe(
      'options.headers.sec-websocket-extensions is written by ix-websocket itself: permessage-deflate is negotiated from perMessageDeflate',
    );
    // Host and User-Agent replace the client's own.
    expect(made('client', { headers: { Host: 'virtual.example', 'User-Agent': 'probe/1' } }).headers).toEqual({
      Host: 'virtual.example',
      'User-Agent': 'probe/1',
    });
  });

  test("options of the other side are neither read nor written", () => {
    const s = made('server', {
      url: 5, headers: 5, timeout: 'x', enableAutomaticReconnection: 5,
      minWaitBetweenReconnectionRetries: -1, maxWaitBetweenReconnectionRetries: -1, reconnectionJitter: 5,
    });
    for (const k of ['url', 'headers', 'timeout', 'enableAutomaticReconnection', 'minWaitBetweenReconnectionRetries', 'reconnectionJitter']) {
      expect(k in s).toBe(false);
    }
    const c = made('client', {
      port: 'x', host: 5, backlog: -1, maxConnections: 0, maxHandshakes: 0, maxConnectionsPerAddress: -1,
      maxUnfinishedBytes: -1, handshakeTimeout: 0, firstByteTimeout: -1, allowedOrigins: 5, verifyClient: 5,
    });
    for (const k of ['port', 'host', 'backlog', 'maxConnections', 'maxHandshakes', 'maxConnectionsPerAddress', 'maxUnfinishedBytes', 'handshakeTimeout', 'firstByteTimeout', 'allowedOrigins', 'verifyClient']) {
      expect(k in c).toBe(false);
    }
  });
});

describe('updates', () => {
  test('perMessageDeflate: the fields given change, the others stay', () => {
    for (const side of BOTH) {
      const o = made(side, { perMessageDeflate: { threshold: 7, clientNoContextTakeover: true } });
      const u = stop(side)({ ref: o.ref, perMessageDeflate: { serverMaxWindowBits: 9 } });
      expect(u.perMessageDeflate).toEqual({ ...DEFLATE_DEFAULT, threshold: 7, clientNoContextTakeover: true, serverMaxWindowBits: 9 });
    }
  });

  test('tls: fields add up over updates; null turns it off and drops it from the object', () => {
    for (const side of BOTH) {
      const o = made(side, { tls: { ca: 'A' } });
      expect(stop(side)({ ref: o.ref, tls: { verifyPeer: false } }).tls).toEqual({ ca: 'A', verifyPeer: false });
      const off = stop(side)({ ref: o.ref, tls: null });
      expect('tls' in off).toBe(false);
    }
  });

  test('an update with one bad option changes nothing, nested ones included', () => {
    const s = made('server', { port: 1 });
    expect(typeError(() => anyServerStop({ ref: s.ref, port: 2, backlog: 3, perMessageDeflate: { threshold: -1 } }))).toBe(
      'server.perMessageDeflate.threshold must be an integer between 0 and 2^53-1',
    );
    const after = anyServerStop({ ref: s.ref });
    expect([after.port, after.backlog, (after.perMessageDeflate as { threshold: number }).threshold]).toEqual([1, 511, 1024]);
    const c = made('client', { url: 'ws://a/' });
    expect(typeError(() => anyClientStop({ ref: c.ref, url: 'ws://b/', tls: { ca: 'A', verifyPeer: 1 } }))).toBe(
      'client.tls.verifyPeer must be a boolean',
    );
    const cafter = anyClientStop({ ref: c.ref });
    expect([cafter.url, 'tls' in cafter]).toEqual(['ws://a/', false]);
  });

  test('undefined leaves an option as it was', () => {
    const s = made('server', { port: 3, tls: { cert: 'C' } });
    const u = anyServerStop({ ref: s.ref, port: undefined, tls: undefined, perMessageDeflate: { threshold: undefined } });
    expect(u.port).toBe(3);
    expect(u.tls).toEqual({ cert: 'C' });
    expect((u.perMessageDeflate as { threshold: number }).threshold).toBe(1024);
  });
});
