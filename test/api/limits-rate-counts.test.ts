/**
 * The rate limit's counts without Redis (src/api/rate-counts.ts): nodes sharing one fake counter
 * whose commands are run in order per node, as on a Redis connection. Requests are admitted on the
 * spot and added in batches, every request asks "Redis" near the limit, a node that heard the
 * window is used up refuses by itself, and several nodes together admit at most `limit + nodes ×
 * batch` in a window.
 */
import { describe, expect, it } from 'vitest';
import { BATCH_SHARE, LOCAL_SHARE, RateCounts, type Counted } from '../../src/api/rate-counts.js';

/** A shared counter per key with a fixed window, like rateLimitAdd-1.lua. */
class FakeRedis {
  readonly counters = new Map<string, { count: number; ends: number }>();
  calls = 0;
  added = 0;

  constructor(private readonly windowMs: number) {}

  run(key: string, n: number): { count: number; ttlMs: number } {
    this.calls++;
    this.added += n;
    const now = Date.now();
    let counter = this.counters.get(key);
    if (!counter || now >= counter.ends) {
      counter = { count: 0, ends: now + this.windowMs };
      this.counters.set(key, counter);
    }
    counter.count += n;
    return { count: counter.count, ttlMs: counter.ends - now };
  }

  /** A node's connection: its commands run in the order sent, each after `latencyMs`. */
  connection(latencyMs: () => number): (key: string, n: number) => Promise<{ count: number; ttlMs: number }> {
    let last: Promise<unknown> = Promise.resolve();
    return (key, n) => {
      const answer = last.then(async () => {
        await sleep(latencyMs());
        return this.run(key, n);
      });
      last = answer;
      return answer;
    };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether `counted` was decided without asking Redis. */
function decidedHere(counted: Counted | Promise<Counted>): counted is Counted {
  return !(counted instanceof Promise);
}

describe('RateCounts', () => {
  it('admits on the spot after the first answer, and adds the requests in batches', async () => {
    const redis = new FakeRedis(60_000);
    const counts = new RateCounts({ limit: 10_000, windowMs: 60_000, add: redis.connection(() => 1) });
    expect(counts.batch).toBe(10_000 * BATCH_SHARE);
    const first = counts.count('caller:ci');
    expect(decidedHere(first)).toBe(false);
    expect(await first).toMatchObject({ current: 1 });
    let here = 0;
    for (let i = 0; i < 300; i++) {
      const counted = counts.count('caller:ci');
      if (decidedHere(counted)) {
        here++;
        expect(counted.current).toBeLessThanOrEqual(10_000);
      } else {
        await counted;
      }
      if (i % 10 === 9) {
        await sleep(2);
      }
    }
    expect(here).toBeGreaterThan(250);
    await counts.flushAll();
    await sleep(60);
    // Every request reached the shared counter, in far fewer commands than requests.
    expect(redis.counters.get('caller:ci')?.count).toBe(301);
    expect(redis.calls).toBeLessThan(301 / 4);
    counts.close();
  });

  it('sends what waits on its own within a few flush intervals', async () => {
    const redis = new FakeRedis(60_000);
    const counts = new RateCounts({ limit: 10_000, windowMs: 60_000, add: redis.connection(() => 0) });
    await counts.count('caller:ops');
    for (let i = 0; i < 7; i++) {
      expect(decidedHere(counts.count('caller:ops'))).toBe(true);
    }
    expect(redis.counters.get('caller:ops')?.count).toBe(1);
    await sleep(200);
    expect(redis.counters.get('caller:ops')?.count).toBe(8);
    counts.close();
  });

  it(`asks Redis for every request past ${LOCAL_SHARE * 100} % of the limit, and then refuses by itself`, async () => {
    const redis = new FakeRedis(60_000);
    const limit = 1000;
    const counts = new RateCounts({ limit, windowMs: 60_000, add: redis.connection(() => 0) });
    const asked: number[] = [];
    const currents: number[] = [];
    for (let i = 1; i <= limit + 20; i++) {
      const counted = counts.count('caller:ci');
      if (!decidedHere(counted)) {
        asked.push(i);
      }
      currents.push((await counted).current);
    }
    // Every request from 80 % of the limit on asked Redis, until Redis said the limit is reached.
    const near = Array.from({ length: limit - LOCAL_SHARE * limit }, (_, k) => LOCAL_SHARE * limit + 1 + k);
    expect(asked.filter((i) => i > LOCAL_SHARE * limit)).toEqual(near);
    // Exactly `limit` admitted; the request past it and every later one refused.
    expect(currents.filter((c) => c <= limit)).toHaveLength(limit);
    expect(currents.slice(limit).every((c) => c > limit)).toBe(true);
    const calls = redis.calls;
    const refused = counts.count('caller:ci');
    expect(decidedHere(refused) && refused.current > limit && refused.ttlMs > 0).toBe(true);
    expect(redis.calls).toBe(calls);
    counts.close();
  });

  it('counts every request in Redis under a limit of 100 (no batch)', async () => {
    const redis = new FakeRedis(60_000);
    const counts = new RateCounts({ limit: 50, windowMs: 60_000, add: redis.connection(() => 0) });
    expect(counts.batch).toBe(0);
    const answers = await Promise.all(Array.from({ length: 60 }, () => counts.count('caller:ci')));
    expect(redis.calls).toBe(60);
    expect(answers.filter((a) => a.current <= 50)).toHaveLength(50);
    counts.close();
  });

  it('starts a new count when the window ends', async () => {
    // A window long enough that a loaded machine still counts the first 121 requests inside it.
    const redis = new FakeRedis(3000);
    const counts = new RateCounts({ limit: 100, windowMs: 3000, add: redis.connection(() => 0) });
    const first = await Promise.all(Array.from({ length: 120 }, () => counts.count('caller:ci')));
    expect(first.filter((a) => a.current <= 100)).toHaveLength(100);
    const refused = counts.count('caller:ci');
    expect(decidedHere(refused) && refused.current > 100).toBe(true);
    await sleep(3100);
    expect((await counts.count('caller:ci')).current).toBe(1);
    counts.close();
  });

  it('passes on the failure of Redis to the request, and drops the batch Redis did not take', async () => {
    let fail = false;
    const redis = new FakeRedis(60_000);
    const counts = new RateCounts({
      limit: 10_000,
      windowMs: 60_000,
      add: async (key, n) => {
        if (fail) {
          throw new Error('Redis is not answering');
        }
        return redis.run(key, n);
      },
    });
    await counts.count('caller:ci');
    fail = true;
    for (let i = 0; i < 10; i++) {
      expect(decidedHere(counts.count('caller:ci'))).toBe(true);
    }
    await counts.flushAll();
    fail = false;
    expect(decidedHere(counts.count('caller:ci'))).toBe(true);
    await counts.flushAll();
    // The 10 admitted meanwhile were dropped with their batch; the counting goes on.
    expect(redis.counters.get('caller:ci')?.count).toBe(2);
    await expect(
      new RateCounts({
        limit: 50,
        windowMs: 60_000,
        add: () => Promise.reject(new Error('Redis is not answering')),
      }).count('caller:ci'),
    ).rejects.toThrow('not answering');
    counts.close();
  });

  it('lets a node that did not hear the count for a while admit at most one batch past the limit', async () => {
    const limit = 2000;
    const redis = new FakeRedis(60_000);
    const [a, b] = [0, 1].map(
      () => new RateCounts({ limit, windowMs: 60_000, add: redis.connection(() => 0) }),
    );
    // a hears the count once (1), then b uses up the rest of the window.
    expect((await a!.count('caller:ci')).current).toBe(1);
    let admittedByB = 0;
    for (let i = 0; i < limit - 1; i++) {
      if ((await b!.count('caller:ci')).current <= limit) {
        admittedByB++;
      }
    }
    await b!.flushAll();
    expect(admittedByB).toBe(limit - 1);
    expect(redis.counters.get('caller:ci')?.count).toBe(limit);
    // a still believes the count is 1: it admits on the spot only while less than a batch is
    // unanswered, then asks Redis, which says the window is used up.
    let admittedByA = 0;
    for (let i = 0; i < 100; i++) {
      if ((await a!.count('caller:ci')).current <= limit) {
        admittedByA++;
      }
    }
    expect(admittedByA).toBeGreaterThan(0);
    expect(admittedByA).toBeLessThanOrEqual(a!.batch);
    [a, b].forEach((counts) => counts!.close());
  });

  for (const nodes of [2, 4]) {
    it(`admits at most limit + ${nodes} × batch in a window across ${nodes} nodes sharing the counter`, async () => {
      const limit = 2000;
      const redis = new FakeRedis(60_000);
      const cluster = Array.from(
        { length: nodes },
        () => new RateCounts({ limit, windowMs: 60_000, add: redis.connection(() => Math.random() * 3) }),
      );
      let admitted = 0;
      let sent = 0;
      // 16 clients per node, each sending one request after the other, until 3 × limit were sent.
      await Promise.all(
        cluster.flatMap((counts) =>
          Array.from({ length: 16 }, async () => {
            while (sent < 3 * limit) {
              sent++;
              const counted = counts.count('caller:ci');
              const { current } = decidedHere(counted) ? counted : await counted;
              if (current <= limit) {
                admitted++;
              }
              // A request takes a little time, as over HTTP.
              await sleep(Math.random() < 0.2 ? 1 : 0);
            }
          }),
        ),
      );
      await Promise.all(cluster.map((counts) => counts.flushAll()));
      const batch = cluster[0]!.batch;
      expect(batch).toBe(20);
      expect(admitted).toBeGreaterThanOrEqual(limit);
      expect(admitted).toBeLessThanOrEqual(limit + nodes * batch);
      cluster.forEach((counts) => counts.close());
    });
  }
});
