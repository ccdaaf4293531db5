/**
 * Looking up and aborting executions without walking BullMQ's wait list, on an in-process node whose
 * queue is paused (so executions stay waiting), against the real test Redis; the commands each
 * request sends are seen with MONITOR. An execution aborted while waiting shows `aborted` at once,
 * leaves the waiting count, and never runs once the queue moves on: the worker that pops it drops it.
 * One paused while waiting shows paused at once and is parked by the worker that pops it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { waitForState } from '../support/executions.js';
import { commandsOn, monitorDuring } from '../support/monitor.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('lookup');
const keys = testKeys(prefix);
/** BullMQ's keys of the shard of execution `number`. */
const bullOf = (number: number) => bullQueueKeys(keys.queues.ofNumber(number));
const shardBulls = keys.queues.all.map((shard) => bullQueueKeys(shard));
let node: SprocdNode;
let client: SprocdClient;
const numbers: number[] = [];

/** The commands that walk the wait list: the ones this file checks are never sent. */
function walksOfWaitList(text: string): string[] {
  return ['LPOS', 'LREM', 'LRANGE', 'LINDEX'].flatMap((command) =>
    shardBulls.flatMap((bull) => commandsOn(text, command, bull.wait)),
  );
}

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '4' }));
  await Promise.all(node.internals().executions.queues.map((queue) => queue.pause()));
  for (let i = 0; i < 3; i++) {
    const batch = await client.executeBatch(
      Array.from({ length: 100 }, (_, j) => ({ procedure: 'echo', params: i * 100 + j })),
    );
    numbers.push(...batch.map((e) => e.number));
  }
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('lookups and abort at any queue length', () => {
  it('reads an execution by number with its state, never walking the wait list', async () => {
    let view: Awaited<ReturnType<SprocdClient['get']>> | undefined;
    const text = await monitorDuring(async () => {
      view = await client.get(numbers[150]!);
    });
    expect(view).toMatchObject({ number: numbers[150], state: 'waiting', params: 150 });
    expect(walksOfWaitList(text)).toEqual([]);
    // What it asks instead: the sets by score, and the short active list (seen, so MONITOR saw it).
    const bull = bullOf(numbers[150]!);
    expect(commandsOn(text, 'ZSCORE', bull.completed)).toHaveLength(1);
    expect(commandsOn(text, 'LPOS', bull.active)).toHaveLength(1);
  });

  it('aborts a waiting execution without walking the wait list: aborted at once, counted so', async () => {
    const executions = node.internals().executions;
    const before = await executions.counts();
    const target = numbers[10]!;
    let aborted: Awaited<ReturnType<SprocdClient['abort']>> | undefined;
    const text = await monitorDuring(async () => {
      aborted = await client.abort(target);
    });
    expect(walksOfWaitList(text)).toEqual([]);
    expect(aborted).toMatchObject({ number: target, state: 'aborted', error: { code: 'ABORTED' } });
    expect(await client.get(target)).toMatchObject({ state: 'aborted', attempt: 0 });
    const after = await executions.counts();
    expect(after.waiting).toBe(before.waiting - 1);
    expect(after.aborted).toBe(before.aborted + 1);
    // Listed once, as aborted: by procedure (the index) and unfiltered.
    const byProcedure = await client.list({ procedure: 'echo', state: 'aborted' });
    expect(byProcedure.map((e) => e.number)).toEqual([target]);
    const waiting = await client.list({ state: 'waiting', limit: 1000 });
    expect(waiting.map((e) => e.number)).not.toContain(target);
    expect(waiting).toHaveLength(numbers.length - 1);
    // Newest first.
    expect(waiting[0]?.number).toBe(numbers.at(-1));
    // A second abort finds it finished.
    await expect(client.abort(target)).rejects.toMatchObject({ status: 409, code: 'EXECUTION_FINISHED' });
  });

  it('pauses and resumes a waiting execution without walking the wait list: paused at once', async () => {
    const target = numbers[200]!;
    const text = await monitorDuring(async () => {
      await client.pause(target);
      expect(await client.processState(target)).toBe(5);
      await client.resume(target);
      expect(await client.processState(target)).toBe(4);
      await client.pause(numbers[201]!);
    });
    expect(walksOfWaitList(text)).toEqual([]);
    expect(await client.get(numbers[201]!)).toMatchObject({ state: 'waiting' });
  });

  it('never runs an execution aborted while waiting: the worker that pops it drops it', async () => {
    const target = numbers[0]!; // the oldest: the first a worker pops
    await client.abort(target);
    await Promise.all(node.internals().executions.queues.map((queue) => queue.resume()));
    await waitForState(client, numbers.at(-1)!, 'completed', 30_000);
    const view = await client.get(target);
    expect(view).toMatchObject({ state: 'aborted', attempt: 0 });
    expect(view.startedAt).toBeUndefined();
    expect(view.node).toBeUndefined();
    const redis = testClient();
    for (const shard of keys.queues.all) {
      expect(await redis.scard(shard.executionIndex.dropped)).toBe(0);
    }
    const bull = bullOf(target);
    expect(await redis.lpos(bull.active, `e${target}`)).toBeNull();
    expect(await redis.exists(`${bull.job(`e${target}`)}:lock`)).toBe(0);
    // The one paused while waiting (above) was parked by the worker that popped it, not run.
    expect(await client.get(numbers[201]!)).toMatchObject({ state: 'delayed', attempt: 0 });
    expect(await client.processState(numbers[201]!)).toBe(5);
    const counts = await node.internals().executions.counts();
    expect(counts).toMatchObject({
      waiting: 0,
      active: 0,
      delayed: 1,
      aborted: 2,
      completed: numbers.length - 3,
    });
  });
});
