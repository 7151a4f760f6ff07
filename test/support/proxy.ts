// Real HTTP CONNECT proxies for the client's proxy tests: Debian's tinyproxy
// (peers.tinyproxy()) and squid (peers.squid()), each started on a free
// loopback port with a config of its own in a temp folder, stopped (and the
// folder removed) by stop().
//
// tinyproxy answers CONNECT with 407 when BasicAuth is set and the request
// carries no or wrong Proxy-Authorization, with 403 for a port not listed in
// ConnectPort (when any is listed), and with 500 when it cannot reach the
// target; its log (LogLevel Info) names every CONNECT it served, which the
// tests read to prove a connection went through it.
import { spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { md5crypt } from './md5crypt';
import { canConnect, closedPort } from './ports';
import { peerEnv } from './peers';

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

/** A port that was free a moment ago (the proxy binds it itself). */
const freePort = closedPort;

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
    const child = spawn(exe, ['-d', '-c', confFile], { stdio: ['ignore', 'ignore', 'pipe'], env: peerEnv() });
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

/**
 * Starts squid (`exe`) in the foreground (-N) and waits until it accepts
 * connections (bounded). With `auth`, Basic credentials are checked by
 * squid's basic_ncsa_auth helper against a password file made with
 * support/md5crypt.ts ("$apr1$", as `openssl passwd -apr1` makes); a missing or wrong password gets 407. CONNECT to a
 * port not in `connectPorts` (when given) gets 403; an unreachable target 503.
 */
export async function startSquid(exe: string, options: ProxyOptions = {}): Promise<RunningProxy> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-squid-'));
  // squid started as root runs as its own user ('proxy' on Debian): it must
  // be able to write its logs here.
  fs.chmodSync(dir, 0o777);
  const accessLog = path.join(dir, 'access.log');
  const readLog = (): string => {
    try {
      return fs.readFileSync(accessLog, 'utf8');
    } catch {
      return '';
    }
  };
  const helper = ['/usr/lib/squid/basic_ncsa_auth', '/usr/lib64/squid/basic_ncsa_auth', '/usr/libexec/squid/basic_ncsa_auth'].find((p) =>
    fs.existsSync(p),
  );
  if (options.auth) {
    if (!helper) throw new Error("squid's basic_ncsa_auth helper not found");
    const hash = md5crypt(options.auth.pass);
    fs.writeFileSync(path.join(dir, 'passwd'), `${options.auth.user}:${hash}\n`, { mode: 0o644 });
  }
  let lastError = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = [
      `http_port 127.0.0.1:${port}`,
      `pid_filename ${path.join(dir, 'squid.pid')}`,
      `cache_log ${path.join(dir, 'cache.log')}`,
      `access_log stdio:${accessLog}`,
      'cache deny all',
      'cache_mem 8 MB',
      `coredump_dir ${dir}`,
      'pinger_enable off',
      'shutdown_lifetime 0 seconds',
      'acl CONNECT method CONNECT',
      ...(options.connectPorts?.length ? [`acl allowed_ports port ${options.connectPorts.join(' ')}`, 'http_access deny CONNECT !allowed_ports'] : []),
      ...(options.auth
        ? [
            `auth_param basic program ${helper} ${path.join(dir, 'passwd')}`,
            'auth_param basic children 1 startup=1 idle=1',
            'acl authed proxy_auth REQUIRED',
            'http_access allow authed',
          ]
        : ['acl local src 127.0.0.1', 'http_access allow local']),
      'http_access deny all',
    ];
    const confFile = path.join(dir, 'squid.conf');
    fs.writeFileSync(confFile, `${conf.join('\n')}\n`, { mode: 0o644 });
    const child = spawn(exe, ['-N', '-f', confFile], { stdio: ['ignore', 'ignore', 'pipe'], env: peerEnv() });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const deadline = Date.now() + 15000;
    let up = false;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await canConnect(port)) {
        up = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (up) {
      const auth = options.auth ? `${encodeURIComponent(options.auth.user)}:${encodeURIComponent(options.auth.pass)}@` : '';
      return {
        port,
        url: `http://${auth}127.0.0.1:${port}`,
        // access.log: "... TCP_TUNNEL/200 ... CONNECT host:port user ..."
        connects: () => [...readLog().matchAll(/ CONNECT (\S+) /g)].map((m) => m[1]!),
        log: readLog,
        stop: async () => {
          await stopChild(child);
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    let cacheLog = '';
    try {
      cacheLog = fs.readFileSync(path.join(dir, 'cache.log'), 'utf8');
    } catch {
      // none
    }
    lastError = `${stderr}${cacheLog}`.trim().split('\n').slice(-3).join(' | ');
  }
  fs.rmSync(dir, { recursive: true, force: true });
  throw new Error(`squid did not start: ${lastError}`);
}
