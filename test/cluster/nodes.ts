/**
 * The Cluster tests' two node processes: started on a fresh Redis Cluster, and what the tests read of
 * them (who ran an execution, the storage tallies, the executions' views once they settled).
 */
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, vi } from 'vitest';
import { ApiError } from '../../src/client/errors.js';
import type { Execution } from '../../src/client/types.js';
import { createShardKeys } from '../../src/redis/shards.js';
import { startRedisCluster, type RedisClusterGroup } from '../support/cluster.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';

/** A Cluster test file's Redis Cluster and the two node processes on it. */
export interface ClusterNodes {
  readonly cluster: RedisClusterGroup;
  /** The deployment's SPROCD_PREFIX. */
  readonly prefix: string;
  readonly a: ChildNode;
  readonly b: ChildNode;
}

/** What the Cluster test files' node processes differ by. */
export interface ClusterNodesOptions {
  /** The deployment's prefix, chosen once the Cluster runs (where its slots landed may decide it). */
  prefix(cluster: RedisClusterGroup): string | Promise<string>;
  /**
   * A key whose master a test SIGKILLs: it gets a second replica before the nodes start, as a Sentinel
   * group has, so that when it dies one replica takes over and the other replicates the new master,
   * which keeps acknowledging writes (SPROCD_REPLICA_ACKS=1).
   */
  killedKey?(prefix: string): string;
  /** More environment of both nodes (the shard or slot counts a file is about). */
  env?: Record<string, string>;
}

/**
 * Starts a Redis Cluster (three masters, three replicas, failing over within seconds) and two node
 * processes on it that wait for one replica's acknowledgement of their writes, with short timeouts.
 */
export async function startClusterNodes(options: ClusterNodesOptions): Promise<ClusterNodes> {
  const cluster = await startRedisCluster({ nodeTimeoutMs: 1000 });
  try {
    const prefix = await options.prefix(cluster);
    if (options.killedKey) {
      await cluster.addReplica(await cluster.masterOf(options.killedKey(prefix)));
    }
    const env = {
      REDIS_URL: cluster.url,
      SPROCD_REPLICA_ACKS: '1',
      SPROCD_REPLICA_ACK_TIMEOUT_MS: '1000',
      SPROCD_REDIS_TIMEOUT_MS: '3000',
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'cluster-jobs'),
      SPROCD_CONCURRENCY: '8',
      SPROCD_RATE_LIMIT: '0',
      ...options.env,
    };
    const [a, b] = await Promise.all([spawnNode(prefix, env), spawnNode(prefix, env)]);
    return { cluster, prefix, a, b };
  } catch (err) {
    // The caller gets nothing to stop: the Cluster must not outlive the failed start.
    await cluster.stop();
    throw err;
  }
}

/** Stops what {@link startClusterNodes} started, as far as it got. */
export async function stopClusterNodes({ cluster, a, b }: Partial<ClusterNodes>): Promise<void> {
  await Promise.all([a?.stop(), b?.stop()]);
  await cluster?.stop();
}

/** A prefix `base-s<i>` whose `shards` shard tags hash to as many different masters now (slots are spread by hash). */
export async function spreadPrefix(
  cluster: RedisClusterGroup,
  base: string,
  shards: number,
): Promise<string> {
  for (let i = 0; ; i++) {
    const candidate = `${base}-s${i}`;
    const masters = await Promise.all(
      createShardKeys(candidate, shards).map(async (s) => (await cluster.masterOf(s.tag)).port),
    );
    if (new Set(masters).size === shards) {
      return candidate;
    }
  }
}

export const nameOf = (node: ChildNode) =>
  String(node.lines.find((l) => l.msg === 'sprocd node ready')?.node);

/** The storage entries `tally-*` read back: execution number → times its increment was committed. */
export async function tallies(node: ChildNode): Promise<Map<number, number>> {
  const storage = (await node.client.storage()) as Record<string, Record<string, number>>;
  const counted = new Map<number, number>();
  for (const [key, entry] of Object.entries(storage)) {
    if (key.startsWith('tally-')) {
      for (const [n, count] of Object.entries(entry)) {
        counted.set(Number(n), count);
      }
    }
  }
  return counted;
}

/** The views of `numbers` once each is no longer queued or running (read every 300 ms, not in a burst). */
export async function settled(
  node: ChildNode,
  numbers: readonly number[],
  timeoutMs = 30_000,
): Promise<Execution[]> {
  const views = new Map<number, Execution>();
  const done = (n: number) => ['completed', 'failed', 'aborted'].includes(views.get(n)?.state ?? '');
  await vi.waitFor(
    async () => {
      for (const n of numbers.filter((x) => !done(x))) {
        views.set(n, await node.client.get(n));
      }
      expect(numbers.filter((n) => !done(n))).toEqual([]);
    },
    { timeout: timeoutMs, interval: 300 },
  );
  return numbers.map((n) => views.get(n) as Execution);
}

/** `tally` executions asked in a loop of six clients over two nodes, until `stop()`. */
export interface TallyLoad {
  /** The numbers of the executions acknowledged, in order. */
  readonly acked: number[];
  /** Refused requests by error code. */
  readonly refused: Map<string, number>;
  stop(): Promise<void>;
}

/** Starts six loops asking `tally` executions, alternately of `a` and `b`; a refused request waits 50 ms. */
export function tallyLoad(a: ChildNode, b: ChildNode): TallyLoad {
  const acked: number[] = [];
  const refused = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: 6 }, async (_, i) => {
    const node = i % 2 ? a : b;
    while (running) {
      try {
        acked.push((await node.client.execute('tally', {})).number);
      } catch (err) {
        const code = err instanceof ApiError ? err.code : 'OTHER';
        refused.set(code, (refused.get(code) ?? 0) + 1);
        await sleep(50);
      }
    }
  });
  return {
    acked,
    refused,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * Every acknowledged execution of `load` completed, and its increment was counted at least once and at
 * most once per start of it (a run whose end died with an old master runs again: at-least-once); what
 * was refused meanwhile was refused as retryable (503), not as a bug. Returns how many were counted twice.
 */
export async function expectNothingAckedLost(a: ChildNode, b: ChildNode, load: TallyLoad): Promise<number> {
  const { acked, refused } = load;
  const views = new Map((await settled(a, acked, 90_000)).map((v) => [v.number, v]));
  const notCompleted = acked.filter((n) => views.get(n)?.state !== 'completed');
  expect(
    notCompleted
      .slice(0, 5)
      .map((n) => ({ n, state: views.get(n)?.state, error: views.get(n)?.error?.message })),
  ).toEqual([]);
  const counted = await tallies(b);
  expect(acked.filter((n) => (counted.get(n) ?? 0) < 1)).toEqual([]);
  expect(acked.filter((n) => (counted.get(n) ?? 0) > (views.get(n)?.attempt ?? 1))).toEqual([]);
  expect(new Set(acked).size).toBe(acked.length);
  expect(
    [...refused.keys()].filter((code) => code !== 'REDIS_UNAVAILABLE' && code !== 'NOT_REPLICATED'),
  ).toEqual([]);
  return acked.filter((n) => (counted.get(n) ?? 0) > 1).length;
}
