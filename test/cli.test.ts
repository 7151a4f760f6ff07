// The ixws command-line tool, driven as a user drives it: child processes
// running the compiled bin (fresh tsc output, as in the npm tarball), fed
// through pipes, a pseudo-terminal for the interactive case, signals; help,
// one-line errors and exit codes (0 / 1 / 2); TLS with a certificate made at
// test time (support/x509.ts); a 64 MiB file whose SHA-256 must match on
// arrival; the bin installed from an npm tarball.
import { execFileSync, spawn } from 'child_process';
import type { ChildProcessWithoutNullStreams } from 'child_process';
import * as crypto from 'crypto';
import { createHash, randomBytes } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import * as net from 'net';
import type { AddressInfo } from 'net';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { WebSocketClient, WebSocketServer } from '../lib/index';
import type { CloseContext, DataContext, OpenContext } from '../lib/index';
import { root } from '../lib/binding';
import { FileMessageError, decodeFileMessage, encodeFileMessage } from '../cli/file-message';
import { renderBar } from '../cli/progress';
import { REPEAT_WINDOW_MS } from '../cli/common';
import { makeTestCa, writePair } from './support/certs';
import { compilePackage } from './support/compile';
import { describeWithPeers, peers } from './support/peers';
import { RawPeer } from './support/raw';
import { switchingProtocols } from './support/wire';

// build-* is ignored by git; the package root (package.json, build/Release) is found above it.
const outDir = path.join(root, 'build-cli-test');
const IXWS = path.join(outDir, 'cli', 'ixws.js');
let tmp = '';

beforeAll(() => {
  compilePackage(outDir);
  if (!fs.existsSync(IXWS)) throw new Error(`no ${IXWS} after tsc`);
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-cli-'));
}, 120_000);

afterAll(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

// ------------------------------------------------------------ processes

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

interface Cli {
  child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  exited: Promise<Exit>;
  /** Resolves with the first match of `re` in stdout (or stderr), fails after `ms` or at exit. */
  waitOut(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
  waitErr(re: RegExp, ms?: number): Promise<RegExpMatchArray>;
}

const live = new Set<ChildProcessWithoutNullStreams>();
const cleanups: Array<() => void> = [];

afterEach(() => {
  for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  live.clear();
  while (cleanups.length) cleanups.pop()!();
});

/** Starts `cmd args` (by default: node IXWS args) with piped stdio. */
function spawnCli(args: string[], opts: { cmd?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Cli {
  const cmd = opts.cmd ?? process.execPath;
  const argv = opts.cmd ? args : [IXWS, ...args];
  const child = spawn(cmd, argv, { cwd: opts.cwd ?? tmp, env: { ...process.env, ...opts.env }, stdio: 'pipe' });
  live.add(child);
  const cli = { child, stdout: '', stderr: '' } as Cli;
  const waiters: Array<() => void> = [];
  const poke = () => waiters.slice().forEach((w) => w());
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    cli.stdout += d;
    poke();
  });
  child.stderr.on('data', (d: string) => {
    cli.stderr += d;
    poke();
  });
  child.stdin.on('error', () => {}); // the child may exit before reading its input
  let done = false;
  cli.exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      done = true;
      poke();
      resolve({ code, signal });
    }),
  );
  const wait = (which: 'stdout' | 'stderr') => (re: RegExp, ms = 10_000) =>
    new Promise<RegExpMatchArray>((resolve, reject) => {
      const check = () => {
        const m = re.exec(cli[which]);
        if (m) finish(() => resolve(m));
        else if (done) finish(() => reject(new Error(`exited (${child.exitCode ?? child.signalCode}) without ${re} on ${which}\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`)));
      };
      const timer = setTimeout(() => finish(() => reject(new Error(`no ${re} on ${which} within ${ms} ms\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`))), ms);
      const finish = (f: () => void) => {
        clearTimeout(timer);
        const i = waiters.indexOf(check);
        if (i >= 0) waiters.splice(i, 1);
        f();
      };
      waiters.push(check);
      check();
    });
  cli.waitOut = wait('stdout');
  cli.waitErr = wait('stderr');
  return cli;
}

interface Result extends Exit {
  stdout: string;
  stderr: string;
  ms: number;
}

/** The exit of a started child, SIGKILLed (and failed) if it runs past `ms`. */
async function finished(cli: Cli, ms = 15_000): Promise<Result> {
  const t0 = Date.now();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    cli.child.kill('SIGKILL');
  }, ms);
  const exit = await cli.exited;
  clearTimeout(timer);
  if (killed) throw new Error(`still running after ${ms} ms\nstdout: ${cli.stdout}\nstderr: ${cli.stderr}`);
  return { ...exit, stdout: cli.stdout, stderr: cli.stderr, ms: Date.now() - t0 };
}

/** Runs ixws to completion with `input` on its stdin (then EOF). */
async function run(args: string[], input: string | Buffer = '', ms = 15_000, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Result> {
  const cli = spawnCli(args, opts);
  cli.child.stdin.end(input);
  return finished(cli, ms);
}

/** Sends `sig` and measures how long the child takes to exit. */
async function signal(cli: Cli, sig: NodeJS.Signals, ms = 5_000): Promise<Result> {
  cli.child.kill(sig);
  return finished(cli, ms);
}

/** An ixws server (echo-server, broadcast-server, receive) on a free port; resolves once it listens. */
async function serverCli(args: string[]): Promise<{ cli: Cli; url: string; port: number }> {
  const cli = spawnCli([...args, '--port', '0']);
  const m = await cli.waitOut(/listening on (wss?:\/\/[^\s,]+:(\d+))/);
  return { cli, url: m[1], port: Number(m[2]) };
}

/** An in-process server of the library, cleared after the test. */
function libServer(options: ConstructorParameters<typeof WebSocketServer>[0] = {}): WebSocketServer {
  const s = new WebSocketServer({ port: 0, ...options });
  const st = s.start();
  if (!st.success) throw new Error(st.message);
  cleanups.push(() => s.clear());
  return s;
}

/** An in-process client of the library, cleared after the test. */
async function libClient(url: string): Promise<{ client: WebSocketClient; messages: DataContext[]; closes: CloseContext[] }> {
  const client = new WebSocketClient({ url, enableAutomaticReconnection: false });
  cleanups.push(() => client.clear());
  const messages: DataContext[] = [];
  const closes: CloseContext[] = [];
  client.on('message', (ctx) => messages.push(ctx));
  client.on('close', (ctx) => closes.push(ctx));
  const st = await client.start();
  if (!st.success) throw new Error(st.errorStr);
  return { client, messages, closes };
}

/** A WebSocket server that answers the upgrade and then never reads again: its peer's send queue fills. */
async function deafServer(): Promise<number> {
  const socks: net.Socket[] = [];
  const srv = net.createServer((sock) => {
    socks.push(sock);
    sock.on('error', () => {});
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      sock.off('data', onData);
      sock.pause();
      sock.write(switchingProtocols(/sec-websocket-key:\s*(\S+)/i.exec(head)![1]));
    };
    sock.on('data', onData);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const x of socks) x.destroy();
    srv.close();
  });
  return (srv.address() as AddressInfo).port;
}

