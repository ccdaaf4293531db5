/**
 * Removing a deployment's keys: every key under `{prefix}`, its queue shards' tags and its storage
 * slots' tags, and nothing else.
 */
import { scanKeys } from './cluster.js';
import { deploymentPattern, slotPattern } from './keys.js';
import type { RedisConnection } from './redis-connection.js';
import { shardPattern } from './shards.js';

/**
 * Deletes every key of the deployment named `prefix` (SCAN + UNLINK in batches; every master of a
 * Cluster), the keys of its queue shards (`{prefix:q<i>}`, SPROCD_QUEUE_SHARDS > 1) and of its
 * storage data slots (`{prefix:s<j>}`, SPROCD_STORAGE_SLOTS > 1) included.
 */
export async function deleteDeploymentKeys(redis: RedisConnection, prefix: string): Promise<void> {
  for await (const keys of scanKeys(redis, deploymentPattern(prefix), 2000)) {
    // One batch shares the `{prefix}` slot, so one UNLINK takes it on a Cluster too.
    await redis.unlink(...keys);
  }
  for (const pattern of [shardPattern(prefix), slotPattern(prefix)]) {
    for await (const keys of scanKeys(redis, pattern, 2000)) {
      // One master's batch may hold several tags (slots): one UNLINK per tag.
      const byTag = new Map<string, string[]>();
      for (const key of keys) {
        const tag = key.slice(0, key.indexOf('}') + 1);
        const group = byTag.get(tag);
        if (group) {
          group.push(key);
        } else {
          byTag.set(tag, [key]);
        }
      }
      for (const group of byTag.values()) {
        await redis.unlink(...group);
      }
    }
  }
}
