// The public API as a TypeScript user writes it. types.test.ts compiles this
// file (tsc, strict) and never runs it: every line must type-check, and the
// lines marked as expected errors must be refused (tsc fails on a marked
// line it accepts).
import {
  WebSocketClient,
  WebSocketServer,
  websocketServer,
  websocketServerHandleUpgrade,
  websocketServerStart,
  type CloseContext,
  type OpenContext,
} from '../../lib/index';

export function serverListeners(server: WebSocketServer): void {
  // A listener may take fewer arguments than the event gives: `(client) =>`
  // and `() =>` were refused while the event map was intersected with
  // Record<keyof Events, any[]> (a fixed-length tuple & any[]).
  server.on('open', (client) => void client);
  server.on('open', (client: number) => void client);
  server.on('open', () => undefined);
  server.once('close', (client: number, ctx) => void ctx.code);
  server.on('message', (client, ctx) => void [client, ctx.data]);
  server.on('open', (client: number, ctx: OpenContext) => void [client, ctx.headers]);
  server.off('close', (_client: number, _ctx: CloseContext) => undefined);
  server.on('bus', (connected: boolean) => void connected);
  // @ts-expect-error no such event
  server.on('opened', () => undefined);
  // @ts-expect-error the connection is a number
  server.on('open', (client: string) => void client);
  // @ts-expect-error the bus event carries a boolean
  server.on('bus', (connected: number) => void connected);
}

export function clientListeners(client: WebSocketClient): void {
  client.on('open', () => undefined);
  client.on('open', (ctx) => void ctx.headers);
  client.on('message', (ctx) => void ctx.data);
  client.once('close', (ctx: CloseContext) => void ctx.code);
  // @ts-expect-error client events carry only the context
  client.on('message', (ref: number, ctx: unknown) => void [ref, ctx]);
}

export function startOptions(server: WebSocketServer, client: WebSocketClient): void {
  // A method given to start() replaces the constructor's callback.
  server.start({ method: (srv, conn, type) => void [srv, conn, type] });
  void client.start({ url: 'ws://127.0.0.1:1/', method: () => undefined });
  // @ts-expect-error port is a number
  server.start({ port: '80' });
  // null turns TLS off again (README, Options: tls); the engine takes it.
  server.start({ tls: null });
}

export async function statusFields(client: WebSocketClient): Promise<void> {
  // A start of a cleared client answers with a message, as every unknown-ref status.
  const st = await client.start();
  if (!st.success) void [st.errorStr, st.message];
}

export function errorContext(server: WebSocketServer): void {
  // A bus error about one topic names it.
  server.on('error', (client, ctx) => void [client, ctx.reason, ctx.topic]);
}

export function commands(): void {
  const s = websocketServer({ port: 0, method: () => undefined });
  const st = websocketServerStart(s);
  if (st.success) void st.port;
  // @ts-expect-error the commands take the server object or { ref }
  websocketServerStart({ port: 0 });
}

// The README's verifyClient sample: an async hook whose two answers carry
// different optional headers (TypeScript widens them to { A: string; B?:
// undefined } | ...), which Record<string, string> refused.
export function verifyClientAnswers(sessions: { lookup(cookie: string | undefined): Promise<unknown> }): void {
  websocketServer({
    port: 8080,
    async verifyClient({ headers }) {
      const user = await sessions.lookup(headers['Cookie'] ?? headers['cookie']);
      if (!user) return { accept: false, status: 401, headers: { 'WWW-Authenticate': 'Cookie' } };
      return { accept: true, headers: { 'Set-Cookie': `seen=${Date.now()}` } };
    },
  });
  // @ts-expect-error header values are strings
  websocketServer({ verifyClient: () => ({ accept: true, headers: { 'X-N': 1 } }) });
}

// What Node's 'upgrade' event gives (@types/node: a stream.Duplex) is what
// handleUpgrade takes.
export function upgrades(server: WebSocketServer, http: import('http').Server): void {
  http.on('upgrade', (req, socket, head) => {
    server.handleUpgrade(req, socket, head);
    websocketServerHandleUpgrade(server.object, req, socket, head);
  });
}
