// Runs a page from test/peers/ in headless Chromium: the page is served on
// 127.0.0.1 (its origin is http://127.0.0.1:<port>) and POSTs one JSON
// result to /result, which runPage resolves with. The browser and the page
// server are stopped after the test (defer).
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import type { AddressInfo } from 'net';
import * as os from 'os';
import * as path from 'path';
import { defer } from './cleanup';
import { peerEnv } from './peers';

export interface PageServer {
  port: number;
  /** the page's origin, as the browser sends it in Origin */
  origin: string;
  result: Promise<unknown>;
}

/** Serves `file` at /?… and resolves `result` with what the page POSTs to /result. */
export async function servePage(file: string): Promise<PageServer> {
  const page = fs.readFileSync(file);
  let deliver: (r: unknown) => void = () => undefined;
  const result = new Promise<unknown>((r) => (deliver = r));
  const server = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/result') {
      const chunks: Buffer[] = [];
      req.on('data', (d: Buffer) => chunks.push(d));
      req.on('end', () => {
        res.end('ok');
        try {
          deliver(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (e) {
          deliver({ error: `unreadable result: ${e}` });
        }
      });
      return;
    }
    if (req.method === 'GET' && req.url?.startsWith('/?')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(page);
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  defer(() => new Promise((r) => server.close(() => r(undefined))));
  defer(() => server.closeAllConnections());
  const port = (server.address() as AddressInfo).port;
  return { port, origin: `http://127.0.0.1:${port}`, result };
}

/**
 * Opens http://127.0.0.1:<page port>/?<query> in headless Chromium and
 * resolves with the page's result, or { error } when the browser exits first
 * or nothing arrives within timeoutMs.
 */
export async function runPage(chromium: string, web: PageServer, query: string, timeoutMs = 45000): Promise<any> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-chromium-'));
  defer(() => fs.rmSync(profile, { recursive: true, force: true }));
  const p = spawn(
    chromium,
    [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      `--user-data-dir=${profile}`,
      `http://127.0.0.1:${web.port}/?${query}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true, env: peerEnv() },
  );
  let stderr = '';
  p.stderr!.setEncoding('utf8');
  p.stderr!.on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  let exited = false;
  const exit = new Promise<number | null>((r) =>
    p.once('exit', (code) => {
      exited = true;
      r(code);
    }),
  );
  const kill = async () => {
    if (exited || p.pid === undefined) return;
    try {
      process.kill(-p.pid, 'SIGKILL'); // the group we started: the browser's helpers too
    } catch {
      // gone already
    }
    await Promise.race([exit, new Promise((r) => setTimeout(r, 3000))]);
  };
  defer(kill);
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    web.result,
    exit.then((code) => ({ error: `chromium exited (${code}) first: ${stderr}` })),
    new Promise((res) => {
      timer = setTimeout(() => res({ error: `no result within ${timeoutMs} ms: ${stderr}` }), timeoutMs);
    }),
  ]);
  clearTimeout(timer);
  await kill();
  return r;
}