/** A TCP proxy to `target` that forwards what the client sends at about `bytesPerSec` (a slower reader). */
async function throttledProxy(target: number, bytesPerSec: number): Promise<number> {
  const srv = net.createServer((c) => {
    const u = net.connect(target, '127.0.0.1');
    let budget = 0;
    const tick = setInterval(() => {
      budget = bytesPerSec / 100;
      if (c.isPaused()) c.resume();
    }, 10);
    c.on('data', (d) => {
      u.write(d);
      budget -= d.length;
      if (budget <= 0) c.pause();
    });
    u.on('data', (d) => c.write(d));
    const end = () => {
      clearInterval(tick);
      c.destroy();
      u.destroy();
    };
    for (const x of [c, u]) {
      x.on('error', () => {});
      x.on('close', end);
    }
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanups.push(() => srv.close());
  return (srv.address() as AddressInfo).port;
}

async function until(cond: () => boolean, ms = 5_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const lines = (s: string) => s.split('\n').filter((l) => l.length > 0);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

// ------------------------------------------------------------ help, errors, exit codes

describe('help and usage', () => {
  test('--help lists every command and exits 0; no arguments prints it on stderr and exits 2', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['connect URL', 'echo-server', 'broadcast-server', 'send URL FILE', 'receive']) expect(r.stdout).toContain(cmd);
    expect(r.stderr).toBe('');
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toContain('Usage: ixws <command>');
  });

  test.each(['connect', 'echo-server', 'broadcast-server', 'send', 'receive'])('%s --help equals help %s, exits 0', async (cmd) => {
    const a = await run([cmd, '--help']);
    const b = await run(['help', cmd]);
    expect(a.code).toBe(0);
    expect(b.code).toBe(0);
    expect(a.stdout).toMatch(new RegExp(`^Usage: ixws ${cmd}`));
    expect(a.stdout).toBe(b.stdout);
    expect(a.stdout).not.toBe((await run(['--help'])).stdout);
  });

  test('a native binding that cannot load: help and version still work; a command fails with one ixws: line', async () => {
    const env = { ...process.env, IXWS_BINARY: path.join(tmp, 'no-such-binding.node') };
    const help = await run(['--help'], '', 15_000, { env });
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: ixws <command>');
    const connectHelp = await run(['connect', '--help'], '', 15_000, { env });
    expect(connectHelp.code).toBe(0);
    expect(connectHelp.stdout).toMatch(/^Usage: ixws connect/);
    expect((await run(['--version'], '', 15_000, { env })).code).toBe(0);
    const serve = await run(['echo-server', '--port', '0'], '', 15_000, { env });
    expect(serve.code).toBe(1);
    expect(serve.stdout).toBe('');
    expect(serve.stderr).toMatch(/^ixws: .*no-such-binding\.node/);
    expect(serve.stderr.trimEnd().split('\n')).toHaveLength(1); // no stack trace
  });

  test('--version prints the package version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  });

  // Each: the arguments, and what the one line on stderr must say.
  const bad: Array<[string[], RegExp]> = [
    [['frobnicate'], /unknown command 'frobnicate'/],
    [['--frob'], /unknown option '--frob'/],
    [['help', 'frob'], /help: unknown command 'frob'/],
    [['connect'], /connect: missing URL/],
    [['connect', 'ws://127.0.0.1:9', 'extra'], /unexpected argument 'extra'/],
    [['connect', '--frob', 'ws://127.0.0.1:9'], /connect: unknown option '--frob'/],
    [['connect', 'not a url'], /invalid URL 'not a url'/],
    [['connect', 'http://127.0.0.1:9/'], /must start with ws:\/\/ or wss:\/\//],
    [['connect', 'ws://127.0.0.1:9', '--timeout', '0'], /--timeout: expected a positive number/],
    [['connect', 'ws://127.0.0.1:9', '--timeout'], /--timeout <value>' argument missing/],
    [['connect', 'ws://127.0.0.1:9', '--wait', '-1'], /--wait/],
    [['connect', 'ws://127.0.0.1:9', '--wait', 'soon'], /--wait: expected a non-negative number of seconds, got 'soon'/],
    [['connect', 'ws://127.0.0.1:9', '--header', 'no colon'], /--header: expected NAME:VALUE/],
    [['connect', 'ws://127.0.0.1:9', '--header', 'bad name:1'], /--header: expected NAME:VALUE/],
    [['connect', 'ws://127.0.0.1:9', '--hex', '--base64'], /--hex and --base64 exclude each other/],
    [['connect', 'ws://127.0.0.1:9', '--binary=yes'], /'--binary' does not take an argument/],
    [['connect', 'ws://127.0.0.1:9', '--no-check'], /--no-check needs a wss:\/\/ URL/],
    [['connect', 'wss://127.0.0.1:9', '--ca', 'no-such-ca.pem'], /--ca: cannot read 'no-such-ca.pem' \(ENOENT\)/],
    [['connect', 'ws://127.0.0.1:9', '--protocol', 'two words'], /--protocol: expected a token .*got 'two words'/],
    [['connect', 'ws://127.0.0.1:9', '--protocol', 'a,b'], /--protocol: expected a token .*got 'a,b'/],
    [['connect', 'ws://127.0.0.1:9', '--protocol', 'chat', '--protocol', 'chat'], /--protocol: the same subprotocol offered twice/],
    [['echo-server', '--port', '65536'], /--port: expected a port number 0\.\.65535, got '65536'/],
    [['echo-server', '--port', 'eighty'], /--port: expected a port number/],
    [['echo-server', '--port', '-1'], /--port/],
    [['echo-server', '--cert', 'x.pem'], /--cert and --key go together/],
    [['echo-server', '--passphrase-file', 'pass.txt'], /--passphrase-file is the passphrase of --key: give --cert and --key too/],
    [['connect', 'ws://127.0.0.1:9', '--cert', 'c.pem', '--key', 'k.pem'], /connect: --cert needs a wss:\/\/ URL/],
    [['connect', 'wss://127.0.0.1:9', '--key', 'k.pem'], /connect: --cert and --key go together/],
    [['connect', 'wss://127.0.0.1:9', '--cert', 'c.pem', '--key', 'k.pem', '--passphrase-file', '/dev/stdin'], /connect: --passphrase-file cannot be standard input, which carries the messages/],
    [['send', 'wss://127.0.0.1:9', IXWS, '--passphrase-file', 'pass.txt'], /send: --passphrase-file is the passphrase of --key/],
    [['echo-server', '--deflate', '--no-deflate'], /--deflate and --no-deflate exclude each other/],
    [['broadcast-server', 'extra'], /broadcast-server: unexpected argument 'extra'/],
    [['send', 'ws://127.0.0.1:9'], /send: missing FILE/],
    [['send', 'ws://127.0.0.1:9', 'no-such-file'], /send: cannot read 'no-such-file' \(ENOENT\)/],
    [['send', 'ws://127.0.0.1:9', '.'], /send: '.' is not a regular file/],
    [['receive', '--dir', 'no-such-dir'], /--dir: cannot write into 'no-such-dir' \(ENOENT\)/],
    [['receive', '--max-size', '1.5'], /--max-size: expected a positive whole number of bytes/],
  ];
  test.each(bad)('ixws %j: one line on stderr, exit 2', async (args, re) => {
    const r = await run(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^ixws: /);
    expect(r.stderr).toMatch(re);
    expect(r.stderr).toMatch(/\(see 'ixws( [a-z-]+)? --help'\)\n$/);
  });
});

// ------------------------------------------------------------ connect, in a pipe

describe('connect in a pipe', () => {
  test("printf 'hi\\nthere\\n' | ixws connect URL (echo-server) prints the echoes and exits 0 after the close", async () => {
    const srv = await serverCli(['echo-server']);
    const r = await run(['connect', srv.url], 'hi\nthere\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('hi\nthere\n');
    expect(lines(r.stderr)).toEqual([`connected to ${srv.url}/`, 'closed: 1000 Normal closure']);
    await srv.cli.waitOut(/client 1 disconnected: 1000/);
    expect(srv.cli.stdout).toMatch(/client 1 connected \(\/\)/);
  });

  test('5,000 lines: every echo is printed, in order, before the exit (the close waits for the peer to fall quiet)', async () => {
    const srv = await serverCli(['echo-server']);
    const input = Array.from({ length: 5000 }, (_, i) => `line ${i} ${'x'.repeat(i % 300)}`);
    const r = await run(['connect', srv.url], `${input.join('\n')}\n`, 30_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.split('\n').slice(0, -1)).toEqual(input);
  }, 40_000);

  test('--wait: answers that come late are printed while the peer has not been quiet that long; --wait 0 closes at once', async () => {
    const s = libServer();
    const sends: boolean[] = [];
    // Answers 400 ms after each message (a send after the close fails: success false).
    s.on('message', (client, ctx) => setTimeout(() => sends.push(s.send(`late ${ctx.data}`, { clients: [client] })[0]?.success === true), 400));
    const url = `ws://127.0.0.1:${s.port}`;
    const patient = await run(['connect', url, '--wait', '3'], 'a\n');
    expect(patient.code, patient.stderr).toBe(0);
    expect(patient.stdout).toBe('late a\n');
    const hasty = await run(['connect', url, '--wait', '0'], 'b\n');
    expect(hasty.code, hasty.stderr).toBe(0);
    expect(hasty.stdout).toBe('');
    await until(() => sends.length === 2, 5000, 'the second late answer');
    expect(sends).toEqual([true, false]);
  });

  test('a line without a final newline and an empty line are messages too', async () => {
    const got: string[] = [];
    const s = libServer();
    s.on('message', (_c, ctx) => got.push(ctx.data as string));
    const r = await run(['connect', `ws://127.0.0.1:${s.port}`], 'a\n\nlast');
    expect(r.code, r.stderr).toBe(0);
    expect(got).toEqual(['a', '', 'last']);
  });

  test('--binary sends binary frames; binary messages print as hex, or base64 with --base64', async () => {
    const frames: DataContext[] = [];
    const s = libServer();
    s.on('message', (client, ctx) => {
      frames.push({ ...ctx, data: ctx.binary ? Buffer.from(ctx.data as Buffer) : ctx.data });
      s.send(Buffer.from([0, 1, 2, 0xfe, 0xff]), { clients: [client] });
      s.send('text stays text', { clients: [client] });
    });
    const url = `ws://127.0.0.1:${s.port}`;
    const hex = await run(['connect', '--binary', url], 'héllo\n');
    expect(hex.code, hex.stderr).toBe(0);
    expect(frames).toHaveLength(1);
    expect(frames[0].binary).toBe(true);
    expect(frames[0].data).toEqual(Buffer.from('héllo', 'utf8'));
    expect(hex.stdout).toBe('000102feff\ntext stays text\n');
    const b64 = await run(['connect', url, '--base64'], 'plain\n');
    expect(b64.code, b64.stderr).toBe(0);
    expect(frames[1].binary).toBe(false);
    expect(frames[1].data).toEqual('plain');
    expect(b64.stdout).toBe(`${Buffer.from([0, 1, 2, 0xfe, 0xff]).toString('base64')}\ntext stays text\n`);
  });

  test('--binary from a pipe sends each line\'s bytes as they are: not UTF-8, a lone CR inside; CRLF and LF end lines', async () => {
    const got: Buffer[] = [];
    const s = libServer();
    s.on('message', (_client, ctx) => got.push(Buffer.from(ctx.data as Buffer)));
    const input = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x7a, 0x0a, 0x61, 0x0d, 0x62, 0x0d, 0x0a, 0x0a, 0xc3, 0x28]);
    const r = await run(['connect', '--binary', `ws://127.0.0.1:${s.port}`, '--wait', '0.2'], input);
    expect(r.code, r.stderr).toBe(0);
    await until(() => got.length === 4, 5000, 'four messages');
    expect(got.map((b) => b.toString('hex'))).toEqual(['fffe00807a', '610d62', '', 'c328']);
  });

  test('--header K:V reaches the server; --no-deflate offers no extension', async () => {
    const opens: OpenContext[] = [];
    const s = libServer();
    s.on('open', (_c, ctx) => opens.push(ctx));
    const url = `ws://127.0.0.1:${s.port}/p?q=1`;
    expect((await run(['connect', url, '-H', 'X-One: 1', '--header', 'X-Two:two words'])).code).toBe(0);
    expect((await run(['connect', url, '--no-deflate'])).code).toBe(0);
    expect(opens).toHaveLength(2);
    expect(opens[0].uri).toBe('/p?q=1');
    const h0 = Object.fromEntries(Object.entries(opens[0].headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(h0['x-one']).toBe('1');
    expect(h0['x-two']).toBe('two words');
    expect(h0['sec-websocket-extensions']).toMatch(/permessage-deflate/);
    const h1 = Object.fromEntries(Object.entries(opens[1].headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(h1['sec-websocket-extensions']).toBeUndefined();
  });

  test('--protocol offers subprotocols in order; the one the server chose is reported; a server that names one not offered fails', async () => {
    const opens: OpenContext[] = [];
    const s = libServer({ protocols: ['superchat', 'chat'] });
    s.on('open', (_c, ctx) => opens.push(ctx));
    s.on('message', (c, ctx) => s.send(ctx.data, { clients: [c] }));
    const url = `ws://127.0.0.1:${s.port}/`;
    const r = await run(['connect', url, '--protocol', 'v2.chat', '--protocol', 'chat', '--protocol', 'superchat'], 'hi\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('hi\n');
    // The server answers the first of the client's offer that it speaks.
    expect(r.stderr).toContain(`connected to ${url} (subprotocol chat)`);
    expect(opens).toHaveLength(1);
    expect(opens[0].protocol).toBe('chat');
    const h = Object.fromEntries(Object.entries(opens[0].headers).map(([k, v]) => [k.toLowerCase(), v]));
    expect(h['sec-websocket-protocol']).toBe('v2.chat, chat, superchat');
    // No match: the connection opens without a subprotocol, and none is reported.
    const none = await run(['connect', url, '--protocol', 'mqtt'], 'x\n');
    expect(none.code).toBe(0);
    expect(none.stderr).toContain(`connected to ${url}`);
    expect(none.stderr).not.toContain('subprotocol');
    expect(opens[1].protocol).toBe('');
    // A server that selects a subprotocol the client never offered: the start fails (RFC 6455 4.1).
    const rogue = http.createServer();
    rogue.on('upgrade', (req, sock) => {
      sock.end(switchingProtocols(String(req.headers['sec-websocket-key']), { 'Sec-WebSocket-Protocol': 'other' }));
    });
    await new Promise<void>((res) => rogue.listen(0, '127.0.0.1', res));
    cleanups.push(() => rogue.close());
    const bad = await run(['connect', `ws://127.0.0.1:${(rogue.address() as AddressInfo).port}/`, '--protocol', 'chat'], 'x\n');
    expect(bad.code).toBe(1);
    expect(lines(bad.stderr)).toEqual([expect.stringMatching(/^ixws: cannot connect to .*subprotocol that was not offered: other/)]);
  });

  test('connection refused: the reason on one line, exit 1', async () => {
    // A port that was just free: bind, note, close.
    const probe = http.createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const r = await run(['connect', `ws://127.0.0.1:${port}`], 'hi\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^ixws: cannot connect to ws://127\\.0\\.0\\.1:${port}/: .*refused`, 'i'))]);
  });

  test('an HTTP server that answers 404: exit 1 with the status', async () => {
    const h = http.createServer((_req, res) => res.writeHead(404).end('nope'));
    h.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'));
    await new Promise<void>((r) => h.listen(0, '127.0.0.1', r));
    cleanups.push(() => h.close());
    const r = await run(['connect', `ws://127.0.0.1:${(h.address() as AddressInfo).port}/x`]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^ixws: cannot connect to .*404/);
  });

  test('the peer closes with 4001 while input is still open: code and reason on stderr, exit 1', async () => {
    const s = libServer();
    s.on('message', (client, ctx) => {
      if (ctx.data === 'bye please') s.close(client, 4001, 'go away');
    });
    const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
    await cli.waitErr(/connected to/);
    cli.child.stdin.write('bye please\n'); // stdin stays open
    const r = await finished(cli);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/closed by the peer: 4001 go away\n$/);
  });

  test("a close reason with terminal escapes (the peer's words) is printed escaped, never obeyed", async () => {
    const s = libServer();
    s.on('message', (client) => s.close(client, 4001, 'x\u001b]0;owned\u0007\u001b[31mred\u202e'));
    const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
    await cli.waitErr(/connected to/);
    cli.child.stdin.write('close me\n');
    const r = await finished(cli);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('closed by the peer: 4001 x\\u{1b}]0;owned\\u{7}\\u{1b}[31mred\\u{202e}\n');
    expect(r.stderr).not.toMatch(/[\u001b\u0007\u202e]/);
  });

  test('the server stops (1001) while input is still open: exit 0', async () => {
    const srv = await serverCli(['echo-server']);
    const cli = spawnCli(['connect', srv.url]);
    await cli.waitErr(/connected to/);
    cli.child.stdin.write('one\n');
    await cli.waitOut(/^one\n/);
    expect((await signal(srv.cli, 'SIGINT')).code).toBe(0);
    const r = await finished(cli);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/closed by the peer: 1001/);
  });

  test('SIGTERM or SIGINT while input is open: close 1000, exit 0', async () => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      const closes: CloseContext[] = [];
      const s = libServer();
      s.on('close', (_c, ctx) => closes.push(ctx));
      const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
      await cli.waitErr(/connected to/);
      const r = await signal(cli, sig);
      expect(r.code, `${sig}: ${r.stderr}`).toBe(0);
      expect(r.stderr).toMatch(/closed: 1000/);
      await until(() => closes.length === 1, 5000, 'the server-side close');
      expect(closes[0].code).toBe(1000);
      expect(closes[0].remote).toBe(true);
    }
  });

  test('connect: a repeat of the Ctrl-C that lands after the close has finished is absorbed: exit 0', async () => {
    const s = libServer();
    const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
    await cli.waitErr(/connected to/);
    const t0 = Date.now();
    cli.child.kill('SIGINT');
    await cli.waitErr(/closed: 1000/);
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + 250 - Date.now())));
    expect([cli.child.exitCode, cli.child.signalCode], 'the process is still there 250 ms after the first signal').toEqual([null, null]);
    expect(cli.child.kill('SIGINT')).toBe(true);
    const r = await finished(cli, 5000);
    expect([r.code, r.signal], r.stderr).toEqual([0, null]);
  });

  test('a peer that stops reading: SIGTERM still ends connect within its close bound (it waited for the queue for ever)', async () => {
    const port = await deafServer();
    const cli = spawnCli(['connect', `ws://127.0.0.1:${port}`, '--wait', '0']);
    await cli.waitErr(/connected to/);
    const line = Buffer.alloc(1000, 'a');
    line[999] = 0x0a;
    // 24 MB: more than the kernel's buffers and connect's 8 MiB high-water mark take.
    // Written without waiting for 'drain': connect stops reading its input at its high-water mark.
    for (let i = 0; i < 24_000; i++) cli.child.stdin.write(line);
    await new Promise((r) => setTimeout(r, 1500));
    const r = await signal(cli, 'SIGTERM', 12_000);
    expect(r.signal).toBeNull();
    expect(r.ms).toBeLessThan(8_000); // the 5 s bound for the close, not for ever
    expect(r.code).toBe(1); // input was lost
    expect(r.stderr).toMatch(/ixws: the peer did not take the last \d+ bytes queued for it before the close\n$/);
  }, 30_000);

  test('a peer that reads everything and closes (1000) while lines keep coming: exit 0, no line counted as failed', async () => {
    const s = libServer();
    s.on('message', (client) => s.close(client, 1000, 'enough'));
    const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
    await cli.waitErr(/connected to/);
    const chunk = Buffer.from('y\n'.repeat(50_000));
    for (let i = 0; i < 200; i++) cli.child.stdin.write(chunk); // 20 MB of lines, as `yes |` gives
    const r = await finished(cli, 20_000);
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/closed by the peer: 1000 enough\n$/)]);
    expect(r.stderr).not.toMatch(/send failed|could not be sent/);
  }, 30_000);

  test('SIGTERM while lines are queued for a peer that reads them: the close completes, exit 0 (nothing was lost)', async () => {
    const s = libServer();
    let bytes = 0;
    s.on('message', (_c, ctx) => (bytes += (ctx.data as string).length + 1));
    // The peer reads at about 20 MB/s: connect's queue is full when the signal comes, and drains within the close timeout.
    const port = await throttledProxy(s.port, 20_000_000);
    const cli = spawnCli(['connect', `ws://127.0.0.1:${port}`]);
    await cli.waitErr(/connected to/);
    const line = Buffer.from(`${'z'.repeat(999)}\n`);
    const chunk = Buffer.concat(Array.from({ length: 1000 }, () => line));
    for (let i = 0; i < 40; i++) cli.child.stdin.write(chunk); // 40 MB
    await until(() => bytes > 4_000_000, 10_000, 'the first megabytes');
    const r = await signal(cli, 'SIGTERM', 15_000);
    expect([r.code, r.stderr]).toEqual([0, expect.stringMatching(/closed: 1000/)]);
    expect(bytes).toBeGreaterThan(8_000_000);
  }, 30_000);

  test('a line that cannot be sent (over the 128 MiB send queue limit): a note, the session goes on, exit 1 saying how many', async () => {
    const s = libServer({ maxPayload: 1024 });
    const got: string[] = [];
    s.on('message', (_c, ctx) => got.push(String(ctx.data)));
    const big = Buffer.alloc(140 * 1024 * 1024, 'a');
    const r = await run(['connect', `ws://127.0.0.1:${s.port}`, '--wait', '0.2'], Buffer.concat([big, Buffer.from('\nafter\n')]), 60_000);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/send failed/);
    expect(r.stderr).toMatch(/ixws: 1 message could not be sent\n$/);
    expect(got).toEqual(['after']);
  }, 90_000);

  test('output closed by the reader (| head -1): the session ends, no crash', async () => {
    const s = libServer();
    s.on('open', (client: number, _ctx: OpenContext) => {
      for (let i = 0; i < 2000; i++) s.send(`flood ${i}`, { clients: [client] });
    });
    const cli = spawnCli(['connect', `ws://127.0.0.1:${s.port}`]);
    await cli.waitOut(/flood 0\n/);
    cli.child.stdout.destroy(); // the reader goes away
    const r = await finished(cli);
    expect(r.signal).toBeNull();
    expect(r.stderr).not.toMatch(/EPIPE|Error:|at /);
  });
});

