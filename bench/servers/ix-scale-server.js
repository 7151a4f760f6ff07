'use strict';
// The scale-out scenarios' server (bench/scale.js): one of several processes.
//   node ix-scale-server.js echo --port P [--reuse-port]
//   node ix-scale-server.js publish --port P [--reuse-port] [--redis redis://...]
// echo: answers each message to its sender. publish: every client is
// subscribed to the topic "bench" when it opens; a text message
// "bcast <count> <size>" publishes count messages of size bytes to "bench"
// (here at once, and through the Redis bus to the other processes).
// IPC as the other servers (common.js), plus {cmd:'stats'} -> open clients.
const path = require('path');
const { parseArgs, send, serveIpc } = require('./common');
const entry = process.env.IXWS_BENCH_IX || path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js');
const ix = require(entry);

const args = parseArgs(process.argv.slice(2));
let bus;
if (args.redis) bus = require(path.join(path.dirname(entry), 'redis.js')).redisBus({ url: args.redis, prefix: 'ixws-bench:' });

const server = new ix.WebSocketServer({
  host: '127.0.0.1',
  port: Number(args.port || 0),
  reusePort: Boolean(args['reuse-port']),
  backlog: 511,
  maxConnections: 20000,
  disablePerMessageDeflate: true,
  bus,
});
let busErrors = 0;
server.on('error', (client, ctx) => {
  if (client === 0) busErrors++;
});

if (args.role === 'echo') {
  const targets = [];
  server.on('message', (client, ctx) => {
    let t = targets[client];
    if (t === undefined) t = targets[client] = { clients: [client] };
    server.send(ctx.data, t);
  });
} else if (args.role === 'publish') {
  let busFailed = 0;
  server.on('open', (client) => server.subscribe(client, 'bench'));
  server.on('message', (client, ctx) => {
    if (typeof ctx.data !== 'string' || !ctx.data.startsWith('bcast ')) return;
    const [, count, size] = ctx.data.split(' ');
    const payload = Buffer.alloc(Number(size), 0x62);
    for (let i = 0; i < Number(count); i++) {
      const st = server.publish('bench', payload);
      if (st.bus && !st.bus.success) busFailed++;
    }
    if (busFailed) send({ type: 'warning', message: `${busFailed} publishes not taken by the bus` });
  });
} else {
  console.error(`ix-scale-server: unknown role ${args.role}`);
  process.exit(64);
}

const status = server.start();
if (!status.success) {
  console.error('ix-scale-server: start failed:', status.message);
  process.exit(1);
}
serveIpc(() => server.clear(), {});
process.on('message', (msg) => {
  if (msg && msg.cmd === 'stats') send({ type: 'stats', id: msg.id, clients: server.clients().length, busErrors });
  else if (msg && msg.cmd === 'busReady') server.busReady().then(() => send({ type: 'busReady', id: msg.id }));
});
send({ type: 'listening', port: status.port, impl: 'ix', ioThreads: ix.ioThreads() });
