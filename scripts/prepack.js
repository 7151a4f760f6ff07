#!/usr/bin/env node
// `npm pack` / `npm publish` run this first (the "prepack" script), so a
// tarball never ships without its JavaScript or its prebuilt binaries:
//  1. compiles lib/ (dist/, with the ESM entry point);
//  2. builds the prebuilds this machine can make: its own platform-arch, and
//     on linux-x64 also linux-arm64 (cross-compiled; needs
//     g++-aarch64-linux-gnu, see cmake/aarch64-linux-gnu.cmake);
//  3. checks that every required prebuild is in prebuilds/ and fails if not.
//
// IXWS_PREBUILD_TARGETS=linux-x64,linux-arm64 (or "none") overrides step 2:
// the release workflow builds each platform on its own runner, merges the
// artifacts into prebuilds/ and packs with "none".
// IXWS_PREBUILDS_REQUIRED=linux-x64,darwin-arm64,... (default: the targets
// of step 2) lists the folders that must hold a binary for step 3.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { prebuild } = require('./prebuild');

const root = path.resolve(__dirname, '..');
const list = (v) => (v || '').split(/[\s,]+/).filter((x) => x && x !== 'none');

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', shell: process.platform === 'win32' });
  if (r.status !== 0) throw new Error(`prepack: ${cmd} ${args.join(' ')} failed (${r.status ?? r.signal})`);
}

function main() {
  run('npm', ['run', 'build:ts']);

  const host = `${process.platform}-${os.arch()}`;
  let targets;
  if (process.env.IXWS_PREBUILD_TARGETS !== undefined) targets = list(process.env.IXWS_PREBUILD_TARGETS);
  else targets = host === 'linux-x64' ? ['linux-x64', 'linux-arm64'] : [host];
  for (const t of targets) prebuild(t);

  const required = process.env.IXWS_PREBUILDS_REQUIRED !== undefined ? list(process.env.IXWS_PREBUILDS_REQUIRED) : targets;
  const missing = [];
  for (const r of required) {
    const dir = path.join(root, 'prebuilds', r);
    const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
    if (!files.length) missing.push(r);
  }
  if (!required.length) throw new Error('prepack: no prebuild required: refusing to pack a tarball without binaries');
  if (missing.length) throw new Error(`prepack: missing prebuilds for ${missing.join(', ')} (prebuilds/<platform>-<arch>/*.node)`);

  console.log('\nprepack: prebuilds in the tarball:');
  for (const d of fs.readdirSync(path.join(root, 'prebuilds')).sort()) {
    for (const f of fs.readdirSync(path.join(root, 'prebuilds', d)).filter((x) => x.endsWith('.node'))) {
      const size = fs.statSync(path.join(root, 'prebuilds', d, f)).size;
      console.log(`  prebuilds/${d}/${f}  ${(size / 1024).toFixed(0)} KiB`);
    }
  }
}

try {
  main();
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
