/**
 * The stored queue shard count (`{prefix}:shards`, redis/shard-count.ts) on the test Redis: stored at a
 * deployment's first start, 1 for a deployment from before the setting, a mismatch refused with
 * CONFIG_INVALID; and a node started with a count this version cannot run refused before it stores one.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors.js';
import { createKeys } from '../../src/redis/keys.js';
import { checkShardCount } from '../../src/redis/shard-count.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const redis = testClient();
const prefixes: string[] = [];

function deployment(): ReturnType<typeof createKeys> {
  const prefix = uniquePrefix('shards');
  prefixes.push(prefix);
  return createKeys(prefix);
}

afterAll(async () => {
  for (const prefix of prefixes) {
    await deletePrefix(redis, prefix);
  }
  await closeTestClients();
});

async function refusal(work: Promise<unknown>): Promise<ConfigError> {
  const err = await work.catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('checkShardCount', () => {
  it('stores the count of the first start, and lets the same count start again', async () => {
    const keys = deployment();
    await checkShardCount(redis, keys, 1);
    expect(await redis.get(keys.queueShards)).toBe('1');
    await checkShardCount(redis, keys, 1);
    expect(await redis.get(keys.queueShards)).toBe('1');
  });

  it('refuses another count with CONFIG_INVALID, saying what to do, and changes nothing', async () => {
    const keys = deployment();
    await redis.set(keys.queueShards, '3');
    const err = await refusal(checkShardCount(redis, keys, 1));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.message).toContain('SPROCD_QUEUE_SHARDS is 1');
    expect(err.message).toContain('uses 3 queue shard(s)');
    expect(err.message).toMatch(/drain it first/);
    expect(err.message).toMatch(/restore it into a new SPROCD_PREFIX/);
    expect(err.details).toEqual({ stored: 3, configured: 1 });
    expect(await redis.get(keys.queueShards)).toBe('3');
  });

  it('counts a deployment that took numbers before the count was stored as one shard', async () => {
    const keys = deployment();
    await redis.set(keys.sequence, '40');
    const err = await refusal(checkShardCount(redis, keys, 2));
    expect(err.details).toEqual({ stored: 1, configured: 2 });
    expect(await redis.get(keys.queueShards)).toBe('1');
    await checkShardCount(redis, keys, 1);
  });
});
