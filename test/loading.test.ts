// Loading the addon: a machine with no binary that loads (no prebuild for its
// platform, nothing compiled) gets an error that says what is missing and
// what to do, instead of node-gyp-build's bare list of platform tags.
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, expect, test, vi } from 'vitest';

const saved = process.env.IX_WEBSOCKET_PREBUILD;
// IXWS_BINARY (test/sanitize/binding.sh) names a binary that loads: unset here.
const savedBinary = process.env.IXWS_BINARY;
afterEach(() => {
  if (saved === undefined) delete process.env.IX_WEBSOCKET_PREBUILD;
  else process.env.IX_WEBSOCKET_PREBUILD = saved;
  if (savedBinary !== undefined) process.env.IXWS_BINARY = savedBinary;
  vi.resetModules();
});

test('no loadable binary: the error names the platform, the prebuilt platforms and how to build', async () => {
  // node-gyp-build looks in $IX_WEBSOCKET_PREBUILD instead of the package
  // folder: an empty folder holds neither build/Release nor prebuilds/.
  const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-nobinary-'));
  try {
    process.env.IX_WEBSOCKET_PREBUILD = empty;
    delete process.env.IXWS_BINARY;
    vi.resetModules();
    const loading = import('../lib/binding');
    await expect(loading).rejects.toThrow(/^ix-websocket: no native binary loads here \(No native build was found for platform=\w+ arch=\w+ /);
    await expect(loading).rejects.toThrow(`loaded from: ${empty}`);
    await expect(loading).rejects.toThrow(/prebuilt binaries for linux-x64 and linux-arm64 \(glibc\).*install scripts enabled, a C\+\+17 compiler and CMake; or run "npm run build:native"/s);
  } finally {
    fs.rmSync(empty, { recursive: true, force: true });
  }
});

test("the install script: npm's --build-from-source compiles even where a binary loads; otherwise it says why it builds", () => {
  const { spawnSync } = require('child_process') as typeof import('child_process');
  const script = path.join(__dirname, '..', 'scripts', 'build-native.js');
  // No cmake on PATH (only node's folder): a build stops at once, which is
  // all this needs to see that one was started.
  const bare = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bare-path-'));
  fs.symlinkSync(process.execPath, path.join(bare, 'node'));
  const env = { ...process.env, PATH: bare, IX_WEBSOCKET_PREBUILD: undefined, IXWS_BINARY: undefined };
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-bfs-'));
  try {
    const plain = spawnSync(process.execPath, [script, '--out', out], { env, encoding: 'utf8', timeout: 60_000 });
    expect(plain.status, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/^ix-websocket: using /m); // the checkout's build loads
    const forced = spawnSync(process.execPath, [script, '--out', out], {
      env: { ...env, npm_config_build_from_source: 'true' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(forced.stdout).toMatch(/^ix-websocket: building from source \(npm_config_build_from_source\)$/m);
    expect(forced.stdout).not.toMatch(/using /);
    expect(forced.status).not.toBe(0); // cmake is not on PATH: the build it started failed
    // Nothing loads from an empty package folder: the reason comes before the build.
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-nobinary-'));
    const none = spawnSync(process.execPath, [script, '--out', out], {
      env: { ...env, IX_WEBSOCKET_PREBUILD: empty },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(none.stdout).toMatch(/^ix-websocket: no usable prebuilt binary \(.*No native build was found.*\); building from source$/m);
    fs.rmSync(empty, { recursive: true, force: true });
  } finally {
    fs.rmSync(bare, { recursive: true, force: true });
    fs.rmSync(out, { recursive: true, force: true });
  }
}, 120_000);
