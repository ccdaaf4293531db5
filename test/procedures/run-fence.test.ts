/**
 * A run's storage commits are fenced by its job lock on the server they reach (lockCommit-n.lua): a
 * run that no longer holds its job there writes nothing, and the execution runs again from its job.
 * In a Sentinel fail-over with a frozen master this is what keeps a run that took its job from the
 * old master from committing on the new one (test/sentinel); here the lock is taken away by hand.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { jobIdOf } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('fence');
const keys = testKeys(prefix);
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  const started = await startInProcessNode(prefix, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'fence-jobs'),
    // The stalled check that gives the job back comes after one lease.
    SPROCD_EXECUTION_LEASE_MS: '1000',
  });
  node = started.node;
  client = started.client;
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('a run that lost its job lock', () => {
  it('commits nothing, and the execution runs again and commits once', async () => {
    const redis = testClient();
    const { number } = await client.execute('held', { holdMs: 1500 });
    const lockKey = bullQueueKeys(keys.queues.ofNumber(number)).jobLock(jobIdOf(number));
    // The run holds its job: take the lock away while it holds the storage entry, as a lapsed lease
    // or a master replaced under it would.
    await vi.waitFor(async () => expect(await redis.exists(lockKey)).toBe(1), {
      timeout: 5000,
      interval: 20,
    });
    await redis.del(lockKey);

    const view = await waitForState(client, number, 'completed', 20_000);
    // The first start's commit was refused; the second start's is the only one written.
    expect(view.result).toBe(2);
    expect(await client.storage(`fence-${number}`)).toEqual({ commits: 1 });
  });

  it('commits as usual while it holds its job', async () => {
    const { number } = await client.execute('held', { holdMs: 10 });
    const view = await waitForState(client, number, 'completed');
    expect(view.result).toBe(1);
    expect(await client.storage(`fence-${number}`)).toEqual({ commits: 1 });
  });
});
