/**
 * The deployment's queue shard count, fixed at its first start (`{prefix}:shards`): every node must
 * use the count the deployment's executions were queued with, or it would look for them in other
 * queues (docs/ARCHITECTURE.md#queue-shards).
 */
import { ConfigError } from '../errors.js';
import type { Keys } from './keys.js';
import type { RedisConnection } from './redis-connection.js';
import { queueShards } from './scripts.js';

/**
 * Checks `shards` against the count the deployment stored at its first start (`{prefix}:shards`),
 * storing it when none is: a node with another count would look for executions in other queues than
 * the deployment's. A deployment from before the setting (it has taken execution numbers, but stored
 * no count) counts as S = 1. Throws ConfigError (CONFIG_INVALID) on a mismatch.
 */
export async function checkShardCount(redis: RedisConnection, keys: Keys, shards: number): Promise<void> {
  const stored = await queueShards(redis, keys, shards);
  if (stored !== shards) {
    throw new ConfigError(
      `SPROCD_QUEUE_SHARDS is ${shards}, but this deployment (its prefix's executions) uses ${stored} queue shard(s). ` +
        `Start it with SPROCD_QUEUE_SHARDS=${stored}. To change the count, drain it first (no execution waiting, delayed, ` +
        `paused or running, every node stopped) and delete ${keys.queueShards}, or take a backup and restore it into a ` +
        `new SPROCD_PREFIX started with the new count.`,
      { stored, configured: shards },
    );
  }
}
