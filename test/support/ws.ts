// The `ws` library as a peer: what one of its sockets receives, and a `ws`
// server whose connections a test then drives.
import type { AddressInfo } from 'net';
import type WebSocket from 'ws';
import { WebSocketServer, type ServerOptions as WsServerOptions } from 'ws';
import { defer } from './cleanup';

export interface WsMsg {
  data: Buffer;
  isBinary: boolean;
}

/** Every message `ws` delivers from now on, in order (live array). */
export function collect(ws: WebSocket): WsMsg[] {
  const got: WsMsg[] = [];
  ws.on('message', (data, isBinary) => got.push({ data: Buffer.from(data as Buffer), isBinary }));
  return got;
}

/**
 * A listening `ws` server on loopback (closed after the test, its sockets
 * terminated); `conns` fills with its connections as they come.
 */
export async function startWsServer(options: WsServerOptions = {}): Promise<{ port: number; conns: WebSocket[] }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...options });
  defer(() => new Promise((r) => wss.close(() => r(undefined))));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const conns: WebSocket[] = [];
  wss.on('connection', (ws) => {
    defer(() => ws.terminate());
    conns.push(ws);
  });
  return { port: (wss.address() as AddressInfo).port, conns };
}
