/**
 * Listing executions page by page on a real node: every execution once across the pages, in the
 * documented order, filters by state, procedure, process name and creation time, and a page that
 * stops after looking at MAX_EXAMINED executions with a cursor to go on from.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { MAX_EXAMINED } from '../../src/procedures/execution-pages.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { jobIdOf } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

let node: SprocdNode;
let client: SprocdClient;
const prefix = uniquePrefix('pages');

type Query = Parameters<SprocdClient['listPage']>[0];

/** Every page of `query`, followed to its end. */
async function allPages(query: Query): Promise<{ numbers: number[]; pages: number }> {
  const numbers: number[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.listPage({ ...query, cursor });
    numbers.push(...page.items.map((e) => e.number));
    cursor = page.nextCursor ?? undefined;
    pages++;
  } while (cursor);
  return { numbers, pages };
}

let delayed: number[] = [];
let done: number[] = [];
let failed: number;
let aborted: number;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix));
  delayed = [];
  for (let i = 0; i < 12; i++) {
    const view = await client.execute(i % 3 === 0 ? 'noop' : 'echo', i, {
      delayMs: 60_000 + i * 1000,
      name: `d${i % 2}`,
    });
    delayed.push(view.number);
  }
  done = [];
  for (let i = 0; i < 5; i++) {
    done.push((await client.execute('echo', i, { wait: 10_000 })).number);
  }
  failed = (await client.execute('fail', null, { attempts: 1, wait: 10_000 })).number;
  aborted = (await client.execute('echo', 'x', { delayMs: 60_000 })).number;
  await client.abort(aborted);
  await waitForState(client, aborted, 'aborted');
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/executions pages', () => {
  it('gives every execution once across pages: delayed by due time, then the finished, last finished first', async () => {
    const { numbers, pages } = await allPages({ limit: 4 });
    expect(pages).toBe(Math.ceil(numbers.length / 4));
    expect(new Set(numbers).size).toBe(numbers.length);
    expect(numbers.slice(0, delayed.length)).toEqual(delayed);
    const finished = numbers.slice(delayed.length);
    expect(new Set(finished)).toEqual(new Set([...done, failed, aborted]));
    expect(finished[0]).toBe(aborted);
  });

  it('filters by state, procedure, process name and creation time', async () => {
    // A procedure or a process name is read from its index: newest created first.
    expect((await allPages({ state: 'delayed', procedure: 'noop', limit: 2 })).numbers).toEqual(
      delayed.filter((_, i) => i % 3 === 0).reverse(),
    );
    expect((await allPages({ state: 'delayed', name: 'd1' })).numbers).toEqual(
      delayed.filter((_, i) => i % 2 === 1).reverse(),
    );
    expect((await allPages({ state: 'failed' })).numbers).toEqual([failed]);
    expect((await allPages({ state: 'aborted' })).numbers).toEqual([aborted]);
    expect(new Set((await allPages({ state: 'completed', limit: 2 })).numbers)).toEqual(new Set(done));
    const third = await client.get(delayed[3] as number);
    const ninth = await client.get(delayed[9] as number);
    const window = await allPages({
      state: 'delayed',
      from: third.createdAt,
      to: String(Date.parse(ninth.createdAt)),
    });
    expect(window.numbers).toEqual(delayed.slice(3, 10));
    await expect(client.listPage({ from: 'yesterday' })).rejects.toMatchObject({ status: 400 });
    await expect(client.listPage({ cursor: 'nope' })).rejects.toMatchObject({ status: 400 });
  });

  it('stops a page after looking at MAX_EXAMINED executions, with a cursor to go on from', async () => {
    // Many far-future ids in the delayed set that are not executions: a rare match on a big queue.
    const redis = testClient();
    // Each in the delayed set of its number's queue shard.
    const keys = testKeys(prefix);
    const fillers = Array.from({ length: MAX_EXAMINED + 300 }, (_, i) => 10_000_000 + i);
    const setOf = (n: number): string => bullQueueKeys(keys.queues.ofNumber(n)).delayed;
    const far = (Date.now() + 1e9) * 0x1000;
    await Promise.all(fillers.map((n, i) => redis.zadd(setOf(n), far + i, jobIdOf(n))));
    try {
      const first = await client.listPage({ state: 'delayed' });
      expect(first.items.map((e) => e.number)).toEqual(delayed);
      expect(first.nextCursor).toBeTruthy();
      const second = await client.listPage({ state: 'delayed', cursor: first.nextCursor ?? '' });
      expect(second.items).toEqual([]);
      expect(second.nextCursor ?? undefined).toBeUndefined();
      // A procedure is read from its index, which the ids that are not executions are not in.
      const indexed = await client.listPage({ state: 'delayed', procedure: 'echo' });
      expect(indexed.items.map((e) => e.number)).toEqual(delayed.filter((_, i) => i % 3 !== 0).reverse());
      expect(indexed.nextCursor ?? undefined).toBeUndefined();
    } finally {
      await Promise.all(fillers.map((n) => redis.zrem(setOf(n), jobIdOf(n))));
    }
  });
});
