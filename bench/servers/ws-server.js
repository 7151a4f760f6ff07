'use strict';
// The benchmark scenarios served by `ws`, with bufferutil and utf-8-validate
// installed (ws picks them up by itself), written the way ws documents.
//   node ws-server.js echo [--deflate] | broadcast [--timer] | idle | flood-client --url ws://...
// broadcast --timer: the sends run on a timer (setTimeout 0), not in the message event.
const { parseArgs, send, serveIpc, floodMeter } = require('./common');
const WebSocket = require('ws');

const args = parseArgs(process.argv.slice(2));

function startServer(onConnection) {
  const wss = new WebSocket.WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    backlog: 511,
    // Same compression work as ix-websocket (zlib level 1, 1 KiB threshold).
    perMessageDeflate: args.deflate ? { zlibDeflateOptions: { level: 1 }, threshold: 1024 } : false,
  });
  wss.on('connection', onConnection);
  wss.on('listening', () => {
    serveIpc(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
    let native = false;
    try {
      require.resolve('bufferutil');
      require.resolve('utf-8-validate');
      native = true;
    } catch (_) {}
    send({ type: 'listening', port: wss.address().port, impl: 'ws', nativeAddons: native });
  });
  return wss;
}

if (args.role === 'echo') {
  startServer((ws) => {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
} else if (args.role === 'broadcast') {
  const wss = startServer((ws) => {
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      const text = data.toString();
      if (!text.startsWith('bcast ')) return;
      const [, count, size] = text.split(' ');
      const payload = Buffer.alloc(Number(size), 0x62);
      const burst = () => {
        for (let i = 0; i < Number(count); i++) {
          for (const c of wss.clients) if (c.readyState === WebSocket.OPEN) c.send(payload);
        }
      };
      if (args.timer) setTimeout(burst, 0);
      else burst();
    });
  });
} else if (args.role === 'idle') {
  startServer(() => {});
} else if (args.role === 'flood-client') {
  const ws = new WebSocket(args.url, { perMessageDeflate: false });
  const meter = floodMeter(args, (result) => {
    send({ ...result, impl: 'ws' });
    ws.terminate();
    setTimeout(() => process.exit(0), 50);
  });
  ws.on('message', (data) => meter.onMessage(data.length));
  ws.on('error', (err) => {
    console.error('ws-server: flood client error:', err.message);
    process.exit(1);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  console.error('ws-server: unknown role', args.role);
  process.exit(64);
}
