/**
 * sprocd on a real Redis Cluster (test/support/cluster.ts: three masters, three replicas): two node
 * processes started with a `redis+cluster://` REDIS_URL and SPROCD_REPLICA_ACKS=1 run executions,
 * keep unique names exact and abort across nodes, count every storage increment, commit a multi-key
 * `use` whole or not at all; and when the master that owns the deployment's slot is SIGKILLed under
 * load, its replica takes over, both nodes follow, and every acknowledged execution completes.
 *
 * Its own vitest config (vitest.cluster.config.ts, run by .ci/cluster-test): six more redis-server
 * processes on a two-core machine, and seconds of fail-over.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeConnection, openConnection, waitReady } from '../../src/redis/connections.js';
import { createKeys } from '../../src/redis/keys.js';
import { acknowledged, ReplicaAcks } from '../../src/redis/replica-acks.js';
import { checkShardCount } from '../../src/redis/shard-count.js';
import { createShardKeys, shardPlacement } from '../../src/redis/shards.js';
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
  tallies,
  tallyLoad,
} from './nodes.js';

const prefix = uniquePrefix('cluster');
/** A key of the deployment: its slot is every key's. */
const slotKey = createKeys(prefix).sequence;
let cluster: RedisClusterGroup;
let a: ChildNode;
let b: ChildNode;

beforeAll(async () => {
  ({ cluster, a, b } = await startClusterNodes({ prefix: () => prefix, killedKey: () => slotKey }));
}, 90_000);

afterAll(() => stopClusterNodes({ cluster, a, b }));

describe('queue shards on a Redis Cluster', () => {
  it('place each shard where the Cluster serves its tag, confirm each shard on its own master, and store the count', async () => {
    const redis = openConnection('command', { url: cluster.url, timeoutMs: 3000, name: `${prefix}-shards` });
    const acks = new ReplicaAcks(redis, { replicas: 1, timeoutMs: 2000, routeKey: slotKey });
    try {
      await waitReady(redis, 10_000);
      const spread = await spreadPrefix(cluster, prefix, 3);
      const shards = createShardKeys(spread, 3);
      const placement = shardPlacement(redis, shards);
      for (const { shard, tag, master } of placement) {
        expect(master, `shard ${shard}`).toBe(`127.0.0.1:${(await cluster.masterOf(tag)).port}`);
      }
      expect(new Set(placement.map((p) => p.master)).size).toBe(3);

      // A write of each shard, acknowledged by a WAIT on that shard's master (each has a replica).
      const waitsOn = async (port: number) => {
        const server = new Redis(port, '127.0.0.1');
        try {
          const info = await server.info('commandstats');
          return Number(/cmdstat_wait:calls=(\d+)/.exec(info)?.[1] ?? 0);
        } finally {
          server.disconnect();
        }
      };
      const ports = await Promise.all(shards.map(async (s) => (await cluster.masterOf(s.tag)).port));
      const before = await Promise.all(ports.map(waitsOn));
      for (const s of shards) {
        const routed = acks.routed(s.tag);
        await expect(acknowledged(routed, redis.set(`${s.tag}:probe`, '1'))).resolves.toBe('OK');
      }
      const after = await Promise.all(ports.map(waitsOn));
      expect(after.map((n, i) => n - before[i]!).every((n) => n >= 1)).toBe(true);
      expect(acks.allWaits).toBe(3);

      // Each node reported where its (one) shard lives: the master of the deployment's slot.
      const slotMaster = `127.0.0.1:${(await cluster.masterOf(slotKey)).port}`;
      for (const node of [a, b]) {
        const reported = node.lines.find((l) => l.msg === 'queue shards')?.shards as {
          tag: string;
          master: string;
        }[];
        expect(reported).toEqual([expect.objectContaining({ tag: `{${prefix}}`, master: slotMaster })]);
      }

      // The stored count lives in the deployment's own slot, beside its execution counter.
      await checkShardCount(redis, createKeys(spread), 1);
      expect(await redis.get(createKeys(spread).queueShards)).toBe('1');
    } finally {
      acks.close();
      await closeConnection(redis);
    }
  });
});

