/**
 * The queue spread over three shards on a real Redis Cluster (test/support/cluster.ts): a prefix
 * whose three shard tags `{prefix:q<i>}` hash to three different masters, two node processes started
 * with SPROCD_QUEUE_SHARDS=3 and SPROCD_REPLICA_ACKS=1. Executions land in every shard (and so on every
 * master) and run on both nodes; unique names, abort from the other node, lists and counts stay exact
 * across shards; and when the master of one shard is SIGKILLed under load, its replica takes over and
 * every acknowledged execution completes, its storage increment counted.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createShardKeys } from '../../src/redis/shards.js';
import type { RedisClusterGroup } from '../support/cluster.js';
import { waitForState } from '../support/executions.js';
import type { ChildNode } from '../support/node.js';
import { uniquePrefix } from '../support/redis.js';
import {
  expectNothingAckedLost,
  nameOf,
  settled,
  spreadPrefix,
  startClusterNodes,
  stopClusterNodes,
  tallyLoad,
} from './nodes.js';

const SHARDS = 3;
let cluster: RedisClusterGroup;
let prefix: string;
let a: ChildNode;
let b: ChildNode;

beforeAll(async () => {
  ({ cluster, prefix, a, b } = await startClusterNodes({
    prefix: (started) => spreadPrefix(started, uniquePrefix('qshards'), SHARDS),
    // Shard 1's master is the one killed below.
    killedKey: (chosen) => createShardKeys(chosen, SHARDS)[1]!.tag,
    env: { SPROCD_QUEUE_SHARDS: String(SHARDS) },
  }));
}, 90_000);

afterAll(() => stopClusterNodes({ cluster, a, b }));

describe('three queue shards on a Redis Cluster', () => {
  it('place the three shards on three masters, as each node reports', async () => {
    const masters = await Promise.all(
      createShardKeys(prefix, SHARDS).map(async (s) => `127.0.0.1:${(await cluster.masterOf(s.tag)).port}`),
    );
    for (const node of [a, b]) {
      const reported = node.lines.find((l) => l.msg === 'queue shards')?.shards as { master: string }[];
      expect(reported.map((r) => r.master)).toEqual(masters);
    }
    expect(new Set(masters).size).toBe(SHARDS);
  });

  it('run executions of every shard to their end, on both nodes, and list and count them all', async () => {
    const views = await Promise.all(
      Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).client.execute('sleep', { ms: 200 })),
    );
    const numbers = views.map((v) => v.number);
    expect(new Set(numbers.map((n) => n % SHARDS)).size).toBe(SHARDS);
    const done = await settled(a, numbers);
    expect(done.filter((d) => d.state !== 'completed')).toEqual([]);
    expect(new Set(done.map((d) => (d.result as { node: string }).node))).toEqual(
      new Set([nameOf(a), nameOf(b)]),
    );
    const listed = new Set<number>();
    let cursor: string | undefined;
    do {
      const page = await b.client.listPage({ procedure: 'sleep', limit: 7, ...(cursor ? { cursor } : {}) });
      for (const item of page.items) {
        expect(listed.has(item.number)).toBe(false);
        listed.add(item.number);
      }
      cursor = page.nextCursor ?? undefined;
    } while (cursor);
    expect(numbers.filter((n) => !listed.has(n))).toEqual([]);
    expect((await a.client.stats()).counts.completed).toBeGreaterThanOrEqual(numbers.length);
  });

  it('start one execution for a unique name asked on both at once, for names of every shard', async () => {
    for (const name of ['alpha', 'beta', 'gamma', 'delta']) {
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) =>
          (i % 2 ? a : b).client.execute('sleep', { ms: 1000 }, { name, unique: true }),
        ),
      );
      expect(new Set(results.map((r) => r.number)).size).toBe(1);
      expect(results.filter((r) => !r.existing)).toHaveLength(1);
    }
  });

  it('abort an execution of each shard from the node that does not run it', async () => {
    // One execution of each shard (a node's block may hand out a run of one shard's numbers first).
    const byShard = new Map<number, Awaited<ReturnType<typeof a.client.execute>>>();
    const extra: number[] = [];
    while (byShard.size < SHARDS) {
      const view = await a.client.execute('sleep', { ms: 60_000 });
      if (byShard.has(view.number % SHARDS)) {
        extra.push(view.number);
      } else {
        byShard.set(view.number % SHARDS, view);
      }
    }
    for (const n of extra) {
      await a.client.abort(n);
    }
    for (const view of byShard.values()) {
      await waitForState(a.client, view.number, 'active', 20_000);
      const other = (await a.client.get(view.number)).node === nameOf(a) ? b : a;
      await other.client.abort(view.number);
      const aborted = await waitForState(other.client, view.number, 'aborted', 10_000);
      expect(aborted.error?.code).toBe('ABORTED');
    }
  });

  it('lose nothing acknowledged when the master of one shard is SIGKILLed under load', async () => {
    const load = tallyLoad(a, b);
    const { acked } = load;
    await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(100), { timeout: 30_000 });
    const shardTag = createShardKeys(prefix, SHARDS)[1]!.tag;
    const old = await cluster.masterOf(shardTag);
    const replicas = await cluster.replicasOf(old);
    await old.kill();
    const ackedBefore = acked.length;
    const next = await cluster.failedOver(shardTag, old);
    expect(replicas).toContain(next);
    await vi.waitFor(() => expect(acked.filter((n) => n % SHARDS === 1).length).toBeGreaterThan(0), {
      timeout: 30_000,
    });
    await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(ackedBefore + 100), {
      timeout: 60_000,
    });
    await load.stop();
    const twice = await expectNothingAckedLost(a, b, load);
    console.log(
      `Shard master fail-over under load (S = ${SHARDS}): ${acked.length} acknowledged (${ackedBefore} before the kill), refused ${JSON.stringify(Object.fromEntries(load.refused))}, ${twice} counted twice (run again)`,
    );
  });
});
