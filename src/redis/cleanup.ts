/** Removing a deployment's keys: every key under `{prefix}`, and nothing else. */
import type { Redis } from 'ioredis';
import { deploymentPattern } from './keys.js';

/** Deletes every key of the deployment named `prefix` (SCAN + UNLINK in batches). */
export async function deleteDeploymentKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', deploymentPattern(prefix), 'COUNT', 2000);
    cursor = next;
    if (keys.length > 0) {
      await redis.unlink(...keys);
    }
  } while (cursor !== '0');
}
