/**
 * A node and the queue shard count (SPROCD_QUEUE_SHARDS, redis/shard-count.ts), in process on the test
 * Redis: the first start stores the count, a node with another count than the stored one does not start
 * (CONFIG_INVALID).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createKeys } from '../../src/redis/keys.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('node-shards');
const keys = createKeys(prefix);
const redis = testClient();

afterAll(async () => {
  await deletePrefix(redis, prefix);
  await closeTestClients();
});

async function refused(env: Record<string, string>): Promise<ConfigError> {
  const err = await startInProcessNode(prefix, env).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('a node and its queue shard count', () => {
  it('stores the count at the first start, and refuses to start with another stored one', async () => {
    const { node, client } = await startInProcessNode(prefix);
    try {
      expect(await redis.get(keys.queueShards)).toBe('1');
      expect((await client.execute('echo', 'x', { delayMs: 600_000 })).number).toBeGreaterThan(0);
    } finally {
      await node.stop();
    }
    // As if the deployment had been started with 3: a node with 1 stays down.
    await redis.set(keys.queueShards, '3');
    const err = await refused({});
    expect(err.message).toContain('SPROCD_QUEUE_SHARDS is 1, but this deployment');
    expect(err.message).toContain('Start it with SPROCD_QUEUE_SHARDS=3');
  });
});
