/**
 * A run cut by Redis (REDIS_UNAVAILABLE, NOT_REPLICATED: a fail-over, a restart of Redis) runs again a
 * moment later without using up an attempt, up to SPROCD_MAX_RECOVERIES such re-runs; an at-most-once
 * execution and an error of the procedure's own fail as before.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import {
  isRedisOutage,
  isRunFenced,
  outageDelayMs,
  recoveriesSoFar,
} from '../../src/procedures/outage-retry.js';
import { reviveError, serializeError } from '../../src/procedures/thread/protocol.js';
import { RunFencedError } from '../../src/session/errors.js';
import { RedisUnavailableError, SprocdError } from '../../src/errors.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('outage');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  const started = await startInProcessNode(prefix, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'outage-jobs'),
    SPROCD_MAX_RECOVERIES: '2',
  });
  node = started.node;
  client = started.client;
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('a run cut by Redis', () => {
  it('runs again without using up an attempt, and completes', async () => {
    const { number } = await client.execute('cut', { cuts: 2 });
    const view = await waitForState(client, number, 'completed');
    expect(view.result).toBe(3);
    expect(view.attempt).toBe(3);
    expect(view.attempts ?? 1).toBe(1);
  });

  it('takes REDIS_UNAVAILABLE the same way', async () => {
    const { number } = await client.execute('cut', { cuts: 1, code: 'REDIS_UNAVAILABLE' });
    expect((await waitForState(client, number, 'completed')).result).toBe(2);
  });

  it('fails with the error once SPROCD_MAX_RECOVERIES re-runs are used up', async () => {
    const { number } = await client.execute('cut', { cuts: 10 });
    const view = await waitForState(client, number, 'failed');
    expect(view.error?.code).toBe('NOT_REPLICATED');
    expect(view.attempt).toBe(3);
  });

  it('fails an at-most-once execution at once: running it again could do its work twice', async () => {
    const { number } = await client.execute('cut-once', { cuts: 1 });
    const view = await waitForState(client, number, 'failed');
    expect(view.error?.code).toBe('NOT_REPLICATED');
    expect(view.attempt).toBe(1);
  });

  it("fails at once on an error of the procedure's own", async () => {
    const { number } = await client.execute('cut', { cuts: 1, code: 'VALIDATION_FAILED' });
    const view = await waitForState(client, number, 'failed');
    expect(view.error?.code).toBe('VALIDATION_FAILED');
    expect(view.attempt).toBe(1);
  });
});

describe('outage-retry', () => {
  it('knows the errors of Redis from the others', () => {
    expect(isRedisOutage(new RedisUnavailableError())).toBe(true);
    expect(isRedisOutage(new SprocdError('NOT_REPLICATED', 'x'))).toBe(true);
    expect(isRedisOutage(new SprocdError('VALIDATION_FAILED', 'x'))).toBe(false);
    expect(isRedisOutage(new Error('REDIS_UNAVAILABLE'))).toBe(false);
    // What an isolation: 'thread' run throws comes back as a plain Error that keeps the code.
    expect(isRedisOutage(reviveError(serializeError(new RedisUnavailableError())))).toBe(true);
    expect(isRedisOutage(reviveError(serializeError(new SprocdError('VALIDATION_FAILED', 'x'))))).toBe(false);
  });

  it('knows a run whose commit found its job lock gone, from a thread too', () => {
    expect(isRunFenced(new RunFencedError())).toBe(true);
    expect(isRunFenced(reviveError(serializeError(new RunFencedError())))).toBe(true);
    expect(isRunFenced(new SprocdError('LOCK_LOST', 'x'))).toBe(false);
    expect(isRunFenced(undefined)).toBe(false);
  });

  it('counts the starts that were not attempts, and waits longer after each', () => {
    expect(recoveriesSoFar({ attemptsStarted: 1, attemptsMade: 0 })).toBe(0);
    expect(recoveriesSoFar({ attemptsStarted: 3, attemptsMade: 1 })).toBe(1);
    expect(outageDelayMs(0)).toBe(500);
    expect(outageDelayMs(1)).toBe(1000);
    expect(outageDelayMs(10)).toBe(8000);
  });
});