// ------------------------------------------------------------ connect, in a terminal

describeWithPeers([peers.pty()], 'connect in a terminal (pseudo-terminal)', (found) => {
  const relay = path.join(__dirname, 'support', 'pty-relay.py');

  test('prompt, "< " echoes, Ctrl-D closes with 1000 and exits 0', async () => {
    const srv = await serverCli(['echo-server']);
    const term = spawnCli([relay, process.execPath, IXWS, 'connect', srv.url], { cmd: found.pty!.exe, env: { TERM: 'xterm' } });
    await term.waitOut(/connected to .*Ctrl-D/);
    await term.waitOut(/> /);
    term.child.stdin.write('hello terminal\r');
    await term.waitOut(/< hello terminal/);
    term.child.stdin.write('second\r');
    await term.waitOut(/< second/);
    term.child.stdin.write('\x04'); // Ctrl-D on an empty line
    const r = await finished(term);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/closed: 1000 Normal closure/);
    await srv.cli.waitOut(/client 1 disconnected: 1000/);
  });

  test('Ctrl-C at the prompt closes too (exit 0); binary messages are marked', async () => {
    const s = libServer();
    s.on('open', (client: number, _ctx: OpenContext) => {
      s.send(Buffer.from('ab'), { clients: [client] });
    });
    const term = spawnCli([relay, process.execPath, IXWS, 'connect', `ws://127.0.0.1:${s.port}`], { cmd: found.pty!.exe, env: { TERM: 'xterm' } });
    await term.waitOut(/< \(binary\) 6162/);
    term.child.stdin.write('\x03');
    const r = await finished(term);
    expect(r.code, r.stdout).toBe(0);
    expect(r.stdout).toMatch(/closed: 1000/);
  });
});

