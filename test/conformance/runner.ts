// Runs the conformance cases against our server (the suite is a raw client
// that masks its frames) or against our client (the suite is a raw fake
// server that answers the handshake itself), one fresh connection per case,
// and prints Autobahn-style verdicts.
import * as crypto from 'crypto';
import * as net from 'net';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerSend,
  websocketServerStart,
} from '../../lib/index';
import type { ClientOptions, ClientStartStatus, EventMethod } from '../../lib/index';
import { Collector, Ev } from '../support';
import { FrameSpec, acceptKey, encodeFrame, parseHead } from '../support/wire';
import { MessageDeflater, MessageInflater, Pmd, ReadResult, Reader, parsePmdResponse } from './wire';

export type Side = 'server' | 'client';
export type VerdictKind = 'OK' | 'NON-STRICT' | 'FAILED';

/** Thrown by a case (or its helpers) for a FAILED verdict. */
export class Fail extends Error {}

export interface Link {
  /** which of our endpoints is under test */
  side: Side;
  /** our endpoint has permessage-deflate enabled (server: accepts it; client: offers it) */
  ourDeflate: boolean;
  /** what the handshake agreed on (undefined: no extension) */
  pmd: Pmd | undefined;
  /** server side: our server's HTTP status and response headers; client side: the request headers */
  status: number;
  headers: Record<string, string>;
  /** client side: what websocketClientStart resolved to */
  startStatus?: Promise<ClientStartStatus>;
  sock: net.Socket;
  reader: Reader;
  /** records a reason for a NON-STRICT verdict */
  note(why: string): void;
  /** writes raw bytes, in pieces of `chop` bytes if given (yielding between pieces) */
  write(b: Buffer, chop?: number): Promise<void>;
  /** encodes (masking when the suite is the client) and writes frames in one go or chopped */
  send(frames: FrameSpec | FrameSpec[], chop?: number): Promise<void>;
  encode(frame: FrameSpec): Buffer;
  /** the next frame from our endpoint; throws Fail on a wrong mask bit */
  next(timeoutMs?: number): Promise<ReadResult>;
  /** compresses a message as the suite's side of the agreed extension */
  compress(data: Buffer): Promise<Buffer>;
  /** inflates a compressed message from our endpoint */
  inflate(payload: Buffer): Promise<Buffer>;
  /** our endpoint's close event for this connection */
  closeEvent(timeoutMs?: number): Promise<Ev['ctx'] | undefined>;
  /** our endpoint's events for this connection so far */
  events(): Ev[];
  /** frees the zlib streams (after the case: an inflate may outlive the socket) */
  dispose(): void;
}

export interface Case {
  id: string;
  title: string;
  /** only against this side */
  side?: Side;
  /** true: only when our endpoint has deflate enabled; false: only when it has not */
  deflate?: boolean;
  /** server side: the Sec-WebSocket-Extensions offer (null: none); default: the run's offer */
  offer?: string | null;
  /** client side: the Sec-WebSocket-Extensions answer to our client's offer (null: none) */
  respond?: (offer: string | undefined) => string | null;
  /** the case checks the handshake itself (a refused one is not a failure by itself) */
  handshake?: boolean;
  /** client side: options of our client for this case (e.g. the subprotocols it offers) */
  clientOptions?: ClientOptions;
  /** client side: header lines added to the 101 ("Name: value", each without CRLF) */
  responseHeaders?: string[];
  timeoutMs?: number;
  run(l: Link): Promise<void>;
}

export interface Result {
  id: string;
  title: string;
  verdict: VerdictKind;
  why: string[];
  ms: number;
}

export interface RunOptions {
  side: Side;
  deflate: boolean;
}

const DEFAULT_OFFER = 'permessage-deflate; client_max_window_bits';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(t)),
    new Promise<T>((_, reject) => {
      t = setTimeout(() => reject(new Fail(`${what} timed out after ${ms} ms`)), ms);
    }),
  ]);
}

const tick = () => new Promise<void>((r) => setImmediate(r));

