// The README's "Usage: the commands" and "Usage: the classes" samples, run as
// written (ES modules with top-level await) against the compiled package: each
// must print what its comments say and exit by itself.
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { afterEach, describe, expect, test } from 'vitest';
import { root } from '../lib/binding';
import { compilePackage, readmeSample } from './support/compile';
import { defer, runCleanup } from './support';

afterEach(runCleanup);

/** Runs one section's ```ts sample as an .mjs file; its exit code and output. */
async function runSample(title: string, name: string): Promise<{ exit: number | null; stdout: string; stderr: string }> {
  const code = readmeSample(title, 'ts');
  expect(code).toContain("from 'ix-websocket'");
  const out = path.join(root, 'build-readme-samples');
  compilePackage(out);
  const file = path.join(out, name);
  // The samples are TypeScript only in their fence: they have no type annotations to strip.
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
  return { exit, stdout, stderr };
}

describe('README', () => {
  test('"Usage: the commands": the sample prints the connection and both echoes, and exits by itself', async () => {
    const { exit, stdout, stderr } = await runSample('Usage: the commands', 'commands-sample.mjs');
    expect(exit, `stderr: ${stderr}`).toBe(0);
    expect(stdout).toBe("[ 1 ]\n[ 'hello', <Buffer 01> ]\n");
  }, 120_000);

  test('"Usage: the classes": the sample prints the echo and the close, and exits by itself', async () => {
    const { exit, stdout, stderr } = await runSample('Usage: the classes', 'classes-sample.mjs');
    expect(exit, `stderr: ${stderr}`).toBe(0);
    expect(stdout).toBe('hello\nclosed 4000 bye\n');
  }, 120_000);
});
