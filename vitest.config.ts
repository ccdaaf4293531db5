import { defineConfig } from 'vitest/config';

import { fileURLToPath } from 'node:url';

export default defineConfig({
  resolve: {
    alias: {
      'sprocd/client': fileURLToPath(new URL('./src/client/index.ts', import.meta.url)),
      sprocd: fileURLToPath(new URL('./src/index.ts', import.meta.url)),
    },
  },
  test: {
    // Two projects share the settings below. `include` and `exclude` are each project's own: a merged
    // list would be the concatenation of both.
    projects: [
      {
        extends: true,
        test: {
          name: 'main',
          include: ['test/**/*.test.ts'],
          // The Sentinel and Cluster fail-over tests run on their own (vitest.sentinel.config.ts,
          // vitest.cluster.config.ts; .ci/sentinel-test, .ci/cluster-test).
          exclude: ['test/sentinel/**', 'test/cluster/**', '**/node_modules/**'],
        },
      },
      {
        // The session suites again with the entries in 4 data slots (SPROCD_STORAGE_SLOTS).
        extends: true,
        test: {
          name: 'storage-slots',
          include: ['test/session/*.test.ts'],
          env: { SPROCD_TEST_STORAGE_SLOTS: '4' },
        },
      },
    ],
    reporters: ['default', './test/support/summary-reporter.ts'],
    globalSetup: ['test/support/global-setup.ts'],
    // A test that asserts nothing, or an `.only` left behind, fails the run instead of passing quietly.
    expect: { requireAssertions: true },
    allowOnly: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more forks than that only makes process-crossing tests slower and flakier.
    pool: 'forks',
    maxWorkers: 2,
    fileParallelism: true,
  },
});
