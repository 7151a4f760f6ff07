// Subprotocols (RFC 6455 §1.9, §4.1, §4.2.2) and what the open context says
// about the peer, against peers nobody here wrote: `ws`, Node's own
// WebSocket (undici, Node 20 --experimental-websocket, in a child process),
// Python `websockets` and headless Chromium, in both directions where the
// peer has both sides. Our server answers the first protocol of the
// client's offer that it speaks, none when nothing matches; our client fails
// a 101 naming a protocol it did not offer (test/conformance 14.x too).
import { spawn } from 'child_process';
import type { AddressInfo } from 'net';
import * as path from 'path';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocketClient, WebSocketServer, websocketClient, websocketClientStart, websocketServer } from '../lib/index';
import type { ServerOptions } from '../lib/index';
import { Collector, defer, newClient, runCleanup, startEchoServer, until } from './support';
import { runPage, servePage } from './support/browser';
import { describeWithPeers, peerEnv, peers } from './support/peers';

afterEach(runCleanup);

const PEERS = path.join(__dirname, 'peers');

const echoServer = (options: ServerOptions) => startEchoServer(options);

async function ourClient(url: string, protocols?: string[]) {
  const events = new Collector();
  const c = newClient({ url, enableAutomaticReconnection: false, method: events.method, ...(protocols ? { protocols } : {}) });
  const st = await websocketClientStart({ ref: c.ref, timeout: 10 });
  return { c, events, st };
}

/** A child process whose stdout lines are kept; killed after the test. */
function spawnLines(exe: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  const p = spawn(exe, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...peerEnv(), ...extraEnv } });
  const lines: string[] = [];
  let partial = '';
  let stderr = '';
  p.stdout!.setEncoding('utf8');
  p.stdout!.on('data', (d: string) => {
    const parts = (partial + d).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
  });
  p.stderr!.setEncoding('utf8');
  p.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r((code = c))));
  defer(async () => {
    if (code === undefined && p.pid !== undefined) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    }
  });
  const waitLine = (re: RegExp, timeoutMs: number) =>
    until(
      () => {
        const l = lines.find((x) => re.test(x));
        if (l === undefined && code !== undefined) throw new Error(`${path.basename(args[0] ?? exe)} exited (${code}) before ${re}: ${stderr}`);
        return l;
      },
      timeoutMs,
      `${re} (stdout: ${lines.join(' | ')}; stderr: ${stderr})`,
    );
  return { lines, exited, waitLine, stderr: () => stderr };
}

describe('options', () => {
  test('protocols must be an array of distinct RFC 7230 tokens (TypeError naming the option)', () => {
    expect(() => websocketServer({ protocols: ['chat', 'a b'] })).toThrow(/^options\.protocols\[1\] must be subprotocol tokens \(got "a b"\)$/);
    expect(() => websocketServer({ protocols: 'chat' as never })).toThrow(TypeError);
    expect(() => websocketServer({ protocols: 'chat' as never })).toThrow(/options\.protocols must be an array/);
    expect(() => websocketClient({ protocols: [''] })).toThrow(/options\.protocols\[0\]/);
    expect(() => websocketClient({ protocols: ['a', 'a'] })).toThrow(/options\.protocols\[1\]/);
    expect(() => websocketClient({ protocols: ['x,y'] })).toThrow(/options\.protocols\[0\]/);
    expect(() => websocketClient({ protocols: ['é'] })).toThrow(/options\.protocols\[0\]/);
    expect(() => websocketClient({ protocols: [1 as never] })).toThrow(/options\.protocols\[0\] must be a string/);
    // valid ones are kept and written back
    const s = websocketServer({ protocols: ['graphql-transport-ws', 'mqtt', 'v1.stomp'] });
    expect(s.protocols).toEqual(['graphql-transport-ws', 'mqtt', 'v1.stomp']);
    const c = websocketClient({ protocols: ['wamp.2.json'] });
    expect(c.protocols).toEqual(['wamp.2.json']);
    // the class API reads the same options
    expect(() => new WebSocketClient({ url: 'ws://127.0.0.1:1/', protocols: ['bad token'] })).toThrow(TypeError);
    expect(() => new WebSocketServer({ protocols: ['{x}'] })).toThrow(/options\.protocols\[0\]/);
  });
});

