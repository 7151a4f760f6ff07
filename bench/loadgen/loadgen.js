#!/usr/bin/env node
'use strict';
// Starts the native load generator (a Node addon, see loadgen.cc) in this
// process with the command line's arguments, e.g.
//   node bench/loadgen/loadgen.js --mode echo --url ws://127.0.0.1:8080/ --conns 100
// JSON result lines go to stdout. bench/run.js builds the addon
// (build-loadgen/loadgen.node); IXWS_LOADGEN names another build of it.
// Do not touch process.stdout here: the addon writes to fd 1 itself.
const path = require('path');

const file = process.env.IXWS_LOADGEN ? path.resolve(process.env.IXWS_LOADGEN) : path.join(__dirname, '..', '..', 'build-loadgen', 'loadgen.node');
let addon;
try {
  addon = require(file);
} catch (e) {
  process.stderr.write(`loadgen: cannot load ${file} (${e.message.split('\n')[0]}); build it with: node bench/run.js --build-only\n`);
  process.exit(69);
}
process.exitCode = addon.run(process.argv.slice(2));
