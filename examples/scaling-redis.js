// N machines (here: N processes with a port each, as N machines would have
// an address each): every server has a Redis bus, so a publish in one
// reaches the subscribers of every server. Needs a Redis server and the
// ioredis package (npm install ioredis).
//   REDIS_URL=redis://127.0.0.1:6379 node examples/scaling-redis.js   (PORT=8080: ports 8080, 8081)
'use strict';
const cluster = require('cluster');
const { WebSocketServer, WebSocketClient } = require('ix-websocket');
const { redisBus } = require('ix-websocket/redis');

const PORT = Number(process.env.PORT || 8080);
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const SERVERS = 2;

if (cluster.isPrimary) {
  const workers = [];
  for (let i = 0; i < SERVERS; i++) workers.push(cluster.fork({ SERVER_PORT: String(PORT + i) }));
  demo(workers);
} else {
  const server = new WebSocketServer({ port: Number(process.env.SERVER_PORT), bus: redisBus({ url: REDIS_URL }) });
  // Every client joins the room "chat"; what one says goes to everybody.
  server.on('open', (client) => server.subscribe(client, 'chat'));
  server.on('message', (client, ctx) => server.publish('chat', ctx.data));
  server.on('error', (client, ctx) => console.error(`server on ${server.port}: ${ctx.reason}`)); // bus trouble
  const st = server.start();
  if (!st.success) {
    console.error(st.message);
    process.exit(1);
  }
  // The demo asks: are your n clients subscribed, here and on Redis?
  process.on('message', async (m) => {
    if (typeof m !== 'object' || m === null || !('clients' in m)) return;
    while ((server.topics()[0]?.subscribers ?? 0) < m.clients) await new Promise((r) => setTimeout(r, 10));
    // Redis has confirmed the subscriptions. busReady() waits as long as Redis stays
    // unreachable: a bounded wait says so instead of hanging.
    let timer;
    const late = new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'late')));
    const outcome = await Promise.race([server.busReady(), late]);
    clearTimeout(timer);
    process.send(outcome === 'late' ? 'no-redis' : 'ready');
  });
  process.send('listening');
  process.on('disconnect', () => server.clear());
}

// Demo (primary): two clients on each server; one of them says hello, all four hear it.
async function demo(workers) {
  const once = (w, msg) =>
    new Promise((resolve) =>
      w.on('message', (m) => {
        if (m === 'no-redis') {
          console.error(`Redis at ${REDIS_URL} did not confirm the subscriptions within 10 s: is it running?`);
          for (const x of workers) x.disconnect();
          process.exit(1);
        }
        if (m === msg) resolve();
      }),
    );
  await Promise.all(workers.map((w) => once(w, 'listening')));
  const clients = [];
  const heard = [];
  for (let i = 0; i < 4; i++) {
    const port = PORT + (i % SERVERS);
    const c = new WebSocketClient({ url: `ws://127.0.0.1:${port}/`, enableAutomaticReconnection: false });
    c.on('message', (ctx) => heard.push(`client ${i} (server on ${port}) heard "${ctx.data}"`));
    const s = await c.start();
    if (!s.success) throw new Error(s.errorStr);
    clients.push(c);
  }
  await Promise.all(workers.map((w) => (w.send({ clients: 2 }), once(w, 'ready'))));
  clients[0].send('hello from a client of the first server');
  const deadline = Date.now() + 5000;
  while (heard.length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  for (const line of heard.sort()) console.log(line);
  for (const c of clients) c.clear();
  for (const w of workers) w.disconnect();
  if (heard.length < 4) process.exitCode = 1;
}
