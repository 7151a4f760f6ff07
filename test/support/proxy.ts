// A real HTTP CONNECT proxy for the client's proxy tests: Debian's tinyproxy
// (peers.tinyproxy()), started on a free loopback port with a config of its
// own in a temp folder, stopped (and the folder removed) by stop().
//
// tinyproxy answers CONNECT with 407 when BasicAuth is set and the request
// carries no or wrong Proxy-Authorization, with 403 for a port not listed in
// ConnectPort (when any is listed), and with 500 when it cannot reach the
// target; its log (LogLevel Info) names every CONNECT it served, which the
// tests read to prove a connection went through it.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';

export interface ProxyOptions {
  /** Ports CONNECT may reach (others get 403); none listed: any port. */
  connectPorts?: number[];
  /** Basic credentials the proxy requires (else 407). */
  auth?: { user: string; pass: string };
}

export interface RunningProxy {
  port: number;
  /** http://[user:pass@]127.0.0.1:port */
  url: string;
  /** The "host:port" targets of the CONNECT requests it received, in order. */
  connects(): string[];
  /** Its log so far (for failure messages). */
  log(): string;
  stop(): Promise<void>;
}

/** A port that was free a moment ago (tinyproxy binds it itself). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const kill = setTimeout(() => child.kill('SIGKILL'), 3000);
    child.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** Starts tinyproxy (`exe`) and waits until it accepts connections (bounded). */
export async function startTinyproxy(exe: string, options: ProxyOptions = {}): Promise<RunningProxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-tinyproxy-'));
  const logFile = path.join(dir, 'tinyproxy.log');
  let lastError = '';
  const readLog = (): string => {
    try {
      return fs.readFileSync(logFile, 'utf8');
    } catch {
      return ''; // nothing logged yet
    }
  };
  // A port picked free can be taken before tinyproxy binds it: a few tries.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 30',
      'MaxClients 64',
      'LogLevel Info',
      `LogFile "${logFile}"`,
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      ...(options.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
      ...(options.auth ? [`BasicAuth ${options.auth.user} ${options.auth.pass}`] : []),
    ];
    const confFile = path.join(dir, 'tinyproxy.conf');
    fs.writeFileSync(confFile, `${conf.join('\n')}\n`);
    const child = spawn(exe, ['-d', '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const deadline = Date.now() + 5000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    if (up) {
      const auth = options.auth ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.pass)}@` : '';
      return {
        port,
        url: `http://${auth}127.0.0.1:${port}`,
        connects: () => [...readLog().matchAll(/: CONNECT (\S+) HTTP\/1\.[01]/g)].map((m) => m[1]!),
        log: readLog,
        stop: async () => {
          await stopChild(child);
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    lastError = `${stderr}${readLog()}`.trim().split('\n').slice(-3).join(' | ');
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`tinyproxy did not start: ${lastError}`);
}
