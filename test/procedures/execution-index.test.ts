/**
 * The execution indexes on a real node and Redis: a filter by procedure or process name among
 * thousands of executions reads the few that match (job hashes touched, seen with MONITOR, against
 * the thousands the unindexed listing reads), follows its cursor to the end, and the indexes drop
 * what retention removed: lazily when listed, and by the sweep, which deletes an index left empty.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { MAX_EXAMINED } from '../../src/procedures/execution-pages.js';
import { bullQueueKeys } from '../../src/redis/bullmq-internals.js';
import { jobIdOf } from '../../src/redis/keys.js';
import { monitorDuring } from '../support/monitor.js';
import { startInProcessNode, testKeys } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('index');
const keys = testKeys(prefix);
/** The job hash prefix of each queue shard. */
const jobPrefixes = keys.queues.all.map((shard) => bullQueueKeys(shard).job(''));
let node: SprocdNode;
let client: SprocdClient;
const rare: number[] = [];
const MANY = MAX_EXAMINED + 500;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix));
  const executions = node.internals().executions;
  for (let i = 0; i < MANY; i += 100) {
    await Promise.all(
      Array.from({ length: 100 }, (_, j) => executions.execute('noop', null, { delayMs: 600_000 + i + j })),
    );
  }
  for (let i = 0; i < 3; i++) {
    rare.push((await executions.execute('echo', i, { delayMs: 600_000, name: 'rare' })).execution.number);
  }
}, 120_000);

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** The job hashes Redis commands touched while `during` ran (scripts' own commands included). */
async function jobsTouched(during: () => Promise<unknown>): Promise<Set<string>> {
  const text = await monitorDuring(during);
  const touched = new Set<string>();
  const anyPrefix = jobPrefixes.map(escapeRegExp).join('|');
  const quoted = new RegExp(`"((?:${anyPrefix})e\\d+)"`, 'g');
  for (const match of text.matchAll(quoted)) {
    touched.add(match[1] as string);
  }
  return touched;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('the execution indexes', () => {
  it('serve a filter by procedure or process name reading only the executions that match', async () => {
    const newestFirst = [...rare].reverse();
    let page: { items: { number: number }[]; nextCursor?: string | null } = { items: [] };
    const byProcedure = await jobsTouched(async () => {
      page = await client.listPage({ procedure: 'echo' });
    });
    expect(page.items.map((e) => e.number)).toEqual(newestFirst);
    expect(page.nextCursor ?? undefined).toBeUndefined();
    expect(byProcedure.size).toBeLessThanOrEqual(rare.length);

    const byName = await jobsTouched(async () => {
      page = await client.listPage({ name: 'rare', state: 'delayed' });
    });
    expect(page.items.map((e) => e.number)).toEqual(newestFirst);
    expect(byName.size).toBeLessThanOrEqual(rare.length);

    // A rare match without an index (a state and a time bound only) reads thousands to find it.
    const later = String(Date.now() + 60_000);
    const scanned = await jobsTouched(() => client.listPage({ state: 'delayed', from: later }));
    expect(scanned.size).toBeGreaterThanOrEqual(MAX_EXAMINED);
  });

  it('pages a large procedure with a cursor, every execution once, newest first', async () => {
    const numbers: number[] = [];
    let cursor: string | undefined;
    do {
      const page = await client.listPage({ procedure: 'noop', limit: 1000, cursor });
      numbers.push(...page.items.map((e) => e.number));
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(numbers).toHaveLength(MANY);
    expect(new Set(numbers).size).toBe(MANY);
    const created = await Promise.all([numbers[0], numbers[MANY - 1]].map((n) => client.get(n as number)));
    expect(Date.parse(created[0]?.createdAt ?? '')).toBeGreaterThanOrEqual(
      Date.parse(created[1]?.createdAt ?? ''),
    );
  });

  it('drops executions retention removed: when listed, and by the sweep, which deletes an empty index', async () => {
    const redis = testClient();
    const [gone] = rare as [number];
    const shard = keys.queues.ofNumber(gone);
    await redis.del(bullQueueKeys(shard).job(jobIdOf(gone)));
    expect((await client.listPage({ name: 'rare' })).items.map((e) => e.number)).not.toContain(gone);
    expect(await redis.zscore(shard.executionIndex.name('rare'), jobIdOf(gone))).toBeNull();

    // An index whose executions are all gone, due for the sweep, in every shard: the next add to a
    // shard sweeps that shard's away (an add indexes and sweeps in its own shard only).
    const ghosts = keys.queues.all.map((s) => s.executionIndex.name('ghost'));
    for (const [i, s] of keys.queues.all.entries()) {
      await redis.zadd(ghosts[i]!, 1, jobIdOf(900_000_001), 2, jobIdOf(900_000_002));
      await redis.zadd(s.executionIndex.sweep, 0, ghosts[i]!);
    }
    const added = new Set<number>();
    for (let i = 0; i < 4 * keys.queues.count && added.size < keys.queues.count; i++) {
      const { execution } = await node.internals().executions.execute('echo', 'sweeps', { delayMs: 600_000 });
      added.add(keys.queues.ofNumber(execution.number).shard);
    }
    expect(added.size).toBe(keys.queues.count);
    for (const [i, s] of keys.queues.all.entries()) {
      expect(await redis.exists(ghosts[i]!)).toBe(0);
      expect(await redis.zscore(s.executionIndex.sweep, ghosts[i]!)).toBeNull();
    }
  });
});
