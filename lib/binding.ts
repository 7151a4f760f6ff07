// Loads the native addon once (or the file IXWS_BINARY names). node-gyp-build
// looks in prebuilds/ and then in build/Release under the package root; the
// root is found by walking up to package.json because this file runs both as
// lib/binding.ts (vitest) and as dist/lib/binding.js (compiled), at different
// depths.
import * as fs from 'fs';
import * as path from 'path';
import nodeGypBuild from 'node-gyp-build';
import type { Binding } from '../binding';

function packageRoot(start: string): string {
  let dir = start;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`ix-websocket: no package.json above ${start}`);
    dir = parent;
  }
}

/** The package folder (holds package.json, build/, prebuilds/). */
export const root: string = packageRoot(__dirname);

function load(): Binding {
  // IXWS_BINARY=/path/to/addon.node loads that file instead (e.g. the
  // sanitizer build, test/sanitize/binding.sh).
  if (process.env.IXWS_BINARY) return require(path.resolve(process.env.IXWS_BINARY)) as Binding;
  try {
    return nodeGypBuild(root) as Binding;
  } catch (e) {
    const why = e instanceof Error ? e.message.trim() : String(e);
    // node-gyp-build's message lists the platform tags it looked for; say
    // what the user can do about it.
    throw new Error(
      `ix-websocket: no native binary loads here (${why}). The package ships prebuilt binaries for ` +
        `linux-x64 and linux-arm64 (glibc); elsewhere it is compiled at install time, which needs ` +
        `install scripts enabled, a C++17 compiler and CMake; or run "npm run build:native" in ${root}.`,
      { cause: e },
    );
  }
}

/** The native module, typed by binding.d.ts. */
export const binding: Binding = load();
