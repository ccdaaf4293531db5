/**
 * The Sentinel fail-over tests (test/sentinel): a master, two replicas and three sentinels started
 * from redis-server per file, and seconds of fail-over each, so they run apart from `npm test`, one
 * file at a time (.ci/sentinel-test). Standalone, not merged with vitest.config.ts: a merge would
 * concatenate the include lists and run the whole suite.
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
    include: ['test/sentinel/**/*.test.ts'],
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
