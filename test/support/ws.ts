// The `ws` library as a peer: what one of its sockets receives.
import type WebSocket from 'ws';

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
