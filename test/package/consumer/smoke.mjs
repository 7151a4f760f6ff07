// Tarball smoke test, ESM: the same round trip through `import`, and the
// named exports, the default export and require() share one module instance.
import assert from 'assert';
import { createRequire } from 'module';
import ix, { WebSocketServer, websocketClient, websocketClientStart, websocketClientSend, websocketClientClear } from 'ix-websocket';

const require = createRequire(import.meta.url);
assert.strictEqual(ix.WebSocketServer, WebSocketServer, 'default export and named export are the same class');
assert.strictEqual(require('ix-websocket').WebSocketServer, WebSocketServer, 'import and require share one instance');

const server = new WebSocketServer({ port: 0 });
server.on('message', (client, ctx) => server.send(ctx.data, { clients: [client] }));
assert.strictEqual(server.start().success, true);
let resolveEcho;
const echo = new Promise((r) => (resolveEcho = r));
const client = websocketClient({
  url: `ws://127.0.0.1:${server.port}/esm`,
  method: (_s, _c, type, ctx) => type === 'message' && resolveEcho(ctx.data),
});
const status = await websocketClientStart(client);
assert.strictEqual(status.success, true, status.errorStr);
websocketClientSend(client, 'hello from esm ✓');
const data = await Promise.race([echo, new Promise((_, reject) => setTimeout(() => reject(new Error('no echo within 20 s')), 20000).unref())]);
assert.strictEqual(data, 'hello from esm ✓');
websocketClientClear(client);
server.clear();
// ix-websocket/redis resolves; without the optional ioredis installed, a bus
// says what to install when it opens (and nothing loads before).
const { redisBus } = await import('ix-websocket/redis');
const bus = redisBus({ url: 'redis://127.0.0.1:1' });
assert.throws(() => bus.open({ message() {}, error() {}, state() {} }), /npm install ioredis/);
console.log(`smoke ok: esm, node ${process.version} ${process.arch}`);
