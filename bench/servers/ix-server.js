'use strict';
// The benchmark scenarios served by ix-websocket, through its seed commands
// (websocketServer / websocketServerSend / ...), the facade's primary API.
//   node ix-server.js echo [--deflate] | broadcast [--timer] | idle | flood-client --url ws://... [--inline] [--borrowed]
// broadcast --timer: the trigger message schedules the sends on a timer
// (setTimeout 0) instead of making them inside its message event.
// --inline: inline mode (the engine on this process's JavaScript thread loop).
// --borrowed: borrowedPayloads (large binary payloads lent to their event).
const path = require('path');
const { parseArgs, send, serveIpc, floodMeter } = require('./common');
// The runner passes a private copy of the package (the checkout's build can
// change under a running benchmark); standalone, the checkout's dist/ is used.
const ix = require(process.env.IXWS_BENCH_IX || path.join(__dirname, '..', '..', 'dist', 'lib', 'index.js'));

const args = parseArgs(process.argv.slice(2));

function startServer(onEvent) {
  const options = {
    host: '127.0.0.1',
    port: 0,
    backlog: 511, // ws (net.Server) listens with 511
    maxConnections: 20000,
    method: onEvent,
    inlineLoop: !!args.inline,
    borrowedPayloads: !!args.borrowed,
  };
  if (args.deflate) options.perMessageDeflate = { enabled: true, threshold: 1024 };
  else options.disablePerMessageDeflate = true;
  const server = ix.websocketServer(options);
  const status = ix.websocketServerStart({ ref: server.ref });
  if (!status.success) {
    console.error('ix-server: start failed:', status.message);
    process.exit(1);
  }
  serveIpc(() => ix.websocketServerClear({ ref: server.ref }));
  send({ type: 'listening', port: status.port, impl: args.inline ? 'ix-inline' : args.borrowed ? 'ix-borrowed' : 'ix', ioThreads: args.inline ? 0 : ix.ioThreads() });
  return server;
}

if (args.role === 'echo') {
  // One reusable send target per connection ref: no per-message object.
  const targets = [];
  let ref = 0;
  const server = startServer((s, client, type, ctx) => {
    if (type !== 'message') return;
    let t = targets[client];
    if (t === undefined) t = targets[client] = { ref, clients: [client] };
    ix.websocketServerSend(t, ctx.data);
  });
  ref = server.ref;
} else if (args.role === 'broadcast') {
  let ref = 0;
  const server = startServer((s, client, type, ctx) => {
    if (type !== 'message' || typeof ctx.data !== 'string' || !ctx.data.startsWith('bcast ')) return;
    const [, count, size] = ctx.data.split(' ');
    const payload = Buffer.alloc(Number(size), 0x62);
    const all = { ref };
    const burst = () => {
      for (let i = 0; i < Number(count); i++) ix.websocketServerSend(all, payload);
    };
    if (args.timer) setTimeout(burst, 0);
    else burst();
  });
  ref = server.ref;
} else if (args.role === 'idle') {
  startServer(() => {});
} else if (args.role === 'flood-client') {
  let ref = 0;
  const meter = floodMeter(args, (result) => {
    send({ ...result, impl: args.inline ? 'ix-inline' : 'ix' });
    ix.websocketClientClear({ ref });
    setTimeout(() => process.exit(0), 50);
  });
  const client = ix.websocketClient({
    url: args.url,
    disablePerMessageDeflate: true,
    enableAutomaticReconnection: false,
    inlineLoop: !!args.inline,
    method: (s, c, type, ctx) => {
      if (type === 'message') meter.onMessage(ctx.wireSize);
    },
  });
  ref = client.ref;
  process.on('disconnect', () => process.exit(0));
  ix.websocketClientStart({ ref }).then((st) => {
    if (!st.success) {
      console.error('ix-server: flood client could not connect:', st.errorStr);
      process.exit(1);
    }
  });
} else {
  console.error('ix-server: unknown role', args.role);
  process.exit(64);
}
