/**
 * ioredis ends a Sentinel connection for good when its fail-over detector drops it while it is
 * resolving the master; sprocd's connections connect again (src/redis/connections.ts,
 * reconnectAfterEnd), and so do their duplicates (BullMQ's blocking connections).
 */
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { closeConnection, openConnection, waitReady } from '../../src/redis/connections.js';
import { startSentinelGroup, type SentinelGroup } from '../support/sentinel.js';

let group: SentinelGroup;

beforeAll(async () => {
  group = await startSentinelGroup({ replicas: 1 });
});

afterAll(async () => {
  await group?.stop();
});

/** Drops `redis`'s connector while it asks the sentinels for the master, as the fail-over detector does. */
function dropWhileResolving(redis: Redis): void {
  redis.once('connecting', () => {
    setImmediate(() => (redis as unknown as { connector: { disconnect(): void } }).connector.disconnect());
  });
  redis.disconnect(true);
}

describe('a Sentinel connection that ioredis ends while resolving the master', () => {
  it('connects again, and a duplicate does too', async () => {
    const redis = openConnection('worker', { url: group.url, timeoutMs: 2000, name: 'end-test' }) as Redis;
    const copy = redis.duplicate();
    copy.on('error', () => undefined);
    try {
      await waitReady(redis, 10_000);
      await waitReady(copy, 10_000);
      for (const connection of [redis, copy]) {
        const ended = new Promise<void>((resolve) => connection.once('end', resolve));
        dropWhileResolving(connection);
        // ioredis gives the connection up here (without reconnectAfterEnd it stays `end`)...
        await ended;
        // ...and it is back on the master, answering.
        await vi.waitFor(() => expect(connection.status).toBe('ready'), { timeout: 10_000, interval: 50 });
        expect(await connection.ping()).toBe('PONG');
      }
    } finally {
      await closeConnection(copy);
      await closeConnection(redis);
    }
  });

  it('stays closed when its owner closes it', async () => {
    const redis = openConnection('worker', { url: group.url, timeoutMs: 2000, name: 'end-test' }) as Redis;
    await waitReady(redis, 10_000);
    await closeConnection(redis);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(redis.status).toBe('end');
  });
});
