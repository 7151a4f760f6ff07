// One process: the engine's IO threads own every socket (framing, TLS,
// compression, fan-out); JavaScript only handles events. A topic's publish
// builds its frame once and queues it on every subscriber.
//   node examples/scaling-one-process.js          (PORT=8080 by default)
// IXWS_IO_THREADS=4 before start sets the number of IO threads.
'use strict';
const { WebSocketServer, WebSocketClient, ioThreads } = require('ix-websocket');

const server = new WebSocketServer({ port: Number(process.env.PORT || 8080) });
server.on('open', (client) => server.subscribe(client, 'news'));
const st = server.start();
if (!st.success) throw new Error(st.message);
console.log(`listening on ${server.port} with ${ioThreads()} IO thread(s)`);

// Demo: 100 clients subscribe, one publish reaches them all, then stop.
async function demo() {
  const clients = [];
  let received = 0;
  for (let i = 0; i < 100; i++) {
    const c = new WebSocketClient({ url: `ws://127.0.0.1:${server.port}/`, enableAutomaticReconnection: false });
    c.on('message', () => received++);
    const s = await c.start();
    if (!s.success) throw new Error(s.errorStr);
    clients.push(c);
  }
  while (server.topics()[0]?.subscribers !== 100) await new Promise((r) => setTimeout(r, 10));
  const status = server.publish('news', 'hello, everyone');
  while (received < 100) await new Promise((r) => setTimeout(r, 10));
  console.log(`published once, sent to ${status.sent} subscribers, ${received} received`);
  for (const c of clients) c.clear();
  server.clear();
}
demo();
