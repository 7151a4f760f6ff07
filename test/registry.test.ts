// The addon's connection ref table (native/registry.h, ConnRefs) on its own:
// test/native/registry_test.cc compares it with a plain model through long
// random sequences (out-of-order closes, lowest free ref reuse, stale ids,
// clear with refs in use, growth and shrinking of its hash index). Built here
// with the C++ compiler that builds the addon.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { expect, test } from 'vitest';

const root = path.resolve(__dirname, '..');

test('ConnRefs agrees with a model: lowest free refs, out-of-order closes, stale ids, clear', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ixws-registry-'));
  try {
    const exe = path.join(dir, 'registry_test');
    const cxx = process.env.CXX || 'c++';
    const build = spawnSync(
      cxx,
      ['-std=c++17', '-O1', '-I', path.join(root, 'native'), path.join(root, 'test/native/registry_test.cc'), '-o', exe],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(build.status, `${cxx} failed: ${build.stdout}${build.stderr}`).toBe(0);
    const run = spawnSync(exe, [], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stdout).toMatch(/^\d+ passed, 0 failed$/m);
    expect(run.status).toBe(0);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}, 90_000);
