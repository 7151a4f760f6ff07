'use strict';
// What `npm run bench` needs, checked before it does any work, and the build
// of the load generator. Every missing piece is reported on one line that says
// what is missing and how to get it.
//
// The load generator is a Node addon (bench/loadgen): it compiles against the
// headers that ship with Node (include/node: uv.h, zlib.h, openssl/, node_api.h)
// and uses the libuv, OpenSSL and zlib the node binary exports, exactly as the
// ix-websocket addon does. So the harness needs what `npm install` needs (Node,
// a C++ compiler, CMake and a build tool for it) and no system library.
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const BUILD_DIR = path.join(ROOT, 'build-loadgen');
const LOADGEN_ADDON = path.join(BUILD_DIR, 'loadgen.node');
const LOADGEN_JS = path.join(__dirname, 'loadgen', 'loadgen.js');
const UWS_PACKAGE = '@trufflesuite/uws-js-unofficial';

// An executable named `name` on PATH (or the path itself when it has a slash).
function which(name) {
  const isExec = (p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return fs.statSync(p).isFile();
    } catch (_) {
      return false;
    }
  };
  if (name.includes('/')) return isExec(name) ? name : null;
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (dir && isExec(path.join(dir, name))) return path.join(dir, name);
  }
  return null;
}

const NODE_HEADERS = ['node_api.h', 'uv.h', 'zlib.h', path.join('openssl', 'sha.h'), path.join('openssl', 'evp.h')];

// Node's own include/node folder: IXWS_NODE_INCLUDE, next to the running node
// (official tarballs and most packages), or cmake-js's copy of the headers.
// An IXWS_NODE_INCLUDE that is set is the only candidate: a wrong one is
// reported, not silently replaced by another Node's headers.
function nodeIncludeDir() {
  const complete = (dir) => NODE_HEADERS.every((h) => fs.existsSync(path.join(dir, h)));
  if (process.env.IXWS_NODE_INCLUDE) return complete(process.env.IXWS_NODE_INCLUDE) ? path.resolve(process.env.IXWS_NODE_INCLUDE) : null;
  const candidates = [];
  candidates.push(path.resolve(path.dirname(process.execPath), '..', 'include', 'node'));
  candidates.push(path.join(os.homedir(), '.cmake-js', `node-${process.arch}`, process.version, 'include', 'node'));
  return candidates.find(complete) || null;
}

function resolvable(id) {
  try {
    return require.resolve(id, { paths: [ROOT] });
  } catch (_) {
    return null;
  }
}

