/**
 * The Redis Cluster tests (test/cluster): six redis-server nodes joined by redis-cli per file, and
 * seconds of fail-over, so they run apart from `npm test`, one file at a time (.ci/cluster-test).
 * Standalone, not merged with vitest.config.ts: a merge would concatenate the include lists and run
 * the whole suite.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    alias: {
      'sprocd/client': fileURLToPath(new URL('./src/client/index.ts', import.meta.url)),
      sprocd: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/cluster/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    expect: { requireAssertions: true },
    allowOnly: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
  },
});
