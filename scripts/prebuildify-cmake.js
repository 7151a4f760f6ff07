#!/usr/bin/env node
// prebuildify drives node-gyp; this stands in for node-gyp and runs cmake-js
// instead, leaving the addon in build/Release where prebuildify looks.
'use strict';
const { spawnSync } = require('child_process');
const path = require('path');
const r = spawnSync(process.execPath, [path.join(__dirname, 'build-native.js'), '--force'], {
  stdio: 'inherit',
});
process.exit(r.status === null ? 1 : r.status);
