#!/usr/bin/env node
// npm install hook and `npm run build:native`: use a binary that loads (a
// prebuild from prebuilds/ or an earlier build) unless --force, else compile
// the engine and the addon with cmake-js against the running Node's own
// headers (offline: no header download).
//
//   --static        the Electron profile: OpenSSL and zlib linked in with
//                   hidden symbols, no external buffers (CMakeLists.txt)
//   --debug         Debug build type
//   --arch arm64    cross-compile for linux-arm64 (cmake/aarch64-linux-gnu.cmake)
//   --out DIR       build folder (default build/, where node-gyp-build looks)
//   --sanitize      AddressSanitizer + UndefinedBehaviorSanitizer with clang,
//                   into build-addon-asan/ unless --out (never over build/Release);
//                   load it with IXWS_BINARY (see test/sanitize/binding.sh)
//
// npm's --build-from-source (npm_config_build_from_source, as prebuild-install
// and node-pre-gyp read it) counts as --force: the install compiles.
//
// Every build configures again with the profile's options spelled out, so
// switching profiles on an existing build folder takes effect (cmake-js
// `compile` skips configuring once a CMakeCache.txt exists).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.resolve(__dirname, '..');

function parse(argv) {
  const opts = { force: false, debug: false, staticDeps: false, sanitize: false, arch: os.arch(), out: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`build-native: ${a} needs a value`);
      return v;
    };
    if (a === '--force') opts.force = true;
    else if (a === '--debug') opts.debug = true;
    else if (a === '--static') opts.staticDeps = true;
    else if (a === '--sanitize') opts.sanitize = true;
    else if (a === '--arch') opts.arch = value();
    else if (a === '--out') opts.out = path.resolve(value());
    else throw new Error(`build-native: unknown option ${a}`);
  }
  if (opts.out === undefined) opts.out = path.join(root, opts.sanitize ? 'build-addon-asan' : 'build');
  return opts;
}

/** Builds the addon; returns the path of the .node file. Throws on failure. */
function build(opts) {
  const env = { ...process.env };
  // The headers that ship with this node (include/node next to bin/node): the
  // N-API headers come from node-api-headers (package.json binary.napi_versions),
  // uv.h and, for the default profile, OpenSSL's and zlib's from here.
  const nodeDir = path.resolve(path.dirname(process.execPath), '..');
  const nodeInclude = path.join(nodeDir, 'include', 'node');
  if (!env.IXWS_NODE_INCLUDE) {
    if (!fs.existsSync(path.join(nodeInclude, 'uv.h'))) {
      throw new Error(`build-native: no uv.h in ${nodeInclude}; set IXWS_NODE_INCLUDE to a folder with Node's headers (include/node)`);
    }
    env.IXWS_NODE_INCLUDE = nodeInclude;
  }
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  const common = ['--out', opts.out];
  if (opts.debug) common.push('--debug');
  const defs = [`--CDIXWS_STATIC_DEPS=${opts.staticDeps ? 'ON' : 'OFF'}`, '--CDIXWS_NO_EXTERNAL_BUFFERS=AUTO',
    `--CDIXWS_SANITIZE=${opts.sanitize ? 'address' : ''}`];
  if (opts.sanitize) defs.push('--CDCMAKE_C_COMPILER=clang', '--CDCMAKE_CXX_COMPILER=clang++');
  if (opts.arch !== os.arch()) {
    if (process.platform !== 'linux' || opts.arch !== 'arm64') {
      throw new Error(`build-native: cross-compiling to ${process.platform}-${opts.arch} is not set up (only linux-arm64)`);
    }
    defs.push(`--CDCMAKE_TOOLCHAIN_FILE=${path.join(root, 'cmake', 'aarch64-linux-gnu.cmake')}`);
    common.push('--arch', opts.arch);
  }
  const run = (args) => {
    const r = spawnSync(process.execPath, [cmakeJs, ...args], { cwd: root, env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`build-native: cmake-js ${args[0]} failed (${r.status ?? r.signal})`);
  };
  // A cache made for another target cannot be reconfigured: start over.
  const cache = path.join(opts.out, 'CMakeCache.txt');
  if (fs.existsSync(cache)) {
    const text = fs.readFileSync(cache, 'utf8');
    const toolchain = /^CMAKE_TOOLCHAIN_FILE:[^=]*=(.*)$/m.exec(text);
    const wantCross = opts.arch !== os.arch();
    if (Boolean(toolchain && toolchain[1]) !== wantCross) fs.rmSync(opts.out, { recursive: true, force: true });
  }
  run(['configure', ...common, ...defs]);
  run(['build', ...common, '--parallel', String(Math.max(2, os.cpus().length))]);
  const product = path.join(opts.out, opts.debug ? 'Debug' : 'Release', 'ix_websocket.node');
  if (!fs.existsSync(product)) throw new Error(`build-native: ${product} was not produced`);
  return product;
}

module.exports = { build };

if (require.main === module) {
  let opts;
  try {
    opts = parse(process.argv.slice(2));
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  const fromSource = /^(1|true)$/i.test(process.env.npm_config_build_from_source || '');
  if (fromSource) console.log('ix-websocket: building from source (npm_config_build_from_source)');
  if (!opts.force && !opts.sanitize && !fromSource) {
    try {
      const found = require('node-gyp-build').path(root);
      require(found);
      console.log(`ix-websocket: using ${path.relative(root, found)}`);
      process.exit(0);
    } catch (e) {
      // Nothing loadable: say why before the build's own output (a failed
      // build's message would otherwise be all the user sees).
      console.log(`ix-websocket: no usable prebuilt binary (${String(e && e.message).split('\n')[0]}); building from source`);
    }
  }
  try {
    const product = build(opts);
    console.log(`ix-websocket: built ${path.relative(root, product)} (${opts.staticDeps ? 'static OpenSSL/zlib, no external buffers' : "Node's OpenSSL/zlib"}${opts.sanitize ? ', ASan+UBSan' : ''})`);
  } catch (e) {
    console.error(e.message);
    process.exit(1);
  }
}
