/**
 * Execute on server for a batch, on an in-process node against the real test Redis: every item
 * queued in order under its own number, one bad item refusing the batch with nothing queued, unique
 * names as single requests have them (inside the batch and against live executions), a batch's
 * numbers taken in one refill, and ctx.executeOnServerBatch linking each child to its parent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import { SprocdApiError } from '../../src/client/errors.js';
import type { SprocdNode } from '../../src/node.js';
import { waitForState } from '../support/executions.js';
import { monitorDuring } from '../support/monitor.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('batch');
const keys = testKeys(prefix);
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '8' }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('a batch of executions', () => {
  it('queues every item under its own number and answers them in the order asked', async () => {
    const answered = await client.executeBatch(
      Array.from({ length: 50 }, (_, i) => ({ procedure: 'echo', params: { i } })),
    );
    expect(answered).toHaveLength(50);
    expect(new Set(answered.map((e) => e.number)).size).toBe(50);
    answered.forEach((e, i) => expect(e).toMatchObject({ procedure: 'echo', params: { i } }));
    const last = await waitForState(client, answered[49]!.number, 'completed');
    expect(last.result).toEqual({ i: 49 });
  });

  it('refuses the whole batch for one bad item, naming it, and queues nothing', async () => {
    const before = await client.list({ procedure: 'validated', limit: 1000 });
    const refused = await client
      .executeBatch([
        { procedure: 'validated', params: { a: 1, b: 2 } },
        { procedure: 'validated', params: { a: 'x', b: 2 } },
      ])
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SprocdApiError);
    expect(refused).toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
      message: expect.stringMatching(/^executions\[1\]: /),
      details: expect.objectContaining({ index: 1 }),
    });
    const unknown = await client
      .executeBatch([{ procedure: 'echo' }, { procedure: 'nope' }])
      .catch((e: unknown) => e);
    expect(unknown).toMatchObject({
      status: 400,
      details: expect.objectContaining({ index: 1, code: 'UNKNOWN_PROCEDURE' }),
    });
    expect(await client.list({ procedure: 'validated', limit: 1000 })).toEqual(before);
  });

  it('keeps unique names as single requests do: inside the batch and against a live execution', async () => {
    const live = await client.execute(
      'sleep',
      { ms: 5000 },
      { name: 'batch-unique', unique: true, delayMs: 60_000 },
    );
    const [again, other, twice] = await client.executeBatch([
      { procedure: 'sleep', params: { ms: 1 }, name: 'batch-unique', unique: true },
      { procedure: 'echo', params: 1, name: 'batch-other', unique: true, delayMs: 60_000 },
      { procedure: 'echo', params: 2, name: 'batch-other', unique: true },
    ]);
    expect(again).toMatchObject({ number: live.number, existing: true });
    expect(other).toMatchObject({ state: 'delayed' });
    expect(other).not.toHaveProperty('existing');
    expect(twice).toMatchObject({ number: other!.number, existing: true });
    await client.abort(live.number);
    await client.abort(other!.number);
  });

  it("takes a batch's numbers in one refill and indexes it in one call per queue shard, not one per execution", async () => {
    let answered: { number: number }[] = [];
    const text = await monitorDuring(async () => {
      answered = await client.executeBatch(
        Array.from({ length: 200 }, (_, i) => ({ procedure: 'echo', params: i })),
      );
    });
    const lines = text.split('\n');
    expect(lines.filter((line) => line.includes(`"INCRBY" "${keys.sequence}"`)).length).toBeLessThanOrEqual(
      1,
    );
    // The index script runs once per shard the batch's executions live in (once in all when S = 1).
    const shards = new Set(answered.map((e) => keys.queues.ofNumber(e.number)));
    expect(shards.size).toBe(Math.min(keys.queues.count, answered.length));
    for (const shard of keys.queues.all) {
      const zadds = lines.filter((line) =>
        line.includes(`"ZADD" "${shard.executionIndex.procedure('echo')}"`),
      );
      expect(zadds.length).toBe(shards.has(shard) ? 1 : 0);
    }
  });

  it('links each child of ctx.executeOnServerBatch to the execution that started it', async () => {
    const parent = await client.execute('batch-spawner', { count: 3 }, { wait: 10_000 });
    const { children } = parent.result as { children: number[] };
    expect(children).toHaveLength(3);
    for (const [i, number] of children.entries()) {
      const child = await waitForState(client, number, 'completed');
      expect(child).toMatchObject({ parent: parent.number, result: i });
    }
    const listed = await client.list({ parent: parent.number });
    expect(listed.map((e) => e.number).sort()).toEqual([...children].sort());
  });
});
