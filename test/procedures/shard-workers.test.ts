/**
 * A node takes executions from every queue shard (one BullMQ Worker each) and still runs no more than
 * SPROCD_CONCURRENCY procedures at once between them (src/procedures/concurrency-gate.ts).
 */
import path from 'node:path';
import { afterAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { shardRecord } from '../fixtures/shard-gate.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('shardw');
const nodes: SprocdNode[] = [];
const prefixes: string[] = [];

beforeEach(() => {
  (globalThis as { shardRuns?: unknown }).shardRuns = undefined;
});

afterAll(async () => {
  shardRecord()
    .held.splice(0)
    .forEach((release) => release());
  await Promise.all(nodes.map((n) => n.stop()));
  for (const each of prefixes) {
    await deletePrefix(testClient(), each);
  }
  await closeTestClients();
});

async function startNode(name: string, shards: number, concurrency: number) {
  prefixes.push(`${prefix}-${name}`);
  const started = await startInProcessNode(`${prefix}-${name}`, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'shard-jobs'),
    SPROCD_QUEUE_SHARDS: String(shards),
    SPROCD_CONCURRENCY: String(concurrency),
  });
  nodes.push(started.node);
  return started;
}

/**
 * Queues `count` held executions, then lets them go one at a time, each time once as many run as
 * may and a moment has passed for any more to start: answers their numbers and the most seen running.
 */
async function runHeld(client: SprocdClient, count: number, limit: number) {
  const record = shardRecord();
  const numbers: number[] = [];
  for (let id = 0; id < count; id++) {
    numbers.push((await client.execute('held', { id })).number);
  }
  for (let released = 0; released < count; released++) {
    const expected = Math.min(limit, count - released);
    await vi.waitFor(() => expect(record.held.length).toBe(expected), { timeout: 10_000, interval: 10 });
    await new Promise((r) => setTimeout(r, 150));
    expect(record.running).toBeLessThanOrEqual(limit);
    record.held.shift()?.();
  }
  for (const number of numbers) {
    expect((await waitForState(client, number, 'completed')).result).toBeTypeOf('number');
  }
  return { numbers, most: record.most, ran: record.ran };
}

describe('one worker per queue shard, one concurrency per node', () => {
  it('S = 3, concurrency 2: executions of every shard run, never more than 2 at once', async () => {
    const { node, client } = await startNode('s3', 3, 2);
    const { queues } = node.internals().executions;
    expect(queues).toHaveLength(3);
    for (const queue of queues) {
      expect(await queue.getWorkers()).toHaveLength(1);
    }

    const { numbers, most, ran } = await runHeld(client, 9, 2);
    expect(new Set(numbers.map((n) => n % 3))).toEqual(new Set([0, 1, 2]));
    expect(ran.toSorted((a, b) => a - b)).toEqual([...Array(9).keys()]);
    expect(most).toBe(2);
  });

  it('S = 1, concurrency 2: one worker, as before', async () => {
    const { node, client } = await startNode('s1', 1, 2);
    const { queues } = node.internals().executions;
    expect(queues).toHaveLength(1);
    expect(await queues[0]!.getWorkers()).toHaveLength(1);

    const { most, ran } = await runHeld(client, 5, 2);
    expect(ran).toHaveLength(5);
    expect(most).toBe(2);
  });
});
