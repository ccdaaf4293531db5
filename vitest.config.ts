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
    // The projects share the settings below. `include` and `exclude` are each project's own: a merged
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
      {
        // The procedure, backup and event suites again with the executions in 2 queue shards
        // (SPROCD_QUEUE_SHARDS), on one Redis.
        extends: true,
        test: {
          name: 'queue-shards',
          include: [
            'test/procedures/*.test.ts',
            'test/lifecycle/backup.test.ts',
            'test/lifecycle/restore.test.ts',
            'test/events/*.test.ts',
            'test/api/events.redis.test.ts',
            'test/api/executions.test.ts',
            'test/api/execution-admin.redis.test.ts',
          ],
          // Suites that do not touch the queue's keys, or set their own shard count, run once.
          exclude: [
            'test/procedures/{define,names,params,json,failure,concurrency-gate}.test.ts',
            'test/procedures/{shard-workers,sharded-pages,execution-waits}.test.ts',
            'test/procedures/{semaphores,signals,workers,isolation-thread}.test.ts',
            'test/procedures/{delivery,sync,workers}.process.test.ts',
          ],
          env: { SPROCD_TEST_QUEUE_SHARDS: '2' },
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
