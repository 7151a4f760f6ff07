import { defineConfig } from 'vitest/config';

// Each test file runs in its own forked process (the addon keeps per-process
// IO threads and refs), one file at a time: the suites move large payloads
// over loopback and time handshakes, which is steadier on a small machine.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    isolate: true,
    testTimeout: 20_000,
    hookTimeout: 20_000,
    teardownTimeout: 10_000,
  },
});