// The uWebSockets.js binary for this node (platform, arch, ABI), by file name.
function uwsBinary() {
  const pkg = resolvable(`${UWS_PACKAGE}/package.json`);
  if (!pkg) return { pkg: null, file: null };
  const file = path.join(path.dirname(pkg), 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  return { pkg, file: fs.existsSync(file) ? file : null };
}

// Returns the list of problems (one line each); empty when all is there.
// needs: { uws: bool, build: bool (the load generator must be compiled) }
function check({ uws = true, build = true } = {}) {
  const problems = [];
  const say = (what, how) => problems.push(`bench: ${what}: ${how}`);
  if (process.platform !== 'linux') {
    say(`runs on Linux only (this is ${process.platform})`, 'the load generator reads /proc for the servers\' CPU time; run it on a Linux machine or VM');
    return problems;
  }
  if (build) {
    if (!which('cmake')) say('cmake not found on PATH', 'install CMake >= 3.15 (Debian/Ubuntu: apt-get install cmake; or from cmake.org)');
    const cxx = process.env.CXX ? which(process.env.CXX.split(' ')[0]) : which('c++') || which('g++') || which('clang++');
    if (!cxx) say(`no C++ compiler found (${process.env.CXX ? `CXX=${process.env.CXX}` : 'c++, g++, clang++'})`, 'install one (Debian/Ubuntu: apt-get install g++)');
    if (!which('ninja') && !which('make')) say('no build tool for CMake (ninja or make) on PATH', 'install one (Debian/Ubuntu: apt-get install ninja-build, or apt-get install make)');
    if (!nodeIncludeDir() && process.env.IXWS_NODE_INCLUDE) {
      const lacking = NODE_HEADERS.filter((h) => !fs.existsSync(path.join(process.env.IXWS_NODE_INCLUDE, h)));
      say(`IXWS_NODE_INCLUDE=${process.env.IXWS_NODE_INCLUDE} lacks ${lacking.join(', ')}`,
        'point it at the include/node folder of a Node installation, or unset it to use the running node\'s own');
    } else if (!nodeIncludeDir()) {
      say(`Node's headers (include/node with ${NODE_HEADERS.join(', ')}) not found for ${process.execPath}`,
        'use a Node that ships them (the nodejs.org tarballs and NodeSource packages do) or point IXWS_NODE_INCLUDE at such an include/node folder');
    }
  }
  if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'index.js'))) say('ix-websocket is not compiled (dist/lib/index.js missing)', 'run npm install (or npm run build:ts) in the repository');
  let binary = null;
  try {
    binary = require('node-gyp-build').path(ROOT);
  } catch (_) {}
  if (!binary) say('the ix-websocket native addon is not built', 'run npm install (or npm run build:native) in the repository');
  for (const m of ['ws', 'bufferutil', 'utf-8-validate']) {
    if (!resolvable(m)) say(`${m} is not installed`, 'run npm install in the repository (the benchmark uses its devDependencies)');
  }
  if (uws) {
    const u = uwsBinary();
    if (!u.pkg) say(`uWebSockets.js (${UWS_PACKAGE}) is not installed`, 'run npm install in the repository (a devDependency), or pass --no-uws to leave it out');
    else if (!u.file) {
      say(`uWebSockets.js has no binary for ${process.platform}-${process.arch} with Node ABI ${process.versions.modules} (Node ${process.version})`,
        'it ships Node 16, 18 and 20 binaries for Linux x64/arm64: run the benchmark with Node 20, or pass --no-uws to leave it out');
    }
  }
  return problems;
}

function cmakeGenerator() {
  return which('ninja') ? 'Ninja' : 'Unix Makefiles';
}

// Configures (first time, or when the generator changed) and builds the load
// generator addon; incremental after that. Throws with the build's output.
function buildLoadgen({ log = () => {} } = {}) {
  const generator = cmakeGenerator();
  const cache = path.join(BUILD_DIR, 'CMakeCache.txt');
  if (fs.existsSync(cache)) {
    const m = /^CMAKE_GENERATOR:INTERNAL=(.*)$/m.exec(fs.readFileSync(cache, 'utf8'));
    // A cache from another generator (or from the old system-libuv build) is
    // started again rather than patched.
    if (!m || m[1] !== generator || !/^NODE_INCLUDE_DIR:/m.test(fs.readFileSync(cache, 'utf8'))) fs.rmSync(BUILD_DIR, { recursive: true, force: true });
  }
  const include = nodeIncludeDir();
  const steps = [
    ['cmake', ['-S', path.join(__dirname, 'loadgen'), '-B', BUILD_DIR, '-G', generator, `-DNODE_INCLUDE_DIR=${include}`, '-DCMAKE_BUILD_TYPE=Release']],
    ['cmake', ['--build', BUILD_DIR, '--parallel', '2']],
  ];
  const t0 = Date.now();
  for (const [cmd, args] of steps) {
    const r = spawnSync(cmd, args, { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`load generator build failed: ${cmd} ${args.join(' ')}\n${r.stdout}\n${r.stderr}`);
  }
  const ms = Date.now() - t0;
  if (ms > 2000) log(`built the load generator (${(ms / 1000).toFixed(1)} s, ${generator}, Node headers ${include})`);
  return LOADGEN_ADDON;
}

module.exports = { check, buildLoadgen, nodeIncludeDir, uwsBinary, which, LOADGEN_ADDON, LOADGEN_JS, UWS_PACKAGE, ROOT };