describe('our client ↔ our server', () => {
  test('the first protocol of the client offer that the server speaks, in the start status and both open contexts', async () => {
    const srv = echoServer({ protocols: ['mqtt', 'graphql-transport-ws'] });
    const { events, st } = await ourClient(`ws://127.0.0.1:${srv.port}/g`, ['graphql-transport-ws', 'mqtt']);
    expect(st).toMatchObject({ success: true, protocol: 'graphql-transport-ws' });
    expect(st.headers['Sec-WebSocket-Protocol']).toBe('graphql-transport-ws');
    const copen = await events.waitType('open');
    const sopen = await srv.events.waitType('open');
    expect(copen.ctx.protocol).toBe('graphql-transport-ws');
    expect(sopen.ctx.protocol).toBe('graphql-transport-ws');
    expect(sopen.ctx.headers['Sec-WebSocket-Protocol']).toBe('graphql-transport-ws, mqtt');
    // peer identity on both sides: each sees the other's end of the socket
    expect(sopen.ctx.remoteAddress).toBe('127.0.0.1');
    expect(copen.ctx.remoteAddress).toBe('127.0.0.1');
    expect(copen.ctx.remotePort).toBe(srv.port);
    expect(sopen.ctx.remotePort).toBeGreaterThan(0);
    expect(sopen.ctx.remotePort).not.toBe(srv.port);
    // deflate was agreed (both default on)
    expect(copen.ctx.extensions).toMatch(/^permessage-deflate/);
    expect(sopen.ctx.extensions).toMatch(/^permessage-deflate/);
  });

  test('no match, no offer, no server list: protocol "" everywhere, the connection opens', async () => {
    const srv = echoServer({ protocols: ['mqtt'], disablePerMessageDeflate: true });
    const a = await ourClient(`ws://127.0.0.1:${srv.port}/`, ['stomp']);
    expect(a.st).toMatchObject({ success: true, protocol: '' });
    expect(a.st.headers['Sec-WebSocket-Protocol']).toBeUndefined();
    const b = await ourClient(`ws://127.0.0.1:${srv.port}/`);
    expect(b.st).toMatchObject({ success: true, protocol: '' });
    const opens = await srv.events.waitCount((e) => e.type === 'open', 2);
    expect(opens.map((o) => o.ctx.protocol)).toEqual(['', '']);
    expect(opens.map((o) => o.ctx.extensions)).toEqual(['', '']);
    expect((await a.events.waitType('open')).ctx.extensions).toBe('');
    const plain = echoServer({});
    const c = await ourClient(`ws://127.0.0.1:${plain.port}/`, ['mqtt']);
    expect(c.st).toMatchObject({ success: true, protocol: '' });
  });

  test('class API: start status, open events and protocols given at start()', async () => {
    const server = new WebSocketServer({ port: 0, protocols: ['v2', 'v1'] });
    defer(() => server.clear());
    const opened = new Promise<[number, { protocol: string }]>((r) => server.once('open', (c, ctx) => r([c, ctx])));
    expect(server.start().success).toBe(true);
    const client = new WebSocketClient({ url: `ws://127.0.0.1:${server.port}/`, enableAutomaticReconnection: false });
    defer(() => client.clear());
    const copen = new Promise<{ protocol: string }>((r) => client.once('open', (ctx) => r(ctx)));
    const st = await client.start({ protocols: ['v1', 'v2'] });
    expect(st.protocol).toBe('v1');
    expect((await copen).protocol).toBe('v1');
    expect((await opened)[1].protocol).toBe('v1');
    const stopped = client.stop();
    expect('ref' in stopped && stopped.protocols).toEqual(['v1', 'v2']);
  });
});

