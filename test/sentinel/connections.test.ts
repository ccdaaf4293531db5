/**
 * sprocd's Sentinel connections (src/redis/connections.ts) against what ioredis does by itself:
 * - ioredis ends a connection for good when its fail-over detector drops it while it is resolving the
 *   master; sprocd's connect again (reconnectAfterEnd), and so do their duplicates (BullMQ's);
 * - the detector drops a connection with a graceful end() and waits 2 s for a frozen master's close,
 *   which a master that thaws meanwhile answers; sprocd's leave at once (disconnectTimeout).
 */
import { setTimeout as sleep } from 'node:timers/promises';
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

  it('leaves a frozen master when the sentinels fail over: a command in flight is answered by the new master', async () => {
    const redis = openConnection('worker', { url: group.url, timeoutMs: 2000, name: 'freeze-test' }) as Redis;
    try {
      await waitReady(redis, 10_000);
      const old = await group.master();
      process.kill(old.pid, 'SIGSTOP');
      let asked: Promise<unknown>;
      let next;
      try {
        // Sent to the frozen master: no answer until the connection leaves it (or the master thaws).
        asked = redis.call('CONFIG', 'GET', 'port');
        next = await group.failedOver(old);
        // Well past the 50 ms a dropped connection lingers, well before ioredis's own 2 s.
        await sleep(300);
      } finally {
        process.kill(old.pid, 'SIGCONT');
      }
      // Sent again on the new master; a connection still half-open on the old one would have had its
      // answer from the thawed old master, which then still believed it was the master.
      expect(await asked).toEqual(['port', String(next.port)]);
    } finally {
      await closeConnection(redis);
    }
  });
});
