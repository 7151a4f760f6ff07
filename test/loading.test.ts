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
