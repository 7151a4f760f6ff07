// Server processes for the multi-process suites: test/fixtures/topic-node.js
// run on the compiled package, driven by JSON lines (see that file).
import { ChildProcess, spawn } from 'child_process';
import * as path from 'path';
import { until } from './events';

const fixture = path.join(__dirname, '..', 'fixtures', 'topic-node.js');

export interface NodeOptions {
  port?: number;
  reusePort?: boolean;
  /** redis:// url: the server gets a Redis bus */
  redis?: string;
  prefix?: string;
}

/** One server process and every line it printed. */
export class ServerNode {
  readonly lines: any[] = [];
  private buf = '';
  private nextId = 1;
  exited = false;

  constructor(readonly child: ChildProcess, readonly name: string) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString('utf8');
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        try {
          this.lines.push(JSON.parse(line));
        } catch {
          this.lines.push({ ev: 'stdout', line });
        }
      }
    });
    child.stderr!.on('data', (d: Buffer) => this.lines.push({ ev: 'stderr', text: d.toString('utf8') }));
    child.on('exit', () => (this.exited = true));
  }

  of(ev: string): any[] {
    return this.lines.filter((l) => l.ev === ev);
  }

  waitFor(pred: (l: any) => boolean, timeoutMs: number, what: string): Promise<any> {
    return until(
      () => {
        const hit = this.lines.find(pred);
        if (hit) return hit;
        if (this.exited) throw new Error(`${this.name} exited while waiting for ${what}: ${this.tail()}`);
        return undefined;
      },
      timeoutMs,
      `${this.name}: ${what} (${this.tail()})`,
    );
  }

  /** Sends a command and waits for its answer (the line with its id and ev). */
  async ask(cmd: Record<string, unknown>, answer: string, timeoutMs = 15000): Promise<any> {
    const id = this.nextId++;
    this.child.stdin!.write(JSON.stringify({ ...cmd, id }) + '\n');
    return this.waitFor((l) => l.ev === answer && l.id === id, timeoutMs, `'${answer}' to ${JSON.stringify(cmd)}`);
  }

  tail(): string {
    return JSON.stringify(this.lines.slice(-6));
  }

  async stop(): Promise<void> {
    if (this.exited) return;
    const gone = new Promise<void>((r) => this.child.once('exit', () => r()));
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

/** Starts a server process on the package compiled at `pkgIndex`; resolves once it listens (or failed to). */
export async function startNode(pkgIndex: string, name: string, options: NodeOptions): Promise<ServerNode> {
  const child = spawn(process.execPath, [fixture, JSON.stringify(options)], {
    env: { ...process.env, IXWS_PKG: pkgIndex },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const node = new ServerNode(child, name);
  await node.waitFor((l) => l.ev === 'started' || l.ev === 'startFailed', 20000, 'start');
  return node;
}