function makeLink(
  side: Side,
  ourDeflate: boolean,
  sock: net.Socket,
  reader: Reader,
  pmd: Pmd | undefined,
  notes: string[],
  ourEvents: () => Ev[],
): Link {
  const mask = side === 'server';
  // The suite compresses as the other endpoint: as the client against our
  // server, as the server against our client (RFC 7692 §7.1.1, §7.1.2).
  const sendBits = pmd ? (mask ? pmd.clientMaxWindowBits : pmd.serverMaxWindowBits) : 15;
  const sendNoCtx = pmd ? (mask ? pmd.clientNoContextTakeover : pmd.serverNoContextTakeover) : false;
  const recvBits = pmd ? (mask ? pmd.serverMaxWindowBits : pmd.clientMaxWindowBits) : 15;
  const recvNoCtx = pmd ? (mask ? pmd.serverNoContextTakeover : pmd.clientNoContextTakeover) : false;
  // zlib deflates with no 256-byte raw window (8 becomes 9), so the cases
  // never let our endpoint's receive window drop to 8; inflating with 8 works.
  if (sendBits < 9) throw new Fail('the suite cannot deflate with an 8-bit window');
  const deflater = new MessageDeflater(sendBits, sendNoCtx);
  const inflater = new MessageInflater(recvBits, recvNoCtx);

  const write = async (b: Buffer, chop?: number) => {
    if (!chop || chop >= b.length) {
      if (!sock.write(b)) await new Promise<void>((r) => sock.once('drain', () => r()));
      return;
    }
    for (let i = 0; i < b.length; i += chop) {
      if (sock.destroyed) return;
      const ok = sock.write(b.subarray(i, Math.min(b.length, i + chop)));
      // Yield so that pieces leave in separate writes (and, mostly, reads).
      if (!ok) await new Promise<void>((r) => sock.once('drain', () => r()));
      else await tick();
    }
  };
  const link: Link = {
    side,
    ourDeflate,
    pmd,
    status: 101,
    headers: {},
    sock,
    reader,
    note: (why) => notes.push(why),
    write,
    encode: (f) => encodeFrame(f, mask),
    send: (frames, chop) => {
      const list = Array.isArray(frames) ? frames : [frames];
      return write(Buffer.concat(list.map((f) => encodeFrame(f, mask))), chop);
    },
    next: async (timeoutMs = 3000) => {
      const f = await reader.frame(timeoutMs);
      if (typeof f !== 'string') {
        // §5.1: clients mask every frame, servers never do.
        if (side === 'server' && f.masked) throw new Fail(`our server sent a masked frame (opcode ${f.opcode})`);
        if (side === 'client' && !f.masked) throw new Fail(`our client sent an unmasked frame (opcode ${f.opcode})`);
      }
      return f;
    },
    compress: (d) => deflater.compress(d),
    inflate: async (p) => {
      try {
        return await inflater.inflate(p);
      } catch (e) {
        throw new Fail(`cannot inflate our ${side}'s message with window ${recvBits}${recvNoCtx ? ', no context takeover' : ''}: ${(e as Error).message}`);
      }
    },
    closeEvent: async (timeoutMs = 3000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const c = ourEvents().find((e) => e.type === 'close');
        if (c) return c.ctx;
        if (Date.now() > deadline) return undefined;
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    events: ourEvents,
    dispose: () => {
      deflater.close();
      inflater.close();
    },
  };
  return link;
}

// ------------------------------------------------------------ our server

export interface Target {
  connect(c: Case, notes: string[]): Promise<Link>;
  /** ends the case's connection (and, for the client side, disposes our client) */
  release(l: Link | undefined): Promise<void>;
  dispose(): Promise<void>;
}

export function serverTarget(deflate: boolean): Target {
  const events = new Collector();
  let ref = 0;
  // Echo every message back with its type: text as a string, binary as a Buffer.
  const method: EventMethod = (server, client, type, ctx, worker, window, process) => {
    events.method(server, client, type, ctx, worker, window, process);
    if (type === 'message') websocketServerSend({ ref, clients: [client] }, ctx.data);
  };
  const srv = websocketServer({
    host: '127.0.0.1',
    port: 0,
    method,
    maxConnections: 1000,
    ...(deflate ? { perMessageDeflate: { enabled: true, threshold: 0 } } : { disablePerMessageDeflate: true }),
  });
  ref = srv.ref;
  const st = websocketServerStart(srv);
  if (!st.success || !st.port) throw new Error(`server start failed: ${JSON.stringify(st)}`);
  const port = st.port;

  return {
    async connect(c, notes) {
      const seen = events.events.length;
      const sock = net.connect({ port, host: '127.0.0.1' });
      sock.setNoDelay(true);
      const reader = new Reader(sock);
      await withTimeout(new Promise<void>((resolve, reject) => {
        sock.once('connect', () => resolve());
        sock.once('error', reject);
      }), 5000, 'connect');
      const key = crypto.randomBytes(16).toString('base64');
      const offer = c.offer === undefined ? DEFAULT_OFFER : c.offer;
      let req = `GET /conformance/${c.id} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n`;
      if (offer !== null) req += `Sec-WebSocket-Extensions: ${offer}\r\n`;
      sock.write(req + '\r\n');
      const head = parseHead(await reader.head(5000));
      const status = Number(head.line.split(' ')[1]);
      let pmd: Pmd | undefined;
      if (status === 101) {
        if (head.headers['sec-websocket-accept'] !== acceptKey(key)) throw new Fail(`wrong Sec-WebSocket-Accept: ${head.headers['sec-websocket-accept']}`);
        try {
          pmd = parsePmdResponse(head.headers['sec-websocket-extensions']);
        } catch (e) {
          throw new Fail(`invalid extension response "${head.headers['sec-websocket-extensions']}": ${(e as Error).message}`);
        }
        if (pmd && (!deflate || offer === null)) throw new Fail(`server accepted permessage-deflate it ${offer === null ? 'was not offered' : 'has disabled'}`);
      } else if (!c.handshake) {
        throw new Fail(`handshake refused: ${head.line}`);
      }
      // The server-side ref of this connection: the first open after `seen`.
      let conn = -1;
      const ours = () => {
        if (conn < 0) {
          const o = events.events.slice(seen).find((e) => e.type === 'open');
          if (!o) return [];
          conn = o.client;
        }
        // Refs are reused once a connection ends: stop at its close.
        const all = events.events.slice(seen).filter((e) => e.client === conn);
        const ci = all.findIndex((e) => e.type === 'close');
        return ci >= 0 ? all.slice(0, ci + 1) : all;
      };
      const l = makeLink('server', deflate, sock, reader, pmd, notes, ours);
      l.status = status;
      l.headers = head.headers;
      if (status === 101) {
        // The open event is queued before any frame event of this connection.
        const deadline = Date.now() + 3000;
        while (ours().length === 0) {
          if (Date.now() > deadline) throw new Fail('no open event on our server');
          await new Promise((r) => setTimeout(r, 2));
        }
      }
      return l;
    },
    async release(l) {
      if (!l) return;
      l.sock.destroy();
      // Let our server notice, so refs and events of the next case start clean.
      if (l.status === 101) await l.closeEvent(3000);
    },
    async dispose() {
      websocketServerClear({ ref });
    },
  };
}

// ------------------------------------------------------------ our client

export function clientTarget(deflate: boolean): Target {
  const incoming: net.Socket[] = [];
  let wake: (() => void) | undefined;
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    incoming.push(s);
    wake?.();
  });
  const listening = new Promise<number>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)),
  );
  const refs = new Map<Link, number>();

  const nextSocket = async (timeoutMs: number): Promise<net.Socket> => {
    const deadline = Date.now() + timeoutMs;
    while (!incoming.length) {
      if (Date.now() > deadline) throw new Fail('our client did not connect');
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.max(0, deadline - Date.now()));
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
    }
    return incoming.shift()!;
  };

  return {
    async connect(c, notes) {
      const port = await listening;
      const events = new Collector();
      let ref = 0;
      const method: EventMethod = (server, client, type, ctx, worker, window, process) => {
        events.method(server, client, type, ctx, worker, window, process);
        if (type === 'message') websocketClientSend({ ref }, ctx.data);
      };
      const cl = websocketClient({
        url: `ws://127.0.0.1:${port}/conformance/${c.id}`,
        enableAutomaticReconnection: false,
        method,
        ...(deflate ? { perMessageDeflate: { enabled: true, threshold: 0 } } : { disablePerMessageDeflate: true }),
        ...c.clientOptions,
      });
      ref = cl.ref;
      const startStatus = websocketClientStart({ ref, timeout: 5 });
      // Never leave a rejected promise unobserved: cases read it when they care.
      startStatus.catch(() => undefined);
      let sock: net.Socket;
      try {
        sock = await nextSocket(5000);
      } catch (e) {
        websocketClientClear({ ref });
        throw e;
      }
      const reader = new Reader(sock);
      const head = parseHead(await reader.head(5000));
      const h = head.headers;
      const bad = (why: string) => {
        sock.destroy();
        websocketClientClear({ ref });
        return new Fail(`our client's upgrade request: ${why}`);
      };
      if (!/^GET \/conformance\/\S+ HTTP\/1\.1$/.test(head.line)) throw bad(`request line ${head.line}`);
      if ((h['upgrade'] ?? '').toLowerCase() !== 'websocket') throw bad(`Upgrade: ${h['upgrade']}`);
      if (!/(^|,)\s*upgrade\s*(,|$)/i.test(h['connection'] ?? '')) throw bad(`Connection: ${h['connection']}`);
      if (h['sec-websocket-version'] !== '13') throw bad(`version ${h['sec-websocket-version']}`);
      const key = h['sec-websocket-key'] ?? '';
      if (Buffer.from(key, 'base64').length !== 16) throw bad(`key ${key}`);
      const offer = h['sec-websocket-extensions'];
      if (deflate && !/^permessage-deflate\b/i.test(offer ?? '')) throw bad(`no permessage-deflate offer (${offer})`);
      if (!deflate && offer !== undefined) throw bad(`offers extensions with deflate disabled: ${offer}`);

      const answer = c.respond ? c.respond(offer) : offer ? 'permessage-deflate' : null;
      let res = `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n`;
      if (answer !== null) res += `Sec-WebSocket-Extensions: ${answer}\r\n`;
      for (const line of c.responseHeaders ?? []) res += `${line}\r\n`;
      sock.write(res + '\r\n');
      let pmd: Pmd | undefined;
      try {
        pmd = answer === null ? undefined : parsePmdResponse(answer);
      } catch {
        pmd = undefined; // an answer the client must refuse: the case checks that
      }
      const l = makeLink('client', deflate, sock, reader, pmd, notes, () => events.events);
      l.headers = h;
      l.startStatus = startStatus;
      refs.set(l, ref);
      if (!c.handshake) {
        const st = await withTimeout(startStatus, 6000, 'websocketClientStart');
        if (!st.success) throw new Fail(`our client did not open: ${JSON.stringify(st)}`);
      }
      return l;
    },
    async release(l) {
      if (!l) return;
      l.sock.destroy();
      const ref = refs.get(l);
      refs.delete(l);
      if (ref !== undefined) websocketClientClear({ ref });
    },
    async dispose() {
      for (const s of incoming) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

// ------------------------------------------------------------ running

export async function runCases(target: Target, cases: Case[], opts: RunOptions): Promise<Result[]> {
  const results: Result[] = [];
  for (const c of cases) {
    if (c.side && c.side !== opts.side) continue;
    if (c.deflate !== undefined && c.deflate !== opts.deflate) continue;
    const notes: string[] = [];
    const started = Date.now();
    let link: Link | undefined;
    let verdict: VerdictKind = 'OK';
    const why: string[] = [];
    try {
      await withTimeout(
        (async () => {
          link = await target.connect(c, notes);
          await c.run(link);
        })(),
        c.timeoutMs ?? 10000,
        `case ${c.id}`,
      );
      if (notes.length) {
        verdict = 'NON-STRICT';
        why.push(...notes);
      }
    } catch (e) {
      verdict = 'FAILED';
      why.push(...notes, e instanceof Fail ? e.message : `error: ${(e as Error).stack ?? e}`);
    }
    try {
      (link as Link | undefined)?.dispose();
      await target.release(link);
    } catch {
      // the connection is gone already
    }
    results.push({ id: c.id, title: c.title, verdict, why, ms: Date.now() - started });
  }
  return results;
}

/** Prints the non-OK cases, measured timings and one summary line; returns the summary. */
export function report(label: string, results: Result[], timed: (r: Result) => boolean): string {
  const count = (k: VerdictKind) => results.filter((r) => r.verdict === k).length;
  const lines: string[] = [];
  const byCat = new Map<string, Record<VerdictKind, number>>();
  for (const r of results) {
    const cat = r.id.split('.')[0];
    const m = byCat.get(cat) ?? { OK: 0, 'NON-STRICT': 0, FAILED: 0 };
    m[r.verdict]++;
    byCat.set(cat, m);
  }
  lines.push(`[conformance ${label}] by category: ` +
    [...byCat].map(([k, m]) => `${k}: ${m.OK}/${m['NON-STRICT']}/${m.FAILED}`).join('  ') + '  (OK/NON-STRICT/FAILED)');
  for (const r of results) {
    if (r.verdict !== 'OK') lines.push(`  ${r.verdict} ${r.id} ${r.title}: ${r.why.join('; ')}`);
  }
  for (const r of results) if (timed(r)) lines.push(`  time ${r.id} ${r.title}: ${r.ms} ms (${r.verdict})`);
  const total = results.reduce((a, r) => a + r.ms, 0);
  const summary = `${label}: ${count('OK')} OK, ${count('NON-STRICT')} NON-STRICT, ${count('FAILED')} FAILED (${results.length} cases, ${(total / 1000).toFixed(1)} s)`;
  lines.push(summary);
  console.log(lines.join('\n'));
  return summary;
}