describe('ws', () => {
  test('ws client offers, our server chooses; ws sees it as ws.protocol', async () => {
    const srv = echoServer({ protocols: ['graphql-ws', 'graphql-transport-ws'] });
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, ['graphql-transport-ws', 'graphql-ws']);
    defer(() => ws.terminate());
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('graphql-transport-ws');
    const open = await srv.events.waitType('open');
    expect(open.ctx.protocol).toBe('graphql-transport-ws');
    expect(open.ctx.remotePort).toBe((ws as unknown as { _socket: { localPort: number } })._socket.localPort);
    const echo = new Promise<string>((r) => ws.once('message', (d) => r(String(d))));
    ws.send('over graphql');
    expect(await echo).toBe('over graphql');
  });

  test('ws client offers only protocols our server does not speak: no protocol answered, ws fails as it must', async () => {
    const srv = echoServer({ protocols: ['mqtt'] });
    const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/`, ['stomp']);
    defer(() => ws.terminate());
    const err = await new Promise<Error>((resolve) => {
      ws.once('open', () => resolve(new Error('opened')));
      ws.once('error', resolve);
    });
    expect(err.message).toMatch(/Server sent no subprotocol/);
  });

  test('our client offers, the ws server chooses; a ws server choosing one not offered fails our start', async () => {
    const wss = new WsServer({ host: '127.0.0.1', port: 0, handleProtocols: (offered) => (offered.has('b') ? 'b' : false) });
    defer(() => new Promise((r) => wss.close(() => r(undefined))));
    await new Promise<void>((r) => wss.once('listening', () => r()));
    wss.on('connection', (ws) => {
      defer(() => ws.terminate());
      ws.on('message', (d) => ws.send(d));
    });
    const port = (wss.address() as AddressInfo).port;
    const ok = await ourClient(`ws://127.0.0.1:${port}/`, ['a', 'b']);
    expect(ok.st).toMatchObject({ success: true, protocol: 'b', http_status: 101 });
    expect((await ok.events.waitType('open')).ctx).toMatchObject({ protocol: 'b', remoteAddress: '127.0.0.1', remotePort: port });

    const rogue = new WsServer({ host: '127.0.0.1', port: 0, handleProtocols: () => 'admin' });
    defer(() => new Promise((r) => rogue.close(() => r(undefined))));
    await new Promise<void>((r) => rogue.once('listening', () => r()));
    const rport = (rogue.address() as AddressInfo).port;
    const bad = await ourClient(`ws://127.0.0.1:${rport}/`, ['a', 'b']);
    expect(bad.st.success).toBe(false);
    expect(bad.st.errorStr).toBe('Server selected a subprotocol that was not offered: admin');
    expect(bad.events.of('open')).toEqual([]);
  });
});

describe("Node's built-in WebSocket (undici)", () => {
  const script = `
    const ws = new WebSocket(process.argv[1], JSON.parse(process.argv[2]));
    const out = (o) => console.log(JSON.stringify(o));
    ws.onopen = () => { out({ open: true, protocol: ws.protocol, extensions: ws.extensions }); ws.send('hi'); };
    ws.onmessage = (e) => { out({ echo: String(e.data) }); ws.close(1000); };
    ws.onerror = (e) => out({ error: String((e.error && e.error.message) || e.message || 'error') });
    ws.onclose = (e) => { out({ close: e.code }); process.exit(0); };
    setTimeout(() => process.exit(3), 10000);`;
  // Ends at the close event, or at the error (undici, failing a handshake,
  // reports the error without a close event).
  const run = async (url: string, protocols: string[], until: RegExp) => {
    const p = spawnLines(process.execPath, ['--no-warnings', '--experimental-websocket', '-e', script, url, JSON.stringify(protocols)]);
    await p.waitLine(until, 15000);
    return p.lines.map((l) => JSON.parse(l));
  };

  test('offers two, our server speaks the second: ws.protocol is it; nothing in common: undici fails the connection', async () => {
    const srv = echoServer({ protocols: ['b'] });
    const ok = await run(`ws://127.0.0.1:${srv.port}/undici`, ['a', 'b'], /"close"/);
    expect(ok[0]).toMatchObject({ open: true, protocol: 'b' });
    expect(ok).toContainEqual({ echo: 'hi' });
    const open = await srv.events.waitType('open');
    expect(open.ctx.protocol).toBe('b');
    expect(open.ctx.headers['Sec-WebSocket-Protocol'] ?? open.ctx.headers['sec-websocket-protocol']).toBe('a, b');

    const none = await run(`ws://127.0.0.1:${srv.port}/undici`, ['c'], /"error"|"close"/);
    expect(none.find((o) => o.open)).toBeUndefined();
    expect(none[0]).toEqual({ error: 'Server did not respond with sent protocols.' });
  });
});