describe('two nodes on a Redis Cluster', () => {
  it('run executions to their end, on both nodes', async () => {
    const views = await Promise.all(
      Array.from({ length: 24 }, (_, i) => (i % 2 ? a : b).client.execute('sleep', { ms: 200 })),
    );
    const done = await settled(
      a,
      views.map((v) => v.number),
    );
    expect(done.filter((d) => d.state !== 'completed')).toEqual([]);
    expect(new Set(done.map((d) => (d.result as { node: string }).node))).toEqual(
      new Set([nameOf(a), nameOf(b)]),
    );
    expect(await a.client.nodes()).toHaveLength(2);
  });

  it('start one execution for a unique name asked on both at once', async () => {
    const results = await Promise.all(
      Array.from({ length: 16 }, (_, i) =>
        (i % 2 ? a : b).client.execute('sleep', { ms: 1000 }, { name: 'singleton', unique: true }),
      ),
    );
    expect(new Set(results.map((r) => r.number)).size).toBe(1);
    expect(results.filter((r) => !r.existing)).toHaveLength(1);
  });

  it('abort an execution that runs on the other node', async () => {
    const view = await a.client.execute('sleep', { ms: 60_000 });
    const active = await waitForState(a.client, view.number, 'active', 20_000);
    expect(active.state).toBe('active');
    const other = (await a.client.get(view.number)).node === nameOf(a) ? b : a;
    await other.client.abort(view.number);
    const aborted = await waitForState(other.client, view.number, 'aborted', 10_000);
    expect(aborted.error?.code).toBe('ABORTED');
  });

  it('count every storage increment of executions on both nodes', async () => {
    const views = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).client.execute('tally', {})),
    );
    const done = await settled(
      b,
      views.map((v) => v.number),
    );
    expect(done.filter((d) => d.state !== 'completed')).toEqual([]);
    const counted = await tallies(a);
    expect(views.filter((v) => counted.get(v.number) !== 1)).toEqual([]);
  });

  it('commit a multi-key `use` whole or not at all', async () => {
    const views = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? a : b).client.execute('transfer', { from: 'acct-a', to: 'acct-b', fail: i % 3 === 0 }),
      ),
    );
    const ended = await settled(
      a,
      views.map((v) => v.number),
    );
    expect(ended.map((e) => e.state)).toEqual(views.map((_, i) => (i % 3 === 0 ? 'failed' : 'completed')));
    expect(await a.client.storage('acct-a')).toEqual({ balance: -40 });
    expect(await b.client.storage('acct-b')).toEqual({ balance: 40 });
  });

  it('lose nothing acknowledged when the master of the deployment slot is SIGKILLed under load', async () => {
    const load = tallyLoad(a, b);
    const { acked } = load;
    await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(100), { timeout: 30_000 });
    const old = await cluster.masterOf(slotKey);
    const replicas = await cluster.replicasOf(old);
    expect(replicas).toHaveLength(2);
    await old.kill();
    const ackedBefore = acked.length;
    const next = await cluster.failedOver(slotKey, old);
    expect(replicas).toContain(next);
    // The other replica follows the new master, so writes are acknowledged again (SPROCD_REPLICA_ACKS=1).
    await vi.waitFor(() => expect(acked.length).toBeGreaterThanOrEqual(ackedBefore + 100), {
      timeout: 60_000,
    });
    await load.stop();
    const twice = await expectNothingAckedLost(a, b, load);
    console.log(
      `Cluster fail-over under load: ${acked.length} acknowledged (${ackedBefore} before the kill), refused ${JSON.stringify(Object.fromEntries(load.refused))}, ${twice} counted twice (run again)`,
    );
  });
});