describeWithPeers([peers.pty()], 'send in a terminal (pseudo-terminal)', (found) => {
  const relay = path.join(__dirname, 'support', 'pty-relay.py');

  test('a progress bar on the terminal for a file of 1 MiB or more, none for a small one or with --no-progress', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'pty-into-'));
    const big = path.join(tmp, 'pty-big.bin');
    const small = path.join(tmp, 'pty-small.bin');
    fs.writeFileSync(big, randomBytes(2 * 1024 * 1024));
    fs.writeFileSync(small, randomBytes(1000));
    const rcv = await serverCli(['receive', '--dir', into]);
    const inTerminal = async (args: string[]) => {
      const term = spawnCli([relay, process.execPath, IXWS, ...args], { cmd: found.pty!.exe, env: { TERM: 'xterm' } });
      term.child.stdin.end();
      return finished(term, 30_000);
    };
    const withBar = await inTerminal(['send', rcv.url, big]);
    expect(withBar.code, withBar.stdout).toBe(0);
    expect(withBar.stdout).toMatch(/\r\[#{30}\] 100%  2\.0\/2\.0 MiB/);
    expect(withBar.stdout).toMatch(/sent pty-big\.bin \(2097152 bytes/);
    const quiet = await inTerminal(['send', rcv.url, big, '--no-progress']);
    expect(quiet.code, quiet.stdout).toBe(0);
    expect(quiet.stdout).not.toMatch(/MiB\/s/);
    const smallOne = await inTerminal(['send', rcv.url, small]);
    expect(smallOne.code, smallOne.stdout).toBe(0);
    expect(smallOne.stdout).not.toMatch(/MiB\/s/);
    expect(fs.readdirSync(into).sort()).toEqual(['pty-big.bin', 'pty-big.bin.1', 'pty-small.bin']);
    expect((await signal(rcv.cli, 'SIGINT')).code).toBe(0);
  }, 60_000);
});

// ------------------------------------------------------------ servers

