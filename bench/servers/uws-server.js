'use strict';
// The benchmark scenarios served by uWebSockets.js, written the way its
// examples do. It comes from npm as @trufflesuite/uws-js-unofficial (Ganache's
// repackaging of uWebSockets.js v20.30 with Node 16/18/20 binaries; upstream
// installs only from GitHub), a devDependency.
//   node uws-server.js echo [--deflate] | broadcast [--timer] | idle
// broadcast --timer: the publishes run on a timer (setTimeout 0) instead of setImmediate.
// uWebSockets.js has no client, so there is no flood-client role.
const path = require('path');
const { parseArgs, send, serveIpc } = require('./common');

const args = parseArgs(process.argv.slice(2));

// The package's entry point silently falls back to a JavaScript imitation
// built on ws when its binary does not load; measuring that as "uWS" would be
// wrong, so the native binary is loaded by name and its absence is fatal.
function loadUws() {
  const dir = path.dirname(require.resolve('@trufflesuite/uws-js-unofficial/package.json'));
  const file = path.join(dir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    return require(file);
  } catch (e) {
    console.error(`uws-server: uWebSockets.js binary ${path.basename(file)} does not load: ${e.message.split('\n')[0]}`);
    process.exit(69);
  }
}
const uWS = loadUws();

function startServer(behavior) {
  const app = uWS.App();
  app.ws('/*', {
    // ix-websocket accepts messages up to 100 MiB by default; uWS's default
    // is 16 KiB, too small for the 64 KiB and 1 MiB scenarios.
    maxPayloadLength: 100 * 1024 * 1024,
    // uWS drops a send when a socket's backlog passes maxBackpressure (default
    // 64 KiB); ix-websocket and ws queue instead. The load is bounded by the
    // messages in flight, so a large bound means "never drop", as for the others.
    maxBackpressure: 256 * 1024 * 1024,
    closeOnBackpressureLimit: false,
    // No idle timeout nor automatic pings, like the other two servers.
    idleTimeout: 0,
    sendPingsAutomatically: false,
    // permessage-deflate: a dedicated compressor per connection with a 32 KiB
    // window (15 bits, memLevel 8: DEDICATED_COMPRESSOR) like the context
    // takeover the others keep, and the shared decompressor, enough since the
    // load generator offers client_no_context_takeover. uWS compresses at
    // zlib's default level (6), which it does not let you change; the others
    // use level 1. Its send() compresses when asked: asked from 1 KiB up, the
    // others' threshold.
    compression: args.deflate ? uWS.DEDICATED_COMPRESSOR | uWS.SHARED_DECOMPRESSOR : uWS.DISABLED,
    ...behavior,
  });
  // Backlog: uSockets listens with 512 (ix-websocket and ws: 511); it sets
  // TCP_NODELAY on accepted sockets itself.
  app.listen('127.0.0.1', 0, (listenSocket) => {
    if (!listenSocket) {
      console.error('uws-server: listen failed');
      process.exit(1);
    }
    serveIpc(() => uWS.us_listen_socket_close(listenSocket));
    send({ type: 'listening', port: uWS.us_socket_local_port(listenSocket), impl: 'uws' });
  });
  return app;
}

if (args.role === 'echo') {
  const compress = Boolean(args.deflate);
  startServer({
    message: (ws, message, isBinary) => {
      ws.send(message, isBinary, compress && message.byteLength >= 1024);
    },
  });
} else if (args.role === 'broadcast') {
  // Every connection subscribes to one topic; the trigger publishes to it
  // through the app, so the sender receives the messages too (as with the
  // others, which send to every connection).
  //
  // The publishing runs in setImmediate, not in the message handler: while a
  // handler runs, uWS keeps the sender's socket corked, and one socket at a
  // time can hold the cork, so when a subscriber's queue of pending publishes
  // fills up inside the handler (32 messages) its messages go out uncorked,
  // a send() per message while the socket takes them. Measured
  // (1,000 subscribers, 50 x 1 KiB, 6 bursts): 125,170 send() calls and ~233k
  // deliveries/s from the handler, 25,000 calls and ~829k/s deferred. The
  // deferral costs one turn of the loop.
  let app = null;
  app = startServer({
    open: (ws) => {
      ws.subscribe('all');
    },
    message: (ws, message, isBinary) => {
      if (isBinary) return;
      const text = Buffer.from(message).toString();
      if (!text.startsWith('bcast ')) return;
      const [, count, size] = text.split(' ');
      const payload = Buffer.alloc(Number(size), 0x62);
      const burst = () => {
        for (let i = 0; i < Number(count); i++) app.publish('all', payload, true);
      };
      if (args.timer) setTimeout(burst, 0);
      else setImmediate(burst);
    },
  });
} else if (args.role === 'idle') {
  startServer({});
} else {
  console.error('uws-server: unknown role', args.role);
  process.exit(64);
}
