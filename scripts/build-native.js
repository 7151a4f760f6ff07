#!/usr/bin/env node
// npm install hook: use a prebuilt binary when one loads, else compile the
// engine and the addon with cmake-js against the running Node's own headers
// (offline: no header download).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const force = process.argv.includes('--force');
const debug = process.argv.includes('--debug');
// --static: OpenSSL and zlib linked in, hidden (for Electron); see CMakeLists.txt.
const staticDeps = process.argv.includes('--static');

if (!force) {
  try {
    require('node-gyp-build')(root);
    console.log('ix-websocket: using existing native binary');
    process.exit(0);
  } catch (_) {
    // nothing loadable: build it
  }
}

const env = { ...process.env };
// The headers that ship with this node (include/node next to bin/node).
const nodeDir = path.resolve(path.dirname(process.execPath), '..');
if (!env.npm_config_nodedir && fs.existsSync(path.join(nodeDir, 'include', 'node', 'node_api.h'))) {
  env.npm_config_nodedir = nodeDir;
}
if (!env.IXWS_NODE_INCLUDE) env.IXWS_NODE_INCLUDE = path.join(nodeDir, 'include', 'node');

const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
const args = [cmakeJs, 'compile', '--parallel', String(Math.max(2, require('os').cpus().length))];
if (debug) args.push('--debug');
if (staticDeps) args.push('--CDIXWS_STATIC_DEPS=ON');
const r = spawnSync(process.execPath, args, { cwd: root, env, stdio: 'inherit' });
process.exit(r.status === null ? 1 : r.status);
