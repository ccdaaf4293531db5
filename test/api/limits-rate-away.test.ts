/**
 * The per-caller rate limit when Redis does not answer: a redis-server of this file's own, frozen
 * with SIGSTOP, lets a caller's requests through (uncounted) without holding them, counting resumes
 * once Redis answers again, and a caller the node knows to be past its limit stays refused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { startRedisServer, type RedisServer } from '../../src/redis/embedded.js';
import { fakeApi, fakeContext } from '../support/api.js';

let server: RedisServer;
let redis: Redis;
let tmp: string;
let frozen = false;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-rate-away-'));
  server = await startRedisServer({ dir: path.join(tmp, 'redis'), appendonly: false });
  redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  if (frozen) {
    process.kill(server.pid, 'SIGCONT');
  }
  redis?.disconnect();
  await server?.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('SPROCD_RATE_LIMIT=6 per minute, Redis frozen', () => {
  it('lets the requests through uncounted, at once, and counts again once Redis answers', async () => {
    const app = await fakeApi(
      fakeContext({
        procedures: () => [{ name: 'hello' }],
        settings: {
          host: '127.0.0.1',
          port: 0,
          token: undefined,
          bodyLimit: 64 * 1024,
          rateLimit: 6,
          rateLimitWindowMs: 60_000,
        },
        rateLimitRedis: () => ({ redis, keys: createKeys('rate-away') }),
      }),
    );
    const get = () => app.inject({ method: 'GET', url: '/v1/procedures' });
    const counted: number[] = [];
    for (let i = 0; i < 3; i++) {
      counted.push((await get()).statusCode);
    }
    expect(counted).toEqual([200, 200, 200]);

    process.kill(server.pid, 'SIGSTOP');
    frozen = true;
    const started = Date.now();
    const uncounted: number[] = [];
    for (let i = 0; i < 10; i++) {
      uncounted.push((await get()).statusCode);
    }
    // 10 more than the 3 counted, past the limit: the first waited for its count's time-out
    // (250 ms), the others did not wait at all.
    expect(uncounted).toEqual(Array.from({ length: 10 }, () => 200));
    expect(Date.now() - started).toBeLessThan(2000);

    process.kill(server.pid, 'SIGCONT');
    frozen = false;
    // Counting pauses 2 s after a count Redis did not answer, then resumes.
    await expect.poll(async () => (await get()).statusCode, { timeout: 5000, interval: 200 }).toBe(429);
    const res = await get();
    expect(res.statusCode).toBe(429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThan(0);

    // A caller the node knows to be past its limit stays refused until the window ends, Redis
    // answering or not: that refusal asks Redis nothing.
    process.kill(server.pid, 'SIGSTOP');
    frozen = true;
    expect((await get()).statusCode).toBe(429);
  });
});
