// Interoperability with the `ws` library: its client against our server and
// our client against its server, text and binary both ways, with and without
// permessage-deflate, contents checked.
import { afterEach, describe, expect, test } from 'vitest';
import WebSocket, { WebSocketServer as WsServer } from 'ws';
import type { AddressInfo } from 'net';
import { websocketClientSend, websocketServerSend } from '../lib/index';
import {
  Collector,
  bytes,
  collect,
  defer,
  newClient,
  runCleanup,
  startServer,
  text,
  until,
} from './support';
import { websocketClientStart } from '../lib/index';

afterEach(runCleanup);



for (const deflate of [true, false]) {
  describe(`permessage-deflate ${deflate ? 'on' : 'off'}`, () => {
    test('ws client ↔ our server', async () => {
      const srv = startServer();
      const ws = new WebSocket(`ws://127.0.0.1:${srv.port}/interop?x=1`, { perMessageDeflate: deflate });
      defer(() => ws.terminate());
      const got = collect(ws);
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      expect(ws.extensions.includes('permessage-deflate')).toBe(deflate);
      const open = await srv.events.waitType('open');
      expect(open.ctx.uri).toBe('/interop?x=1');

      const t = text(70000, 3);
      const b = bytes(70000, 4);
      ws.send('short ✓');
      ws.send(t);
      ws.send(b);
      ws.send(Buffer.alloc(0));
      const ms = await srv.events.waitCount((e) => e.type === 'message', 4, 5000, 'messages from ws');
      expect(ms[0].ctx).toMatchObject({ data: 'short ✓', binary: false });
      expect(ms[1].ctx.binary).toBe(false);
      expect(ms[1].ctx.data === t).toBe(true);
      expect(ms[2].ctx.binary).toBe(true);
      expect(b.equals(ms[2].ctx.data)).toBe(true);
      expect(ms[3].ctx.binary).toBe(true);
      expect(ms[3].ctx.data.length).toBe(0);
      // ws compresses even tiny messages (an empty one deflates to 1 byte)
      if (!deflate) expect(ms[3].ctx.wireSize).toBe(0);
      expect(ms[0].ctx.wireSize).toEqual(deflate ? expect.any(Number) : Buffer.byteLength('short ✓'));

      expect(websocketServerSend(srv.server, 'back ✓')[0].success).toBe(true);
      expect(websocketServerSend(srv.server, t)[0].success).toBe(true);
      expect(websocketServerSend(srv.server, b)[0].success).toBe(true);
      await until(() => (got.length >= 3 ? true : undefined), 5000, 'ws to receive 3 messages');
      expect(got[0]).toEqual({ data: Buffer.from('back ✓'), isBinary: false });
      expect(got[1].isBinary).toBe(false);
      expect(got[1].data.toString() === t).toBe(true);
      expect(got[2].isBinary).toBe(true);
      expect(b.equals(got[2].data)).toBe(true);

      const closed = new Promise<[number, string]>((r) => ws.once('close', (code, reason) => r([code, reason.toString()])));
      ws.close(4321, 'ws says bye');
      // the echoed close frame repeats the code (RFC 6455 §5.5.1; the reason is optional)
      expect((await closed)[0]).toBe(4321);
      const sc = await srv.events.waitType('close', open.client);
      expect(sc.ctx).toEqual({ code: 4321, reason: 'ws says bye', remote: true });
    });

    test('our client ↔ ws server', async () => {
      const wss = new WsServer({ host: '127.0.0.1', port: 0, perMessageDeflate: deflate });
      defer(() => new Promise((r) => wss.close(() => r(undefined))));
      await new Promise<void>((r) => wss.once('listening', () => r()));
      const port = (wss.address() as AddressInfo).port;
      const peer = new Promise<{ ws: WebSocket; url: string; ext: string }>((resolve) =>
        wss.once('connection', (ws, req) => resolve({ ws, url: req.url ?? '', ext: String(req.headers['sec-websocket-extensions'] ?? '') })),
      );
      const events = new Collector();
      const c = newClient({
        url: `ws://127.0.0.1:${port}/ours`,
        enableAutomaticReconnection: false,
        method: events.method,
      });
      const st = await websocketClientStart({ ref: c.ref, timeout: 5 });
      expect(st).toMatchObject({ success: true, http_status: 101 });
      const { ws, url, ext } = await peer;
      defer(() => ws.terminate());
      expect(url).toBe('/ours');
      // we offer permessage-deflate by default; ws accepts it only when enabled
      expect(ext).toMatch(/permessage-deflate/);
      expect(ws.extensions.includes('permessage-deflate')).toBe(deflate);
      const got = collect(ws);

      const t = text(70000, 5);
      const b = bytes(70000, 6);
      expect(websocketClientSend(c, 'hi ws ✓').success).toBe(true);
      expect(websocketClientSend(c, t).success).toBe(true);
      expect(websocketClientSend(c, b).success).toBe(true);
      await until(() => (got.length >= 3 ? true : undefined), 5000, 'ws to receive 3 messages');
      expect(got[0]).toEqual({ data: Buffer.from('hi ws ✓'), isBinary: false });
      expect(got[1].isBinary).toBe(false);
      expect(got[1].data.toString() === t).toBe(true);
      expect(got[2].isBinary).toBe(true);
      expect(b.equals(got[2].data)).toBe(true);

      ws.send('from ws ✓');
      ws.send(t);
      ws.send(b);
      const pongP = new Promise<Buffer>((r) => ws.once('pong', (d) => r(d)));
      ws.ping(Buffer.from('ws-ping'));
      const ms = await events.waitCount((e) => e.type === 'message', 3, 5000, 'messages from ws');
      expect(ms[0].ctx).toMatchObject({ data: 'from ws ✓', binary: false });
      expect(ms[1].ctx.data === t).toBe(true);
      expect(ms[2].ctx.binary).toBe(true);
      expect(b.equals(ms[2].ctx.data)).toBe(true);
      const ping = await events.waitType('ping');
      expect(ping.ctx).toEqual({ data: 'ws-ping', binary: false, wireSize: 7 });
      const pong = await pongP;
      expect(pong.toString()).toBe('ws-ping');

      ws.close(4000, 'server bye');
      const cc = await events.waitType('close');
      expect(cc.ctx).toEqual({ code: 4000, reason: 'server bye', remote: true });
    });
  });
}