describeWithPeers([peers.python()], 'Python websockets', (found) => {
  const py = () => found.python!.exe;

  test('python client offers, our server chooses (and answers none when nothing matches)', async () => {
    const srv = echoServer({ protocols: ['mqtt', 'chat'] });
    const a = spawnLines(py(), [path.join(PEERS, 'py_protocols.py'), 'client', `ws://127.0.0.1:${srv.port}/py`, '--protocols', 'x-unknown,chat']);
    expect(await a.waitLine(/^(PROTOCOL|ERROR) /, 15000)).toBe('PROTOCOL chat');
    expect(await a.waitLine(/^ECHO /, 5000)).toBe('ECHO hi');
    const open = await srv.events.waitType('open');
    expect(open.ctx.protocol).toBe('chat');
    // websockets, like browsers, refuses a connection without the protocol it asked for
    const b = spawnLines(py(), [path.join(PEERS, 'py_protocols.py'), 'client', `ws://127.0.0.1:${srv.port}/py`, '--protocols', 'stomp']);
    expect(await b.waitLine(/^(PROTOCOL|ERROR) /, 15000)).toMatch(/^(ERROR|PROTOCOL -)/);
  }, 40000);

  test('our client offers, the python server chooses', async () => {
    const server = spawnLines(py(), [path.join(PEERS, 'py_protocols.py'), 'server', '--protocols', 'v2.chat']);
    const port = Number((await server.waitLine(/^PORT \d+$/, 15000)).split(' ')[1]);
    const { st, events } = await ourClient(`ws://127.0.0.1:${port}/`, ['v1.chat', 'v2.chat']);
    expect(st).toMatchObject({ success: true, protocol: 'v2.chat' });
    expect((await events.waitType('open')).ctx.protocol).toBe('v2.chat');
    expect(await server.waitLine(/^OPEN /, 5000)).toBe('OPEN v2.chat v1.chat,v2.chat');
    // nothing in common: the python server answers none, our client opens without one
    const none = await ourClient(`ws://127.0.0.1:${port}/`, ['v3.chat']);
    expect(none.st).toMatchObject({ success: true, protocol: '' });
  }, 40000);
});

describeWithPeers([peers.chromium()], 'headless Chromium', (found) => {
  test("new WebSocket(url, ['a', 'b']) gets our server's choice; an offer without a match fails in the browser", async () => {
    const srv = echoServer({ protocols: ['b', 'c'] });
    const web = await servePage(path.join(PEERS, 'browser_handshake.html'));
    const url = `ws://127.0.0.1:${srv.port}/browser`;
    const attempts = [
      { url, protocols: ['a', 'b'] },
      { url, protocols: ['x'] },
      { url, protocols: [] },
    ];
    const r = await runPage(found.chromium!.exe, web, `attempts=${encodeURIComponent(JSON.stringify(attempts))}`);
    expect(r.error).toBeUndefined();
    expect(r.outcomes[0]).toMatchObject({ opened: true, protocol: 'b', echo: 'hi', code: 1000 });
    expect(r.outcomes[0].extensions).toMatch(/permessage-deflate/);
    expect(r.outcomes[1]).toMatchObject({ opened: false, code: 1006 });
    expect(r.outcomes[2]).toMatchObject({ opened: true, protocol: '', echo: 'hi' });
    const opens = srv.events.of('open');
    expect(opens[0].ctx.protocol).toBe('b');
    expect(opens[0].ctx.headers.Origin ?? opens[0].ctx.headers.origin).toBe(web.origin);
  }, 60000);
});
