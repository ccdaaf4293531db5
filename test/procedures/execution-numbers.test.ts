/**
 * Execution numbers on real nodes and Redis: never past 2^53 - 1 (refused with
 * EXECUTION_NUMBERS_EXHAUSTED, the counter left alone), never handed out twice by two nodes at once,
 * and a number a restored execution holds (on a node that missed the `restored` message) is caught
 * after the add and replaced by a fresh one, the restored execution left as it was.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import {
  MAX_EXECUTION_NUMBER,
  NUMBER_BLOCK,
  NumberAllotment,
} from '../../src/procedures/execution-numbers.js';
import { QUEUE_NAME, createKeys, jobIdOf } from '../../src/redis/keys.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('numbers');
const keys = testKeys(prefix);
let node: SprocdNode;
let client: SprocdClient;
let other: SprocdNode;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix));
  ({ node: other } = await startInProcessNode(prefix));
});

afterAll(async () => {
  await Promise.all([node?.stop(), other?.stop()]);
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

const far = { delayMs: 600_000 };

describe('execution numbers', () => {
  it('are never handed out twice by two nodes queuing at once', async () => {
    const queued = await Promise.all(
      Array.from({ length: 120 }, (_, i) =>
        (i % 2 ? node : other).internals().executions.execute('echo', i, far),
      ),
    );
    const numbers = queued.map((q) => q.execution.number);
    expect(new Set(numbers).size).toBe(120);
  });

  it('come in blocks that grow while used up fast, so the requests in flight share one refill', async () => {
    const counter = createKeys(`${prefix}-grow`);
    // Every block counts as used up fast here (within a minute of its arrival).
    const allot = new NumberAllotment(testClient(), counter, NUMBER_BLOCK, MAX_EXECUTION_NUMBER, 60_000);
    const first = await Promise.all(Array.from({ length: NUMBER_BLOCK }, () => allot.take()));
    expect(allot.nextBlockSize).toBe(NUMBER_BLOCK);
    // 100 requests at once: the second refill is twice as large, the third twice again.
    const burst = await Promise.all(Array.from({ length: 100 }, () => allot.take()));
    expect(allot.nextBlockSize).toBe(4 * NUMBER_BLOCK);
    // A batch larger than what is left takes its numbers in one refill, with a block besides.
    const batch = await allot.takeMany(1000);
    const all = [...first, ...burst, ...batch].map((t) => t.number);
    expect(new Set(all).size).toBe(all.length);
    expect(Number(await testClient().get(counter.sequence))).toBeLessThanOrEqual(
      NUMBER_BLOCK + 2 * NUMBER_BLOCK + 4 * NUMBER_BLOCK + 1000 + 8 * NUMBER_BLOCK,
    );
    await testClient().del(counter.sequence);
  });

  it('hand out the next number of one queue shard, keeping the ones passed over for later takes', async () => {
    const counter = createKeys(`${prefix}-shards`);
    const allot = new NumberAllotment(testClient(), counter, NUMBER_BLOCK, MAX_EXECUTION_NUMBER, 1000, 3);
    expect((await allot.takeFor(0)).number).toBe(3); // 1 and 2 kept
    expect((await allot.takeFor(2)).number).toBe(2);
    expect((await allot.takeFor(2)).number).toBe(5); // 4 kept
    const rest = await allot.takeMany(NUMBER_BLOCK - 3);
    // The block 1..20 whole, each number once: the kept ones first, lowest first.
    expect(rest.map((t) => t.number)).toEqual([1, 4, ...Array.from({ length: 15 }, (_, i) => 6 + i)]);
    expect(Number(await testClient().get(counter.sequence))).toBe(NUMBER_BLOCK);
    await testClient().del(counter.sequence);
  });

  it('drop the numbers a shard take passed over when a restore came before the next block', async () => {
    const counter = createKeys(`${prefix}-shards-restored`);
    const allot = new NumberAllotment(testClient(), counter, NUMBER_BLOCK, MAX_EXECUTION_NUMBER, 1000, 2);
    const evens: number[] = [];
    for (let i = 0; i < NUMBER_BLOCK / 2; i++) {
      evens.push((await allot.takeFor(0)).number); // 2, 4 ... 20; the odd ones kept
    }
    expect(evens.at(-1)).toBe(NUMBER_BLOCK);
    await testClient().incr(counter.backup.restores);
    // The next block comes with another restore count: the kept odd ones (from before it) are dropped,
    // so none is handed out with a count that would skip its check.
    const next = await allot.takeFor(0);
    expect(next).toEqual({ number: NUMBER_BLOCK + 2, restores: '1' });
    expect((await allot.take()).number).toBe(NUMBER_BLOCK + 1);
    await testClient().del(counter.sequence, counter.backup.restores);
  });

  it('take a fresh block after the node reconnects: one from before may come from a replaced master', async () => {
    const executions = node.internals().executions;
    executions.forgetNumbers();
    const first = (await executions.execute('echo', 'before', far)).execution.number;
    const command = (node as unknown as { command: Redis }).command;
    const reconnected = new Promise((resolve) => command.once('ready', resolve));
    command.disconnect(true);
    await reconnected;
    const next = (await executions.execute('echo', 'after', far)).execution.number;
    expect(next).toBeGreaterThan(first + NUMBER_BLOCK - 1);
  });

  it('never reuse the number of a restored execution, even on a node that missed the restore', async () => {
    const executions = node.internals().executions;
    executions.forgetNumbers();
    const first = (await executions.execute('echo', 'mine', far)).execution.number;
    // A restore put back execution first+1 (its job made as the restore makes it); this node still
    // holds the block first..first+19 because the `restored` message never reached it.
    const taken = first + 1;
    // In the queue of the shard execution `taken` lives in, where the node's add lands.
    const queue = new Queue(QUEUE_NAME, {
      connection: testClient(),
      prefix: keys.queues.ofNumber(taken).bullPrefix,
    });
    const restored = { procedure: 'echo', params: 'restored', id: 'restored-execution', name: '' };
    // As a restore does: its swap counts the restore before it queues the file's executions.
    await testClient().incr(keys.backup.restores);
    await queue.add('echo', restored, { jobId: jobIdOf(taken), delay: 600_000 });
    await queue.close();

    const next = (await executions.execute('echo', 'mine too', far)).execution;
    expect(next.number).not.toBe(taken);
    expect(next.number).toBeGreaterThan(first + NUMBER_BLOCK - 1);
    expect(next.params).toBe('mine too');
    expect(await client.get(next.number)).toMatchObject({ params: 'mine too', state: 'delayed' });
    expect(await client.get(taken)).toMatchObject({ params: 'restored', id: 'restored-execution' });
  });

  it('stop at 2^53 - 1: the last ones are handed out, then new executions are refused', async () => {
    const redis = testClient();
    await redis.set(keys.sequence, String(MAX_EXECUTION_NUMBER - 3));
    node.internals().executions.forgetNumbers();
    const executions = node.internals().executions;
    const last: number[] = [];
    for (let i = 0; i < 3; i++) {
      last.push((await executions.execute('echo', i, far)).execution.number);
    }
    expect(last).toEqual([MAX_EXECUTION_NUMBER - 2, MAX_EXECUTION_NUMBER - 1, MAX_EXECUTION_NUMBER]);
    expect((await client.get(MAX_EXECUTION_NUMBER)).number).toBe(MAX_EXECUTION_NUMBER);

    await expect(executions.execute('echo', 4, far)).rejects.toMatchObject({
      code: 'EXECUTION_NUMBERS_EXHAUSTED',
    });
    const res = await fetch(`${node.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 5 }),
    });
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ error: { code: 'EXECUTION_NUMBERS_EXHAUSTED' } });
    expect(await redis.get(keys.sequence)).toBe(String(MAX_EXECUTION_NUMBER));
  });
});