describe('echo-server and broadcast-server', () => {
  test('echo-server: text back as text, binary as binary, to the sender only; logs connections; SIGINT exits 0 promptly', async () => {
    const srv = await serverCli(['echo-server']);
    expect(srv.cli.stdout).toMatch(/^echo-server listening on ws:\/\/127\.0\.0\.1:\d+\n/);
    const a = await libClient(`${srv.url}/a`);
    const b = await libClient(`${srv.url}/b`);
    a.client.send('text');
    a.client.send(Buffer.from([9, 8, 7]));
    await until(() => a.messages.length === 2, 5000, 'two echoes');
    expect(a.messages[0]).toMatchObject({ binary: false, data: 'text' });
    expect(a.messages[1].binary).toBe(true);
    expect(Buffer.from(a.messages[1].data as Buffer)).toEqual(Buffer.from([9, 8, 7]));
    await new Promise((r) => setTimeout(r, 100));
    expect(b.messages).toHaveLength(0);
    await srv.cli.waitOut(/client 2 connected \(\/b\)/);
    const r = await signal(srv.cli, 'SIGINT');
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(3000);
    expect(r.stdout).toMatch(/SIGINT: stopping\n[^]*stopped\n$/);
    await until(() => a.closes.length === 1 && b.closes.length === 1, 5000, 'the clients to see the close');
    expect(a.closes[0].code).toBe(1001);
  });

  // A peer that completes the handshake and then never answers the close keeps
  // the graceful stop waiting (up to the engine's close timeout), which leaves
  // room for a second signal to arrive while the server is stopping.
  async function silentPeer(port: number): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    cleanups.push(() => peer.socket.destroy());
    expect((await peer.upgrade('/silent')).status).toBe(101);
    return peer;
  }

  test('one Ctrl-C delivered twice (process group + npm/timeout forwarding it): a graceful stop, exit 0', async () => {
    const srv = await serverCli(['echo-server']);
    const peer = await silentPeer(srv.port);
    await srv.cli.waitOut(/client 1 connected \(\/silent\)/);
    srv.cli.child.kill('SIGINT');
    await new Promise((r) => setTimeout(r, 30));
    srv.cli.child.kill('SIGINT');
    const close = await peer.readFrame(5000);
    expect(close.opcode).toBe(0x8);
    peer.socket.destroy(); // the TCP close ends the connection; the server then stops
    const r = await finished(srv.cli, 8000);
    expect([r.code, r.signal], r.stdout + r.stderr).toEqual([0, null]);
    expect(r.stdout).toMatch(/stopped\n$/);
  });

  test('a repeat of the Ctrl-C that lands after the stop has finished is absorbed too: exit 0, not death by SIGINT', async () => {
    // With no client the stop takes a few ms, and a copy of the signal from a
    // preempted \`timeout\` (or npm) can come later than that: a process already
    // in its teardown has no listener left and dies of it. The command stays
    // until REPEAT_WINDOW_MS after the first signal; a repeat in that time is the same Ctrl-C.
    const srv = await serverCli(['echo-server']);
    const t0 = Date.now();
    srv.cli.child.kill('SIGINT');
    await srv.cli.waitOut(/stopped\n/);
    // Half the window after the first signal was sent: the child saw it no earlier, so the
    // repeat lands inside the window it measures from its own first signal.
    const half = REPEAT_WINDOW_MS / 2;
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + half - Date.now())));
    expect([srv.cli.child.exitCode, srv.cli.child.signalCode], `the process is still there ${half} ms after the first signal`).toEqual([null, null]);
    expect(srv.cli.child.kill('SIGINT')).toBe(true);
    const r = await finished(srv.cli, 5000);
    expect([r.code, r.signal], r.stdout + r.stderr).toEqual([0, null]);
  });

  test('a second Ctrl-C later than that, while the stop waits for a close reply: exit 130 at once', async () => {
    const srv = await serverCli(['echo-server']);
    await silentPeer(srv.port);
    await srv.cli.waitOut(/client 1 connected \(\/silent\)/);
    srv.cli.child.kill('SIGINT');
    await srv.cli.waitOut(/SIGINT: stopping/);
    await new Promise((r) => setTimeout(r, REPEAT_WINDOW_MS + 300));
    const r = await signal(srv.cli, 'SIGINT', 3000);
    expect([r.code, r.signal]).toEqual([130, null]);
    expect(r.stdout).not.toMatch(/stopped\n$/);
  });

  test('a server whose stdout reader went away (| head -1) keeps serving: log lines are dropped, no EPIPE crash', async () => {
    for (const cmd of [['echo-server'], ['receive', '--dir', tmp]]) {
      const srv = await serverCli(cmd);
      srv.cli.child.stdout.destroy(); // the reader goes away
      const a = await libClient(srv.url);
      a.client.send('still there?');
      if (cmd[0] === 'echo-server') await until(() => a.messages.length === 1, 5000, 'the echo');
      else await until(() => a.messages.length === 1, 5000, 'the verdict');
      const b = await libClient(srv.url); // a log line for this one too
      expect(b.closes).toEqual([]);
      expect(a.closes).toEqual([]);
      const r = await signal(srv.cli, 'SIGTERM');
      expect(r.code, `${cmd[0]}: ${r.stderr}`).toBe(0);
      expect(r.stderr).not.toMatch(/EPIPE|Error:|at /);
    }
  });


  test('SIGHUP (the terminal closed) stops a server like SIGTERM: its clients get 1001, exit 0 (they saw 1006)', async () => {
    const srv = await serverCli(['echo-server']);
    const a = await libClient(srv.url);
    const r = await signal(srv.cli, 'SIGHUP');
    expect([r.code, r.signal], r.stderr).toEqual([0, null]);
    await until(() => a.closes.length === 1, 5000, 'the close');
    expect(a.closes[0].code).toBe(1001);
  });

  test('broadcast-server: every message reaches every client, its sender included; SIGTERM exits 0 promptly', async () => {
    const srv = await serverCli(['broadcast-server']);
    expect(srv.cli.stdout).toMatch(/^broadcast-server listening on ws:\/\//);
    const cs = [await libClient(srv.url), await libClient(srv.url), await libClient(srv.url)];
    await srv.cli.waitOut(/client 3 connected/);
    cs[1].client.send('to all');
    cs[2].client.send(Buffer.from([1, 2]));
    await until(() => cs.every((c) => c.messages.length === 2), 5000, 'two messages on every client');
    for (const c of cs) {
      expect(c.messages.map((m) => m.binary).sort()).toEqual([false, true]);
      expect(c.messages.find((m) => !m.binary)!.data).toBe('to all');
    }
    const r = await signal(srv.cli, 'SIGTERM');
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(3000);
    expect(r.stdout).toMatch(/SIGTERM: stopping/);
  });

  test('--no-deflate refuses permessage-deflate; the default accepts it', async () => {
    for (const [flags, expected] of [[[], true], [['--no-deflate'], false], [['--deflate'], true]] as const) {
      const srv = await serverCli(['echo-server', ...flags]);
      const client = new WebSocketClient({ url: srv.url, enableAutomaticReconnection: false });
      cleanups.push(() => client.clear());
      const st = await client.start();
      expect(st.success).toBe(true);
      const ext = Object.entries(st.headers).find(([k]) => k.toLowerCase() === 'sec-websocket-extensions')?.[1] ?? '';
      expect(ext.includes('permessage-deflate'), `${flags.join(' ')}: '${ext}'`).toBe(expected);
      client.stop();
      const r = await signal(srv.cli, 'SIGINT');
      expect([r.code, r.signal], `${flags.join(' ')}: ${r.stdout}${r.stderr}`).toEqual([0, null]);
    }
  });

  test('a port in use: one line, exit 1, nothing on stdout', async () => {
    const first = await serverCli(['echo-server']);
    const r = await run(['echo-server', '--port', String(first.port)]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^ixws: cannot listen on 127\\.0\\.0\\.1:${first.port}: `))]);
    expect(r.stdout).toBe('');
  });

  const hasV6Loopback = Object.values(os.networkInterfaces()).some((list) => list?.some((a) => a.address === '::1'));
  test.skipIf(!hasV6Loopback)('--host ::1 listens on IPv6 and prints the address in brackets (needs an IPv6 loopback)', async () => {
    const srv = spawnCli(['echo-server', '--host', '::1', '--port', '0']);
    const url = (await srv.waitOut(/listening on (ws:\/\/\[::1\]:\d+)\n/))[1];
    const r = await run(['connect', url], 'v6\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('v6\n');
    expect((await signal(srv, 'SIGINT')).code).toBe(0);
  });
});

// ------------------------------------------------------------ TLS

describe('TLS with a certificate made at test time', () => {
  let dir = '';
  let caFile = '';
  let certFile = '';
  let keyFile = '';

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-cli-tls-'));
    const ca = makeTestCa('ixws cli test CA');
    caFile = path.join(dir, 'ca.crt');
    fs.writeFileSync(caFile, ca.ca);
    const leaf = ca.leaf('localhost', ['DNS:localhost', 'IP:127.0.0.1']);
    ca.remove();
    ({ certFile, keyFile } = writePair(dir, 'server', leaf.cert, leaf.key));
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('echo-server --cert --key serves wss://; connect --ca verifies it; without --ca exit 1; --no-check connects', async () => {
    const srv = await serverCli(['echo-server', '--cert', certFile, '--key', keyFile]);
    expect(srv.url).toMatch(/^wss:\/\/127\.0\.0\.1:/);
    const ok = await run(['connect', srv.url, '--ca', caFile], 'over tls\n');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('over tls\n');
    // localhost is in the certificate too
    const byName = await run(['connect', `wss://localhost:${srv.port}`, '--ca', caFile], 'by name\n');
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toBe('by name\n');

    const untrusted = await run(['connect', srv.url], 'x\n');
    expect(untrusted.code).toBe(1);
    expect(untrusted.stdout).toBe('');
    expect(lines(untrusted.stderr)).toHaveLength(1);
    expect(untrusted.stderr).toMatch(/^ixws: cannot connect to wss:.*certificate/i);

    const unchecked = await run(['connect', srv.url, '--no-check'], 'unchecked\n');
    expect(unchecked.code, unchecked.stderr).toBe(0);
    expect(unchecked.stdout).toBe('unchecked\n');
    expect((await signal(srv.cli, 'SIGTERM')).code).toBe(0);
  });

  test('--ca replaces the system store (as curl --cacert): trusted by SSL_CERT_FILE alone, not with --ca of another CA', async () => {
    const srv = await serverCli(['echo-server', '--cert', certFile, '--key', keyFile]);
    // The system store is SSL_CERT_FILE: here, the CA that signed the server.
    const env = { SSL_CERT_FILE: caFile, SSL_CERT_DIR: path.join(dir, 'no-such-dir') };
    const bySystem = await run(['connect', srv.url], 'system\n', 15_000, { env });
    expect(bySystem.code, bySystem.stderr).toBe(0);
    expect(bySystem.stdout).toBe('system\n');
    const other = makeTestCa('another CA');
    const otherFile = path.join(dir, 'other-ca.crt');
    fs.writeFileSync(otherFile, other.ca);
    other.remove();
    const replaced = await run(['connect', srv.url, '--ca', otherFile], 'x\n', 15_000, { env });
    expect(replaced.code).toBe(1);
    expect(replaced.stderr).toMatch(/^ixws: cannot connect to wss:.*certificate/i);
    expect((await signal(srv.cli, 'SIGTERM')).code).toBe(0);
  });

  test('send over wss:// to receive --cert --key', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'tls-into-'));
    const file = path.join(tmp, 'tls-file.bin');
    fs.writeFileSync(file, randomBytes(300_000));
    const rcv = await serverCli(['receive', '--dir', into, '--once', '--cert', certFile, '--key', keyFile]);
    expect(rcv.url).toMatch(/^wss:/);
    const r = await run(['send', rcv.url, file, '--ca', caFile]);
    expect(r.code, r.stderr).toBe(0);
    expect(sha256(fs.readFileSync(path.join(into, 'tls-file.bin')))).toBe(sha256(fs.readFileSync(file)));
    expect((await finished(rcv.cli)).code).toBe(0);
  });

  /** `key` (PEM) encrypted with `passphrase`, written to `name` (0600) in the folder. */
  const encryptedKeyFile = (key: string, passphrase: string, name: string) => {
    const file = path.join(dir, name);
    const pem = crypto.createPrivateKey(key).export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase });
    fs.writeFileSync(file, pem, { mode: 0o600 });
    return file;
  };
  const textFile = (name: string, content: string) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, content, { mode: 0o600 });
    return file;
  };

  test('an encrypted --key serves with --passphrase-file (its first line; a pipe too); without it, or wrong, one line and exit 1', async () => {
    const encKey = encryptedKeyFile(fs.readFileSync(keyFile, 'utf8'), 'open sesame', 'server-encrypted.key');
    const pass = textFile('pass.txt', 'open sesame\nthe second line is not read\n');
    const srv = await serverCli(['echo-server', '--cert', certFile, '--key', encKey, '--passphrase-file', pass]);
    const ok = await run(['connect', srv.url, '--ca', caFile], 'locked key\n');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('locked key\n');
    expect((await signal(srv.cli, 'SIGTERM')).code).toBe(0);

    // As the help says: bash's <(printf ...) hands over a pipe, and the passphrase never touches the disk.
    const script = `exec "$NODE" "$IXWS" echo-server --cert "$CERT" --key "$KEY" --port 0 --passphrase-file <(printf %s "$PASS")`;
    const env = { NODE: process.execPath, IXWS, CERT: certFile, KEY: encKey, PASS: 'open sesame' };
    const piped = spawnCli(['-c', script], { cmd: 'bash', env });
    piped.child.stdin.end();
    const url = (await piped.waitOut(/listening on (wss:\/\/\S+)/))[1];
    const viaPipe = await run(['connect', url, '--ca', caFile], 'piped\n');
    expect(viaPipe.code, viaPipe.stderr).toBe(0);
    expect(viaPipe.stdout).toBe('piped\n');
    expect((await signal(piped, 'SIGTERM')).code).toBe(0);

    const none = await run(['echo-server', '--cert', certFile, '--key', encKey, '--port', '0']);
    expect(none.code).toBe(1);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/^ixws: cannot listen on 127\.0\.0\.1:0: TLS: the private key is encrypted: give its passphrase \(--passphrase-file\)\n$/);
    const wrong = await run(['receive', '--cert', certFile, '--key', encKey, '--passphrase-file', textFile('wrong.txt', 'guess\n'), '--port', '0']);
    expect(wrong.code).toBe(1);
    expect(lines(wrong.stderr)).toHaveLength(1);
    expect(wrong.stderr).toMatch(/^ixws: cannot listen on .*TLS: cannot load private key \(wrong passphrase\?\)/);
    const empty = await run(['echo-server', '--cert', certFile, '--key', encKey, '--passphrase-file', textFile('empty.txt', '\nopen sesame\n')]);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/^ixws: --passphrase-file: the first line of '.*empty\.txt' is empty/);
    const missing = await run(['echo-server', '--cert', certFile, '--key', encKey, '--passphrase-file', path.join(dir, 'no-such-file')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^ixws: --passphrase-file: cannot read '.*no-such-file' \(ENOENT\)/);
  });

  test('connect and send with --cert/--key (an encrypted key, --passphrase-file) to a server that verifies clients; without them, exit 1', async () => {
    const clients = makeTestCa('ixws cli clients CA');
    const user = clients.client('cli user');
    clients.remove();
    const userCert = textFile('user.crt', user.cert);
    const userKey = encryptedKeyFile(user.key, 'client pass', 'user-encrypted.key');
    const userPass = textFile('user-pass.txt', 'client pass\n');
    const server = libServer({
      host: '127.0.0.1',
      tls: { cert: fs.readFileSync(certFile, 'utf8'), key: fs.readFileSync(keyFile, 'utf8'), ca: clients.ca, verifyPeer: true },
    });
    const subjects: string[] = [];
    server.on('open', (_client: number, ctx: OpenContext) => subjects.push(new crypto.X509Certificate(ctx.tls!.peerCertificate).subject));
    server.on('message', (client: number, ctx: DataContext) => server.send(ctx.data, { clients: [client] }));
    const url = `wss://127.0.0.1:${server.port}`;
    const mine = ['--ca', caFile, '--cert', userCert, '--key', userKey, '--passphrase-file', userPass];

    const ok = await run(['connect', url, ...mine], 'with my certificate\n');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toBe('with my certificate\n');
    expect(subjects).toEqual(['CN=cli user']);

    const without = await run(['connect', url, '--ca', caFile], 'x\n');
    expect(without.code).toBe(1);
    expect(without.stdout).toBe('');
    expect(subjects).toHaveLength(1);

    const noPass = await run(['connect', url, '--ca', caFile, '--cert', userCert, '--key', userKey], 'x\n');
    expect(noPass.code).toBe(1);
    expect(lines(noPass.stderr)).toHaveLength(1);
    expect(noPass.stderr).toMatch(/^ixws: cannot connect to wss:.*: TLS: the private key is encrypted: give its passphrase \(--passphrase-file\)\n$/);

    // send takes the same flags (its receiver here is not 'ixws receive': it only needs to get through TLS).
    const sent = await run(['send', url, certFile, ...mine, '--timeout', '2']);
    expect(subjects).toEqual(['CN=cli user', 'CN=cli user']);
    expect(sent.stderr).not.toMatch(/cannot connect/);
  });
});

