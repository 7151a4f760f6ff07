// The README's "Usage: the classes" sample, run as written (an ES module
// with top-level await) against the compiled package: it must print the echo
// and the close it asks for, and exit by itself.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage, readmeSample } from './support/compile';
import { defer, runCleanup } from './support';

afterEach(runCleanup);

describe('README', () => {
  test('"Usage: the classes": the sample prints the echo and the close, and exits by itself', async () => {
    const code = readmeSample('Usage: the classes', 'ts');
    expect(code).toContain("from 'ix-websocket'");
    const out = path.join(root, 'build-readme-samples');
    compilePackage(out);
    const file = path.join(out, 'classes-sample.mjs');
    // The sample is TypeScript only in its fence: it has no type annotations to strip.
    fs.writeFileSync(file, code.replace("from 'ix-websocket'", `from ${JSON.stringify(path.join(out, 'lib', 'index.js'))}`));
    const p = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    defer(() => p.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const exit = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => resolve(-1), 15_000);
      p.on('exit', (c) => {
        clearTimeout(timer);
        resolve(c);
      });
    });
    expect(exit, `stderr: ${stderr}`).toBe(0);
    expect(stdout).toBe('hello\nclosed 4000 bye\n');
  }, 120_000);
});
