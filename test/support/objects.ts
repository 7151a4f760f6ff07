// Servers and clients for tests: created through the facade, cleared after
// the test; a started loopback server with a recorder, a connected client,
// and a good connection kept busy beside hostile peers.
import { expect } from 'vitest';
import {
  websocketClient,
  websocketClientClear,
  websocketClientSend,
  websocketClientStart,
  websocketServer,
  websocketServerClear,
  websocketServerClients,
  websocketServerSend,
  websocketServerStart,
} from '../../lib/index';
import type { ClientObject, ClientOptions, ServerObject, ServerOptions } from '../../lib/index';
import { defer } from './cleanup';
import { Collector, delay, until } from './events';

/** websocketServer + cleared after the test. */
export function newServer(options?: ServerOptions): ServerObject {
  const s = websocketServer(options);
  defer(() => websocketServerClear({ ref: s.ref }));
  return s;
}

export function newClient(options?: ClientOptions): ClientObject {
  const c = websocketClient(options);
  defer(() => websocketClientClear({ ref: c.ref }));
  return c;
}

export interface Started {
  server: ServerObject;
  port: number;
  events: Collector;
}

/** A started loopback server on a free port with a collector as `method`. */
export function startServer(options: ServerOptions = {}): Started {
  const events = new Collector();
  const server = newServer({ host: '127.0.0.1', port: 0, method: events.method, ...options });
  const st = websocketServerStart(server);
  if (!st.success || typeof st.port !== 'number' || st.port <= 0) {
    throw new Error(`server start failed: ${JSON.stringify(st)}`);
  }
  return { server, port: st.port, events };
}

/** startServer whose connections get each message they send back (events still recorded). */
export function startEchoServer(options: ServerOptions = {}): Started {
  let ref = 0;
  const events = new Collector();
  const s = startServer({
    ...options,
    method: (server, client, type, ctx, worker, window, process) => {
      events.method(server, client, type, ctx, worker, window, process);
      if (type === 'message') websocketServerSend({ ref, clients: [client] }, ctx.data);
    },
  });
  ref = s.server.ref;
  return { ...s, events };
}

export interface Connected {
  client: ClientObject;
  events: Collector;
  /** the server-side connection ref */
  conn: number;
}

/** A client connected to `srv` without reconnection; waits for both sides' open. */
export async function connectClient(srv: Started, options: ClientOptions = {}, path = '/'): Promise<Connected> {
  const events = new Collector();
  // Connection refs are reused, so "new" means after the events seen so far.
  const seen = srv.events.events.length;
  const client = newClient({
    url: `ws://127.0.0.1:${srv.port}${path}`,
    enableAutomaticReconnection: false,
    timeout: 5,
    method: events.method,
    ...options,
  });
  const st = await websocketClientStart(client);
  if (!st.success) throw new Error(`client start failed: ${JSON.stringify(st)}`);
  await events.waitType('open');
  const open = await until(
    () => srv.events.events.slice(seen).find((e) => e.type === 'open'),
    5000,
    `server open (seen: ${srv.events.summary()})`,
  );
  return { client, events, conn: open.client };
}

// A good client beside hostile peers.

/** One round trip on the good connection: client -> server, then server -> client. */
export async function roundTrip(srv: Started, good: Connected, tag: string, timeoutMs = 5000): Promise<void> {
  const up = `up-${tag}`;
  const st = websocketClientSend(good.client, up);
  expect(st.success).toBe(true);
  await srv.events.waitFor((e) => e.type === 'message' && e.client === good.conn && e.ctx.data === up, timeoutMs, up);
  const down = `down-${tag}`;
  const [s] = websocketServerSend({ ref: srv.server.ref, clients: [good.conn] }, down);
  expect(s.success).toBe(true);
  await good.events.waitFor((e) => e.type === 'message' && e.ctx.data === down, timeoutMs, down);
}

/**
 * Keeps the good connection busy until stop() and returns how many round
 * trips completed; a failure inside the loop fails the test through stop().
 */
export function keepExchanging(srv: Started, good: Connected, timeoutMs = 5000): { stop: () => Promise<number> } {
  let running = true;
  let n = 0;
  const loop = (async () => {
    while (running) {
      await roundTrip(srv, good, `bg-${n}`, timeoutMs);
      n++;
      await delay(2);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return n;
    },
  };
}

/** Runs `hostile` while the good connection exchanges messages; asserts both sides. */
export async function whileGoodExchanges<T>(
  srv: Started,
  good: Connected,
  hostile: () => Promise<T>,
  timeoutMs = 5000,
): Promise<T> {
  const bg = keepExchanging(srv, good, timeoutMs);
  let result: T;
  try {
    result = await hostile();
  } finally {
    const n = await bg.stop();
    expect(n).toBeGreaterThan(0);
  }
  // And it still works afterwards, with its ref still listed.
  await roundTrip(srv, good, 'after', timeoutMs);
  expect(websocketServerClients(srv.server)).toContain(good.conn);
  return result;
}
