// Tarball smoke test, CommonJS: require the installed package, start a server
// on a free port, echo a text and a binary message through our own client,
// clear both, and let the process end by itself (the harness times it out
// otherwise). Prints one "ok" line naming the binary that was loaded.
'use strict';
const assert = require('assert');
const path = require('path');
const ix = require('ix-websocket');

const pkgDir = path.dirname(require.resolve('ix-websocket/package.json'));
const binary = require('node-gyp-build').path(pkgDir);

async function main() {
  const server = new ix.WebSocketServer({ port: 0 });
  server.on('message', (client, ctx) => server.send(ctx.data, { clients: [client] }));
  const started = server.start();
  assert.strictEqual(started.success, true, `server start: ${started.message}`);
  const client = new ix.WebSocketClient(`ws://127.0.0.1:${server.port}/smoke`);
  const got = [];
  const done = new Promise((resolve) => client.on('message', (ctx) => got.push(ctx.data) === 2 && resolve()));
  const status = await client.start();
  assert.strictEqual(status.success, true, `client start: ${status.errorStr}`);
  client.send('hello from cjs ✓');
  client.send(Buffer.from([0, 1, 2, 255]));
  await Promise.race([done, new Promise((_, reject) => setTimeout(() => reject(new Error('no echo within 20 s')), 20000).unref())]);
  assert.strictEqual(got[0], 'hello from cjs ✓');
  assert.ok(Buffer.isBuffer(got[1]) && got[1].equals(Buffer.from([0, 1, 2, 255])), 'binary echo');
  client.clear();
  server.clear();
  console.log(`smoke ok: cjs, node ${process.version} ${process.arch}, ${path.relative(pkgDir, binary)}`);
}

main().catch((e) => {
  console.error(`smoke FAILED: ${e && e.stack ? e.stack : e}`);
  process.exitCode = 1;
});
