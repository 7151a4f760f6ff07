// System peers some suites need (Python `websockets`, Chromium, proxies,
// Redis, network namespaces), found once per test process.
//
// `npm test` must pass on a machine that has only Node and a compiler: a
// suite whose peer is missing is skipped there, and says why and how to
// install the peer (on stderr and in the skipped suite's title). CI installs
// every peer and sets IXWS_REQUIRE_PEERS=1: there a missing peer is a failed
// test, never a silent skip. IXWS_SKIP_PEERS=python,chromium (or the older
// IXWS_SKIP_PYTHON=1 / IXWS_SKIP_BROWSER=1) skips peers on purpose; that is
// printed too, and wins over IXWS_REQUIRE_PEERS.
//
// Usage:
//   import { peers, describeWithPeers } from './support/peers';
//   describeWithPeers([peers.python()], 'Python websockets', (found) => {
//     test('…', () => spawn(found.python.exe, …));
//   });
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { describe, test } from 'vitest';

export type PeerId = 'python' | 'chromium' | 'tinyproxy' | 'squid' | 'redis' | 'netns' | 'pty' | 'strace' | 'openssl';

export interface Peer {
  /** Short name used by IXWS_SKIP_PEERS. */
  id: PeerId;
  /** What the suite needs, for messages. */
  what: string;
  /** The command that installs it on Debian/Ubuntu. */
  install: string;
  /** Set when the peer was found: the executable to run. */
  exe?: string;
  /** Set when the peer was found: its version line. */
  version?: string;
  /** Set when the peer is not usable: why (not found, skipped on purpose, …). */
  missing?: string;
  /** True when the peer was skipped on purpose (IXWS_SKIP_PEERS & co). */
  skippedOnPurpose?: boolean;
}

/** CI mode: a missing peer fails instead of skipping. */
export const requirePeers = (): boolean => process.env.IXWS_REQUIRE_PEERS === '1';

function skippedOnPurpose(id: PeerId): string | undefined {
  const list = (process.env.IXWS_SKIP_PEERS ?? '').split(/[\s,]+/).filter(Boolean);
  if (list.includes(id) || list.includes('all')) return `IXWS_SKIP_PEERS=${process.env.IXWS_SKIP_PEERS}`;
  if (id === 'python' && process.env.IXWS_SKIP_PYTHON === '1') return 'IXWS_SKIP_PYTHON=1';
  if (id === 'chromium' && process.env.IXWS_SKIP_BROWSER === '1') return 'IXWS_SKIP_BROWSER=1';
  return undefined;
}

/**
 * The environment for a peer program: this process's, without LD_PRELOAD
 * (test/sanitize/binding.sh preloads the ASan runtime for node processes
 * loading the sanitized addon; a peer such as Chromium must not get it).
 */
export function peerEnv(): NodeJS.ProcessEnv {
  const { LD_PRELOAD: _preload, ...env } = process.env;
  return env;
}