// ------------------------------------------------------------ send / receive

describe('send and receive', () => {
  test('a 64 MiB file: the receiver saves it with a matching SHA-256, --once exits 0, the progress bar reaches 100%', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const file = path.join(tmp, 'big.bin');
    const content = randomBytes(64 * 1024 * 1024);
    fs.writeFileSync(file, content);
    const expected = sha256(content);
    const rcv = await serverCli(['receive', '--dir', into, '--once']);
    const r = await run(['send', rcv.url, file, '--progress'], '', 60_000);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe(`sent big.bin (${content.length} bytes, sha256 ${expected}): saved as big.bin\n`);
    expect(r.stderr).toMatch(/\[#{30}\] 100%  64\.0\/64\.0 MiB/);
    const saved = fs.readFileSync(path.join(into, 'big.bin'));
    expect(saved.length).toBe(content.length);
    expect(sha256(saved)).toBe(expected);
    const done = await finished(rcv.cli, 10_000);
    expect(done.code).toBe(0);
    expect(done.stdout).toContain(`received big.bin (${content.length} bytes, sha256 ${expected} verified)`);
    fs.rmSync(file);
  }, 90_000);

  test('the same name twice: never overwritten (name, name.1); no bar when stderr is not a terminal', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const file = path.join(tmp, 'twice.txt');
    fs.writeFileSync(file, 'first version\n');
    fs.writeFileSync(path.join(into, 'twice.txt.1'), 'already here');
    const rcv = await serverCli(['receive', '--dir', into]);
    const a = await run(['send', rcv.url, file]);
    expect(a.code, a.stderr).toBe(0);
    fs.writeFileSync(file, 'second version, larger than one MiB? no: small\n');
    const b = await run(['send', rcv.url, file]);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/saved as twice\.txt\.2\n$/);
    expect(b.stderr).toBe('');
    expect(fs.readFileSync(path.join(into, 'twice.txt'), 'utf8')).toBe('first version\n');
    expect(fs.readFileSync(path.join(into, 'twice.txt.1'), 'utf8')).toBe('already here');
    expect(fs.readFileSync(path.join(into, 'twice.txt.2'), 'utf8')).toMatch(/^second version/);
    const r = await signal(rcv.cli, 'SIGINT');
    expect(r.code).toBe(0);
    expect(r.ms).toBeLessThan(3000);
  });

  test('a name of 255 bytes taken already: the next is cut short to fit with its .1 (it failed with ENAMETOOLONG and the path)', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const name = `${'é'.repeat(126)}abc`; // 255 bytes
    const file = path.join(fs.mkdtempSync(path.join(tmp, 'long-')), name);
    fs.writeFileSync(file, 'long name\n');
    const rcv = await serverCli(['receive', '--dir', into]);
    expect((await run(['send', rcv.url, file])).code).toBe(0);
    const b = await run(['send', rcv.url, file]);
    expect(b.code, b.stderr).toBe(0);
    const second = `${'é'.repeat(126)}a.1`;
    expect(Buffer.byteLength(second)).toBe(255);
    expect(b.stdout).toContain(`saved as ${second}\n`);
    expect(fs.readdirSync(into).sort()).toEqual([name, second].sort());
    expect((await signal(rcv.cli, 'SIGINT')).code).toBe(0);
  });

  test('a file shows under its name only once whole (written under a hidden name first); nothing else is left', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const file = path.join(tmp, 'whole.bin');
    const content = randomBytes(64 * 1024 * 1024);
    fs.writeFileSync(file, content);
    const rcv = await serverCli(['receive', '--dir', into]);
    const target = path.join(into, 'whole.bin');
    const sizes = new Set<number>();
    let watching = true;
    const watch = (async () => {
      while (watching) {
        try {
          sizes.add(fs.statSync(target).size);
        } catch {
          // not there yet
        }
        await new Promise((r) => setImmediate(r));
      }
    })();
    const r = await run(['send', rcv.url, file], '', 60_000);
    watching = false;
    await watch;
    expect(r.code, r.stderr).toBe(0);
    expect([...sizes]).toEqual([content.length]);
    expect(fs.readdirSync(into)).toEqual(['whole.bin']);
    expect((await signal(rcv.cli, 'SIGINT')).code).toBe(0);
  }, 90_000);

  test('receive rejects a bad checksum, a path as name, a text message; writes nothing; keeps serving', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const rcv = await serverCli(['receive', '--dir', into]);
    const c = await libClient(rcv.url);
    const good = encodeFileMessage('ok.bin', Buffer.from('payload')).message;
    const corrupt = Buffer.from(good);
    corrupt[corrupt.length - 1] ^= 1; // one bit of the content
    c.client.send(corrupt);
    // A hand-made header whose name climbs out of the directory.
    const json = Buffer.from(JSON.stringify({ version: 1, name: '../escape.bin', size: 1, sha256: sha256(Buffer.from('x')) }));
    const head = Buffer.alloc(8);
    head.write('IXWF', 0, 'latin1');
    head.writeUInt32BE(json.length, 4);
    c.client.send(Buffer.concat([head, json, Buffer.from('x')]));
    c.client.send('just text');
    c.client.send(good);
    await until(() => c.messages.length === 4, 5000, 'four verdicts');
    const verdicts = c.messages.map((m) => JSON.parse(m.data as string));
    expect(verdicts[0]).toEqual({ ok: false, error: expect.stringMatching(/^sha256 mismatch/) });
    expect(verdicts[1]).toEqual({ ok: false, error: 'the file name has a directory part' });
    expect(verdicts[2]).toEqual({ ok: false, error: expect.stringMatching(/expected a file/) });
    expect(verdicts[3]).toEqual({ ok: true, name: 'ok.bin', size: 7, sha256: sha256(Buffer.from('payload')) });
    expect(fs.readdirSync(into)).toEqual(['ok.bin']);
    expect(fs.existsSync(path.join(path.dirname(into), 'escape.bin'))).toBe(false);
    expect(rcv.cli.stderr).toMatch(/client 1: rejected a file: sha256 mismatch/);
    expect((await signal(rcv.cli, 'SIGTERM')).code).toBe(0);
  });

  test('a file over the receiver --max-size: the sender exits 1 with the close code', async () => {
    const into = fs.mkdtempSync(path.join(tmp, 'into-'));
    const file = path.join(tmp, 'too-big.bin');
    fs.writeFileSync(file, randomBytes(200_000));
    const rcv = await serverCli(['receive', '--dir', into, '--max-size', '100000']);
    const r = await run(['send', rcv.url, file]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^ixws: the connection closed before the receiver answered: 1009/)]);
    expect(fs.readdirSync(into)).toEqual([]);
    expect((await signal(rcv.cli, 'SIGINT')).code).toBe(0);
  });

  test('send to an echo-server (not a receiver): exit 1 at once, saying so', async () => {
    const srv = await serverCli(['echo-server']);
    const file = path.join(tmp, 'echoed.bin');
    fs.writeFileSync(file, randomBytes(5000));
    const r = await run(['send', srv.url, file]);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^ixws: ws:\/\/.* is not an ixws receiver: it answered with a binary message of \d+ bytes$/)]);
  });

  test('--timeout beyond what a timer can wait is a usage error (it fired at once)', async () => {
    const file = path.join(tmp, 'overflow.txt');
    fs.writeFileSync(file, 'x');
    const r = await run(['send', 'ws://127.0.0.1:1', file, '--timeout', '3000000']);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^ixws: --timeout: at most 2147483 seconds, got '3000000'/)]);
    // connect's --timeout is the engine's (which caps it itself): a long one is fine there.
    const c = await run(['connect', 'ws://127.0.0.1:1', '--timeout', '3000000']);
    expect(c.code, c.stderr).toBe(1);
    expect(c.stderr).toMatch(/^ixws: cannot connect/);
  });

  test('a receiver that stops reading: send gives up after --timeout without progress (it waited for ever)', async () => {
    const port = await deafServer();
    const file = path.join(tmp, 'unread.bin');
    fs.writeFileSync(file, randomBytes(24 * 1024 * 1024));
    const r = await run(['send', `ws://127.0.0.1:${port}`, file, '--timeout', '1'], '', 20_000);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^ixws: the receiver took nothing for 1 s: \d+ bytes of '.*unread\.bin' were still to send$/)]);
  }, 30_000);

  test('receive --once with other files arriving: each sender hears the truth (saved and told so, or told it was not)', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'once-'));
    const rcv = await serverCli(['receive', '--dir', dir, '--once']);
    const files = [0, 1, 2, 3].map((i) => {
      const f = path.join(tmp, `once-${i}.bin`);
      fs.writeFileSync(f, randomBytes(32 * 1024 * 1024));
      return f;
    });
    const results = await Promise.all(files.map((f) => run(['send', rcv.url, f], '', 60_000)));
    expect((await finished(rcv.cli)).code).toBe(0);
    const saved = fs.readdirSync(dir).sort();
    const told = results.filter((r) => r.code === 0).map((r) => /saved as (\S+)\n/.exec(r.stdout)![1]).sort();
    expect(told).toEqual(saved);
    expect(saved.length).toBeGreaterThanOrEqual(1);
    for (const r of results) if (r.code !== 0) expect(r.stderr).toMatch(/the receiver is stopping|closed before the receiver answered|cannot connect/);
  }, 90_000);

  test('a server that never answers: send gives up after --timeout, exit 1', async () => {
    const s = libServer(); // accepts, never replies
    const file = path.join(tmp, 'unanswered.txt');
    fs.writeFileSync(file, 'hello?');
    const r = await run(['send', `ws://127.0.0.1:${s.port}`, file, '--timeout', '0.5']);
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual([expect.stringMatching(/^ixws: no answer from the receiver within 0\.5 s/)]);
  });
});

