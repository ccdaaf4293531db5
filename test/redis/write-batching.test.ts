/**
 * Socket writes batched per tick (src/redis/write-batching.ts): the commands of one tick leave in one
 * write, replies and order unchanged, on the first socket and on each one a reconnect makes.
 */
import type { Socket } from 'node:net';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { closeConnection, openConnection, waitReady } from '../../src/redis/connections.js';
import { testRedisUrl, uniquePrefix } from '../support/redis.js';

const opened: Redis[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((r) => closeConnection(r)));
});

/** Counts the writes that reach the socket's system calls (one per `_write`, one per `_writev`). */
function countWrites(redis: Redis): { writes: number } {
  const socket = (redis as unknown as { stream: Socket & Record<string, unknown> }).stream;
  const counter = { writes: 0 };
  for (const name of ['_write', '_writev'] as const) {
    const original = socket[name] as (...args: unknown[]) => unknown;
    socket[name] = (...args: unknown[]) => {
      counter.writes++;
      return original.apply(socket, args);
    };
  }
  return counter;
}

async function connected(): Promise<Redis> {
  const redis = openConnection('command', { url: testRedisUrl(), timeoutMs: 2000, name: uniquePrefix('wb') });
  opened.push(redis);
  await waitReady(redis, 5000);
  return redis;
}

describe('socket writes batched per tick', () => {
  it('sends the commands of one tick in one write, with every reply in order', async () => {
    const redis = await connected();
    const key = uniquePrefix('wb-key');
    const counter = countWrites(redis);
    const replies = await Promise.all([
      redis.set(key, '1'),
      ...Array.from({ length: 20 }, () => redis.incr(key)),
      redis.get(key),
      redis.del(key),
    ]);
    expect(counter.writes).toBe(1);
    expect(replies[0]).toBe('OK');
    expect(replies.slice(1, 21)).toEqual(Array.from({ length: 20 }, (_, i) => i + 2));
    expect(replies[21]).toBe('21');
    expect(replies[22]).toBe(1);
    // Commands of separate ticks still go at once, each in its own write.
    expect(await redis.ping()).toBe('PONG');
    expect(await redis.ping()).toBe('PONG');
    expect(counter.writes).toBe(3);
  });

  it('batches the socket of a reconnect too', async () => {
    const redis = await connected();
    const first = (redis as unknown as { stream: Socket }).stream;
    const ready = new Promise((resolve) => redis.once('ready', resolve));
    redis.disconnect(true);
    await ready;
    expect((redis as unknown as { stream: Socket }).stream).not.toBe(first);
    const counter = countWrites(redis);
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => redis.echo(String(i))));
    expect(replies).toEqual(Array.from({ length: 10 }, (_, i) => String(i)));
    expect(counter.writes).toBe(1);
  });
});
