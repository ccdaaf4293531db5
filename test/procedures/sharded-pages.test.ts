/**
 * Listing executions page by page over three queue shards (SPROCD_QUEUE_SHARDS=3): each shard is read
 * on its own and the pages are their merge, with a cursor holding every shard's place. With small
 * pages, unfiltered and by procedure and process name: every execution exactly once, newest first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sharded-pages');
let node: SprocdNode;
let client: SprocdClient;

type Query = Parameters<SprocdClient['listPage']>[0];

interface Made {
  number: number;
  created: number;
  procedure: string;
  name?: string;
}

/** The executions made, waiting (the queues are paused so none runs). */
const made: Made[] = [];
/** Delayed ones, listed after the waiting ones. */
const delayed: number[] = [];

/** Every page of `query`, followed to its end. */
async function allPages(query: Query): Promise<{ numbers: number[]; created: number[]; pages: number }> {
  const numbers: number[] = [];
  const created: number[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await client.listPage({ ...query, cursor });
    expect(page.items.length).toBeLessThanOrEqual(query?.limit ?? 50);
    numbers.push(...page.items.map((e) => e.number));
    created.push(...page.items.map((e) => Date.parse(e.createdAt)));
    cursor = page.nextCursor ?? undefined;
    pages++;
  } while (cursor);
  return { numbers, created, pages };
}

/** Newest created first, then the higher number. */
function newestFirst(list: Made[]): number[] {
  return [...list].sort((a, b) => b.created - a.created || b.number - a.number).map((m) => m.number);
}

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_QUEUE_SHARDS: '3' }));
  await Promise.all(node.internals().executions.queues.map((queue) => queue.pause()));
  for (let i = 0; i < 34; i++) {
    const procedure = i % 3 === 0 ? 'noop' : 'echo';
    const name = i % 4 === 0 ? `n${i % 8}` : undefined;
    const view = await client.execute(procedure, i, name === undefined ? {} : { name });
    made.push({ number: view.number, created: Date.parse(view.createdAt), procedure, name });
  }
  for (let i = 0; i < 4; i++) {
    delayed.push((await client.execute('echo', i, { delayMs: 600_000 + i * 1000 })).number);
  }
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/executions over three queue shards', () => {
  it('spreads the executions over the three shards', () => {
    expect(node.internals().executions.queues).toHaveLength(3);
    expect(new Set(made.map((m) => m.number % 3))).toEqual(new Set([0, 1, 2]));
  });

  it('pages through every execution once: the waiting newest first, then the delayed by due time', async () => {
    const { numbers, pages } = await allPages({ limit: 4 });
    expect(numbers).toEqual([...newestFirst(made), ...delayed]);
    expect(pages).toBe(Math.ceil(numbers.length / 4));
    expect((await allPages({ state: 'waiting', limit: 3 })).numbers).toEqual(newestFirst(made));
    expect((await allPages({ state: 'delayed', limit: 3 })).numbers).toEqual(delayed);
  });

  it('pages by procedure, by process name and by both, each once, newest created first', async () => {
    const cases: [Query, Made[]][] = [
      [{ procedure: 'echo' }, made.filter((m) => m.procedure === 'echo')],
      [{ procedure: 'noop' }, made.filter((m) => m.procedure === 'noop')],
      [{ name: 'n0' }, made.filter((m) => m.name === 'n0')],
      [{ name: 'n4', state: 'waiting' }, made.filter((m) => m.name === 'n4')],
      [{ procedure: 'echo', name: 'n4' }, made.filter((m) => m.name === 'n4' && m.procedure === 'echo')],
      [{ procedure: 'noop', name: 'n0' }, made.filter((m) => m.name === 'n0' && m.procedure === 'noop')],
    ];
    const withDelayed = (query: Query): number[] =>
      query?.procedure === 'echo' && query.name === undefined ? delayed : [];
    for (const [query, expected] of cases) {
      expect(expected.length).toBeGreaterThan(0);
      const { numbers, created } = await allPages({ ...query, limit: 2 });
      // The delayed ones were created last: they come first.
      const want = [...[...withDelayed(query)].reverse(), ...newestFirst(expected)];
      expect(new Set(numbers).size).toBe(numbers.length);
      expect(new Set(numbers)).toEqual(new Set(want));
      expect(created).toEqual([...created].sort((a, b) => b - a));
    }
    expect((await allPages({ procedure: 'noop', state: 'delayed', limit: 2 })).numbers).toEqual([]);
  });

  it('refuses a cursor made for one shard', async () => {
    const one = Buffer.from(JSON.stringify({ i: 'p', t: 1, o: 0 })).toString('base64url');
    await expect(client.listPage({ procedure: 'echo', cursor: one })).rejects.toMatchObject({ status: 400 });
  });
});
