// N processes on one port: each worker of a Node cluster starts its own
// server with reusePort (Linux SO_REUSEPORT) and the kernel spreads new
// connections over them. No connection passes through the primary.
//   node examples/scaling-reuse-port.js           (PORT=8080 by default)
'use strict';
const cluster = require('cluster');
const { WebSocketServer, WebSocketClient } = require('ix-websocket');

const PORT = Number(process.env.PORT || 8080);
const WORKERS = 2;

if (cluster.isPrimary) {
  let listening = 0;
  for (let i = 0; i < WORKERS; i++) {
    cluster.fork().on('message', (m) => {
      if (m === 'listening' && ++listening === WORKERS) demo();
    });
  }
} else {
  const server = new WebSocketServer({ port: PORT, reusePort: true });
  server.on('message', (client) => server.send(`worker ${cluster.worker.id}`, { clients: [client] }));
  const st = server.start();
  if (!st.success) {
    console.error(`worker ${cluster.worker.id}: ${st.message}`);
    process.exit(1);
  }
  process.send('listening');
  process.on('disconnect', () => server.clear()); // the primary is gone: stop
}

// Demo (primary): 20 clients ask which worker serves them, then everything stops.
async function demo() {
  const served = {};
  for (let i = 0; i < 20; i++) {
    const c = new WebSocketClient({ url: `ws://127.0.0.1:${PORT}/`, enableAutomaticReconnection: false });
    const answer = new Promise((resolve) => c.on('message', (ctx) => resolve(ctx.data)));
    const s = await c.start();
    if (!s.success) throw new Error(s.errorStr);
    c.send('who serves me?');
    const who = await answer;
    served[who] = (served[who] || 0) + 1;
    c.clear();
  }
  console.log('connections per worker:', JSON.stringify(served));
  for (const w of Object.values(cluster.workers)) w.disconnect();
}
