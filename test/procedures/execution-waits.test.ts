/**
 * FinishWatch over queue shards: a wait for an execution is woken by its own shard's job events (one
 * reader per shard, opened when a wait first needs it) and asks that shard's sets whether it ended.
 */
import { Queue, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FinishWatch } from '../../src/procedures/execution-waits.js';
import { QUEUE_NAME, createKeys, jobIdOf } from '../../src/redis/keys.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const SHARDS = 3;
const prefix = uniquePrefix('waits');
const keys = createKeys(prefix, SHARDS);
/** How long a job runs: long enough that a wait which asked the wrong shard would answer before its end. */
const RUN_MS = 300;
let queues: Queue[];
let workers: Worker[];
let watch: FinishWatch;
let readers = 0;

beforeAll(async () => {
  queues = keys.queues.all.map(
    (shard) => new Queue(QUEUE_NAME, { connection: testClient(), prefix: shard.bullPrefix }),
  );
  workers = keys.queues.all.map(
    (shard) =>
      new Worker(QUEUE_NAME, () => new Promise((r) => setTimeout(r, RUN_MS)), {
        connection: testClient(),
        prefix: shard.bullPrefix,
        concurrency: 8,
      }),
  );
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  watch = new FinishWatch(testClient(), keys, () => {
    readers++;
    return testClient();
  });
});

afterAll(async () => {
  await watch.close();
  await Promise.all(workers.map((w) => w.close()));
  await Promise.all(queues.map((q) => q.close()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('FinishWatch with three queue shards', () => {
  it("wakes each wait by its execution's shard's events, with one reader per shard", async () => {
    const numbers = [3, 4, 5, 6, 7, 8];
    const jobs = await Promise.all(
      numbers.map((n) => queues[keys.queues.ofNumber(n).shard]!.add('echo', {}, { jobId: jobIdOf(n) })),
    );
    const started = Date.now();
    const ended = await Promise.all(numbers.map((n) => watch.until(n, 10_000)));
    // Woken by the events, not by the recheck after a second.
    expect(Date.now() - started).toBeLessThan(900);
    expect(ended).toEqual(numbers.map(() => true));
    for (const job of jobs) {
      expect(await job.getState()).toBe('completed');
    }
    expect(readers).toBe(SHARDS);
  });
});
