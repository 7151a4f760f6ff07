#!/usr/bin/env node
// Builds prebuilt binaries into prebuilds/<platform>-<arch>/ in the layout
// node-gyp-build loads (the names prebuildify gives: <package>[.<libc>].node,
// N-API, so one file serves every Node version and Electron), stripped.
//
//   node scripts/prebuild.js                      this machine's platform-arch
//   node scripts/prebuild.js linux-x64 linux-arm64
//   --profile static|node   override the per-target default below
//
// Each target builds in a folder of its own (build-prebuilds/<target>), so a
// prebuild never disturbs build/ (the developer's binary) and vice versa.
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { build } = require('./build-native');

const root = path.resolve(__dirname, '..');
const pkg = require(path.join(root, 'package.json'));

// Which profile each target ships (README "Prebuilt binaries" says why):
// static = OpenSSL and zlib linked in with hidden symbols and no external
// buffers (loads in Node and Electron); node = uses the OpenSSL, zlib and
// libuv of the Node that loads it (smaller, Node only).
const PROFILES = {
  'linux-x64': 'static',
  'linux-arm64': 'node',
};
const defaultProfile = 'node';

/** The C library tag node-gyp-build matches on Linux ("glibc" or "musl"). */
function libc() {
  if (process.platform !== 'linux') return '';
  if (fs.existsSync('/etc/alpine-release')) return 'musl';
  const report = process.report && process.report.getReport ? process.report.getReport() : null;
  return report && report.header && report.header.glibcVersionRuntime ? 'glibc' : 'musl';
}

/** The strip program for a target, or undefined when there is nothing to strip with. */
function stripTool(target) {
  if (process.platform === 'win32') return undefined;
  if (target === 'linux-arm64' && os.arch() !== 'arm64') return ['aarch64-linux-gnu-strip', ['--strip-all']];
  // macOS strip: -x drops local symbols and keeps the exported ones.
  if (process.platform === 'darwin') return ['strip', ['-x']];
  return ['strip', ['--strip-all']];
}

function prebuild(target, profileOverride) {
  const [platform, arch] = target.split('-');
  if (platform !== process.platform) throw new Error(`prebuild: cannot build ${target} on ${process.platform}`);
  const profile = profileOverride || PROFILES[target] || defaultProfile;
  const out = path.join(root, 'build-prebuilds', target);
  console.log(`\n== prebuild ${target} (${profile} profile) in ${path.relative(root, out)}`);
  const product = build({ force: true, debug: false, staticDeps: profile === 'static', arch, out });
  const dir = path.join(root, 'prebuilds', target);
  fs.mkdirSync(dir, { recursive: true });
  const tag = libc();
  const name = `${pkg.name.replace(/\//g, '+')}${tag ? `.${tag}` : ''}.node`;
  const dest = path.join(dir, name);
  fs.copyFileSync(product, dest);
  const strip = stripTool(target);
  if (strip) {
    const r = spawnSync(strip[0], [...strip[1], dest], { stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`prebuild: ${strip[0]} failed on ${dest}`);
  }
  const size = fs.statSync(dest).size;
  console.log(`prebuild: ${path.relative(root, dest)} (${profile}, ${(size / 1024).toFixed(0)} KiB stripped)`);
  return dest;
}

module.exports = { prebuild, PROFILES };

if (require.main === module) {
  const args = process.argv.slice(2);
  let profile;
  const targets = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--profile') {
      profile = args[++i];
      if (profile !== 'static' && profile !== 'node') {
        console.error('prebuild: --profile is static or node');
        process.exit(2);
      }
    } else targets.push(args[i]);
  }
  if (!targets.length) targets.push(`${process.platform}-${os.arch()}`);
  try {
    for (const t of targets) prebuild(t, profile);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
