/** Removing a deployment's keys: every key under `{prefix}`, and nothing else. */
import { scanKeys } from './cluster.js';
import { deploymentPattern } from './keys.js';
import type { RedisConnection } from './redis-connection.js';

/** Deletes every key of the deployment named `prefix` (SCAN + UNLINK in batches; every master of a Cluster). */
export async function deleteDeploymentKeys(redis: RedisConnection, prefix: string): Promise<void> {
  for await (const keys of scanKeys(redis, deploymentPattern(prefix), 2000)) {
    // One batch shares the `{prefix}` slot, so one UNLINK takes it on a Cluster too.
    await redis.unlink(...keys);
  }
}