describe('the public API only', () => {
  test("cli/ imports Node built-ins, its own files and '../lib/index' (the package's entry), nothing else", () => {
    const dir = path.join(root, 'cli');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
    expect(files).toContain('ixws.ts');
    const builtins = new Set(require('module').builtinModules as string[]);
    for (const f of files) {
      const src = fs.readFileSync(path.join(dir, f), 'utf8');
      const specs = [...src.matchAll(/(?:from|require\()\s*'([^']+)'/g)].map((m) => m[1]);
      for (const spec of specs) {
        const ok = builtins.has(spec) || /^\.\/[a-z-]+$/.test(spec) || spec === '../lib/index';
        expect(ok, `${f} imports '${spec}'`).toBe(true);
      }
    }
  });
});

describe('the file message format (cli/file-message.ts)', () => {
  test('round trip, and every malformed message is a FileMessageError', () => {
    const content = randomBytes(1000);
    const { message, header } = encodeFileMessage('a b.bin', content);
    expect(header).toEqual({ version: 1, name: 'a b.bin', size: 1000, sha256: sha256(content) });
    expect(message.subarray(0, 4).toString('latin1')).toBe('IXWF');
    const back = decodeFileMessage(message);
    expect(back.header).toEqual(header);
    expect(Buffer.compare(back.content, content)).toBe(0);

    const j = message.readUInt32BE(4);
    const withHeader = (h: unknown, body = content) => {
      const json = Buffer.from(JSON.stringify(h));
      const p = Buffer.alloc(8);
      p.write('IXWF', 0, 'latin1');
      p.writeUInt32BE(json.length, 4);
      return Buffer.concat([p, json, body]);
    };
    const cases: Array<[Buffer, RegExp]> = [
      [Buffer.alloc(0), /magic/],
      [Buffer.from('IXWG\0\0\0\x01{'), /magic/],
      [message.subarray(0, 8 + j - 1), /truncated header/],
      [message.subarray(0, message.length - 1), /size mismatch/],
      [Buffer.concat([message, Buffer.from([0])]), /size mismatch/],
      [(() => { const m = Buffer.from(message); m.writeUInt32BE(0, 4); return m; })(), /bad header length 0/],
      [(() => { const m = Buffer.from(message); m.writeUInt32BE(70000, 4); return m; })(), /bad header length/],
      [withHeader([1, 2]), /not a JSON object/],
      [withHeader({ ...header, version: 2 }), /unsupported version 2/],
      [withHeader({ ...header, name: '..' }), /not a file name/],
      [withHeader({ ...header, name: 'a/b' }), /directory part/],
      [withHeader({ ...header, name: 'a\\b' }), /directory part/],
      [withHeader({ ...header, name: 'bell\u0007' }), /control characters/],
      [withHeader({ ...header, name: 'csi\u009b' }), /control characters/],
      [withHeader({ ...header, name: 'x'.repeat(256) }), /longer than 255 bytes/],
      [withHeader({ ...header, size: -1 }), /valid size/],
      [withHeader({ ...header, sha256: 'ABC' }), /valid sha256/],
      [withHeader({ ...header, sha256: sha256(Buffer.from('other')) }), /sha256 mismatch/],
    ];
    for (const [msg, re] of cases) {
      expect(() => decodeFileMessage(msg), String(re)).toThrow(FileMessageError);
      expect(() => decodeFileMessage(msg), String(re)).toThrow(re);
    }
    expect(() => encodeFileMessage('../x', content)).toThrow(/directory part/);
  });

  test('the progress bar line', () => {
    expect(renderBar(0, 100 * 1024 * 1024, 0, 10)).toBe('[----------]   0%  0.0/100.0 MiB  0.0 MiB/s');
    expect(renderBar(50 * 1024 * 1024, 100 * 1024 * 1024, 2000, 10)).toBe('[#####-----]  50%  50.0/100.0 MiB  25.0 MiB/s');
    expect(renderBar(200, 100, 1000, 4)).toBe('[####] 100%  0.0/0.0 MiB  0.0 MiB/s');
  });
});

// ------------------------------------------------------------ the npm tarball

describe('the bin from the npm tarball', () => {
  test('npm pack, npm install (offline), then node_modules/.bin/ixws: executable, --help, echo-server + connect', async () => {
    // The package as npm packs it: package.json ("bin", "files") and the compiled dist/.
    const stage = fs.mkdtempSync(path.join(tmp, 'stage-'));
    fs.copyFileSync(path.join(root, 'package.json'), path.join(stage, 'package.json'));
    fs.cpSync(outDir, path.join(stage, 'dist'), { recursive: true });
    const npm = (args: string[], cwd: string) =>
      execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, env: { ...process.env, npm_config_update_notifier: 'false' } });
    const packed = JSON.parse(npm(['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], stage)) as Array<{ filename: string; files: Array<{ path: string }> }>;
    expect(packed[0].files.map((f) => f.path)).toContain('dist/cli/ixws.js');
    const tgz = path.join(tmp, packed[0].filename);
    cleanups.push(() => fs.rmSync(tgz, { force: true }));

    // A project that installs it, offline: the build-time dependencies are
    // stubs (scripts are off), node-gyp-build is the one in our node_modules.
    const proj = fs.mkdtempSync(path.join(tmp, 'proj-'));
    for (const [name, version] of [['cmake-js', '8.0.0'], ['node-addon-api', '8.5.0']]) {
      fs.mkdirSync(path.join(proj, 'stubs', name), { recursive: true });
      fs.writeFileSync(path.join(proj, 'stubs', name, 'package.json'), JSON.stringify({ name, version }));
    }
    fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({
      name: 'proj',
      private: true,
      dependencies: {
        'cmake-js': 'file:stubs/cmake-js',
        'node-addon-api': 'file:stubs/node-addon-api',
        'node-gyp-build': `file:${path.join(root, 'node_modules', 'node-gyp-build')}`,
      },
    }));
    npm(['install', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--no-package-lock', tgz], proj);
    // What the skipped install script would have built.
    const pkgDir = path.join(proj, 'node_modules', 'ix-websocket');
    fs.mkdirSync(path.join(pkgDir, 'build', 'Release'), { recursive: true });
    fs.copyFileSync(path.join(root, 'build', 'Release', 'ix_websocket.node'), path.join(pkgDir, 'build', 'Release', 'ix_websocket.node'));

    const bin = path.join(proj, 'node_modules', '.bin', 'ixws');
    expect(fs.readFileSync(bin, 'utf8').split('\n')[0]).toBe('#!/usr/bin/env node');
    expect(fs.statSync(bin).mode & 0o111).not.toBe(0);
    // Run as a program (no `node` in front): the shebang and the mode do the work.
    const help = spawnCli(['--help'], { cmd: bin, cwd: proj });
    const h = await finished(help);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^Usage: ixws <command>/);

    const srv = spawnCli(['echo-server', '--port', '0'], { cmd: bin, cwd: proj });
    const url = (await srv.waitOut(/listening on (ws:\/\/\S+)/))[1];
    const conn = spawnCli(['connect', url], { cmd: bin, cwd: proj });
    conn.child.stdin.end('from the tarball\n');
    const c = await finished(conn);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout, c.stderr).toBe('from the tarball\n');
    expect((await signal(srv, 'SIGINT')).code).toBe(0);
  }, 90_000);
});
