#!/usr/bin/env node
// The `ixws` command (package.json "bin"): see `ixws --help` and the README.
import { main } from './main';

main(process.argv.slice(2)).then((code) => {
  // Everything the command started is stopped by now; the process ends when
  // the output is flushed.
  process.exitCode = code;
});