/** Runs exe with args; the first line of its output when it exits with 0. */
function probe(exe: string, args: string[], timeoutMs = 20000): { ok: true; line: string } | { ok: false; why: string } {
  const r = spawnSync(exe, args, { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'], env: peerEnv() });
  if (r.error) return { ok: false, why: `${exe}: ${(r.error as NodeJS.ErrnoException).code ?? r.error.message}` };
  if (r.status !== 0) {
    const err = `${r.stderr ?? ''}`.trim().split('\n').pop() ?? '';
    return { ok: false, why: `${exe} ${args.join(' ')} exited ${r.status ?? r.signal}${err ? `: ${err.slice(0, 200)}` : ''}` };
  }
  const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim();
  return { ok: true, line: out.split('\n')[0] ?? '' };
}

/** The first candidate whose probe succeeds; else every candidate's failure. */
function firstWorking(candidates: string[], args: string[]): { exe: string; line: string } | { why: string } {
  const whys: string[] = [];
  for (const exe of candidates) {
    const r = probe(exe, args);
    if (r.ok) return { exe, line: r.line };
    whys.push(r.why);
  }
  return { why: whys.join('; ') };
}

/** Candidate paths for a program that may live in an sbin folder not on PATH. */
function programCandidates(name: string, envVar?: string): string[] {
  const dirs = (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const d of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']) if (!dirs.includes(d)) dirs.push(d);
  const found = dirs.map((d) => path.join(d, name)).filter((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch {
      return false;
    }
  });
  const fromEnv = envVar ? process.env[envVar] : undefined;
  const list = [...(fromEnv ? [fromEnv] : []), ...found];
  // Nothing executable anywhere: still try the bare name, for the message.
  return list.length ? [...new Set(list)] : [name];
}

const cache = new Map<PeerId, Peer>();

function find(id: PeerId, what: string, install: string, detect: () => { exe: string; version: string } | { why: string }): Peer {
  const known = cache.get(id);
  if (known) return known;
  const peer: Peer = { id, what, install };
  const onPurpose = skippedOnPurpose(id);
  if (onPurpose) {
    peer.missing = `skipped on purpose (${onPurpose})`;
    peer.skippedOnPurpose = true;
  } else {
    const r = detect();
    if ('why' in r) peer.missing = r.why;
    else {
      peer.exe = r.exe;
      peer.version = r.version;
    }
  }
  cache.set(id, peer);
  return peer;
}

function program(id: PeerId, what: string, install: string, name: string, args: string[], envVar?: string): Peer {
  return find(id, what, install, () => {
    const r = firstWorking(programCandidates(name, envVar), args);
    return 'why' in r ? { why: `no working ${name} (${r.why})` } : { exe: r.exe, version: r.line };
  });
}

export const peers = {
  /** python3 with the `websockets` module ($IXWS_PYTHON first). */
  python: (): Peer =>
    find('python', "Python 3 with the 'websockets' module", 'apt-get install python3-websockets', () => {
      const candidates = [process.env.IXWS_PYTHON, 'python3', '/usr/bin/python3'].filter((x): x is string => !!x);
      const r = firstWorking([...new Set(candidates)], ['-c', 'import websockets; print(websockets.__version__)']);
      return 'why' in r ? { why: `no Python with the websockets module (${r.why})` } : { exe: r.exe, version: `websockets ${r.line}` };
    }),
  /** python3 whose standard `pty` module can open a pseudo-terminal ($IXWS_PYTHON first). */
  pty: (): Peer =>
    find('pty', "Python 3 with a working 'pty' module (pseudo-terminals)", 'apt-get install python3', () => {
      const candidates = [process.env.IXWS_PYTHON, 'python3', '/usr/bin/python3'].filter((x): x is string => !!x);
      const r = firstWorking([...new Set(candidates)], ['-c', 'import os, pty, sys; m, s = pty.openpty(); print("pty ok", os.ttyname(s), sys.version.split()[0])']);
      return 'why' in r ? { why: `no Python that opens a pseudo-terminal (${r.why})` } : { exe: r.exe, version: r.line };
    }),
  /** A Chromium/Chrome that runs headless ($IXWS_CHROMIUM first). */
  chromium: (): Peer =>
    find('chromium', 'headless Chromium', 'apt-get install chromium', () => {
      const candidates = [process.env.IXWS_CHROMIUM, 'chromium', 'chromium-browser', 'google-chrome'].filter((x): x is string => !!x);
      const r = firstWorking([...new Set(candidates)], ['--version']);
      return 'why' in r ? { why: `no chromium found (${r.why})` } : { exe: r.exe, version: r.line };
    }),
  /** tinyproxy, an HTTP CONNECT proxy. */
  tinyproxy: (): Peer => program('tinyproxy', 'tinyproxy (HTTP proxy)', 'apt-get install tinyproxy', 'tinyproxy', ['-v'], 'IXWS_TINYPROXY'),
  /** squid, an HTTP proxy. */
  squid: (): Peer => program('squid', 'squid (HTTP proxy)', 'apt-get install squid', 'squid', ['-v'], 'IXWS_SQUID'),
  /** The openssl command-line tool (x509-support.test.ts checks support/x509.ts and support/md5crypt.ts against it). */
  openssl: (): Peer => program('openssl', 'the openssl command-line tool', 'apt-get install openssl', 'openssl', ['version']),
  /** redis-server. */
  redis: (): Peer => program('redis', 'redis-server', 'apt-get install redis-server', 'redis-server', ['--version'], 'IXWS_REDIS_SERVER'),
  /** strace, allowed to trace a child (ptrace): probed by tracing `true`. */
  strace: (): Peer =>
    find('strace', 'strace (counts system calls; needs ptrace)', 'apt-get install strace', () => {
      const r = firstWorking(programCandidates('strace', 'IXWS_STRACE'), ['-V']);
      if ('why' in r) return { why: `no working strace (${r.why})` };
      const traced = probe(r.exe, ['-f', '-qq', '-o', '/dev/null', '--', 'true']);
      return traced.ok ? { exe: r.exe, version: r.line } : { why: `strace cannot trace here (${traced.why})` };
    }),
  /**
   * Network namespaces with `ip` and `nft` inside them: needs iproute2,
   * nftables, util-linux's unshare and the right to create namespaces (root
   * or CAP_SYS_ADMIN). Probed by creating one and listing its ruleset.
   */
  netns: (): Peer =>
    find('netns', 'network namespaces with ip and nft (root)', 'apt-get install iproute2 nftables util-linux, and run as root', () => {
      for (const tool of ['ip', 'nft', 'unshare']) {
        const c = programCandidates(tool);
        if (!c.some((p) => path.isAbsolute(p))) return { why: `${tool} not found` };
      }
      const ip = programCandidates('ip')[0];
      const nft = programCandidates('nft')[0];
      const unshare = programCandidates('unshare')[0];
      const r = probe(unshare, ['--net', '--', 'sh', '-c', `"${ip}" link set lo up && "${nft}" list ruleset >/dev/null && echo ok`], 10000);
      return r.ok ? { exe: ip, version: 'unshare --net works' } : { why: `cannot create a network namespace (${r.why})` };
    }),
};

/** One line that says what is missing, why, and how to get it. */
export function skipReason(peer: Peer): string {
  if (!peer.missing) return '';
  if (peer.skippedOnPurpose) return `${peer.what}: ${peer.missing}`;
  return `${peer.what} not available: ${peer.missing}; install with: ${peer.install}`;
}

/** Peers keyed by id, as handed to a suite's body. */
export type Found = Partial<Record<PeerId, Peer & { exe: string }>>;

const printed = new Set<string>();
function note(line: string): void {
  if (printed.has(line)) return;
  printed.add(line);
  process.stderr.write(`${line}\n`);
}

/**
 * A describe() whose tests need the given peers. All found: an ordinary
 * suite. One missing: the suite's tests are registered as skipped, under a
 * title that gives the reason and install command (also printed on stderr);
 * with IXWS_REQUIRE_PEERS=1 a failing test "<peer> is available" is added
 * instead, unless the peer was skipped on purpose.
 */
export function describeWithPeers(needs: Peer[], title: string, body: (found: Found) => void): void {
  const missing = needs.filter((p) => p.missing);
  const found: Found = {};
  for (const p of needs) if (!p.missing) found[p.id] = p as Peer & { exe: string };
  if (!missing.length) {
    for (const p of needs) note(`[peers] "${title}" uses ${p.what}: ${p.version} (${p.exe})`);
    describe(title, () => body(found));
    return;
  }
  const reasons = missing.map(skipReason);
  const required = requirePeers() ? missing.filter((p) => !p.skippedOnPurpose) : [];
  if (required.length) {
    describe(title, () => {
      for (const p of required) {
        test(`${p.what} is available (IXWS_REQUIRE_PEERS=1)`, () => {
          throw new Error(`${skipReason(p)} (IXWS_REQUIRE_PEERS=1 turns a missing peer into a failure)`);
        });
      }
      // The suite's own tests would only fail for the same reason.
      describe.skip('needs the peers above', () => body(found));
    });
    return;
  }
  for (const r of reasons) note(`[peers] skipping "${title}": ${r}`);
  describe.skip(`${title} [skipped: ${reasons.join(' | ')}]`, () => body(found));
}
