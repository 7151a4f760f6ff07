// A redis-server of a test's own: a free loopback port, a temporary folder,
// no persistence; stopped (or killed, to simulate a crash) and restarted on
// the same port by the suite.
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { closedPort } from './ports';
import { peerEnv } from './peers';

/** Sends one inline command and returns the first reply line (or throws). */
export function redisCommand(port: number, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let got = '';
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`redis ${command}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => s.write(`${command}\r\n`));
    s.on('data', (d) => {
      got += d.toString('utf8');
      if (got.includes('\r\n')) {
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

export class RedisServer {
  private child: ChildProcess | undefined;
  private log = '';
  readonly dir: string;

  private constructor(readonly exe: string, readonly port: number) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-redis-'));
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  static async start(exe: string): Promise<RedisServer> {
    const r = new RedisServer(exe, await closedPort());
    await r.run();
    return r;
  }

  /** (Re)starts the server on its port; resolves when it answers PING. */
  async run(): Promise<void> {
    this.log = '';
    const child = spawn(
      this.exe,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir, '--daemonize', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: peerEnv() },
    );
    this.child = child;
    child.stdout!.on('data', (d) => (this.log += d));
    child.stderr!.on('data', (d) => (this.log += d));
    const deadline = Date.now() + 10000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited ${child.exitCode}: ${this.log.slice(-500)}`);
      try {
        if ((await redisCommand(this.port, 'PING', 500)).startsWith('+PONG')) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer within 10 s: ${this.log.slice(-500)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Freezes the server (SIGSTOP): its sockets stay open and nothing answers, as a hung Redis. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  /** Lets a paused server run again (SIGCONT). */
  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server at once (SIGKILL: no goodbye to its clients). */
  async kill(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    if (!c || c.exitCode !== null) return;
    const gone = new Promise<void>((r) => c.once('exit', () => r()));
    c.kill('SIGKILL');
    await gone;
  }

  async stop(): Promise<void> {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
