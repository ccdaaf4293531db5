/**
 * How a batch of executions counts against the rate limit: ⌈N/10⌉ requests (src/api/limits.ts),
 * counted on the spot while under the local share, through "Redis" near the limit, refused past it.
 */
import { describe, expect, it } from 'vitest';
import { EXECUTIONS_PER_COUNTED_REQUEST, requestWeight } from '../../src/api/limits.js';
import { RateCounts } from '../../src/api/rate-counts.js';

const batch = (n: number) => ({ executions: Array.from({ length: n }, () => ({ procedure: 'p' })) });

describe('the weight of a request', () => {
  it('is 1, and ⌈N/10⌉ for a batch of N executions', () => {
    expect(EXECUTIONS_PER_COUNTED_REQUEST).toBe(10);
    expect(requestWeight('POST', '/v1/executions', { procedure: 'p' })).toBe(1);
    expect(requestWeight('POST', '/v1/executions', batch(1))).toBe(1);
    expect(requestWeight('POST', '/v1/executions', batch(10))).toBe(1);
    expect(requestWeight('POST', '/v1/executions', batch(11))).toBe(2);
    expect(requestWeight('POST', '/v1/executions', batch(1000))).toBe(100);
    expect(requestWeight('GET', '/v1/executions', batch(1000))).toBe(1);
    expect(requestWeight('POST', '/v1/executions/bulk', batch(1000))).toBe(1);
  });

  it('is counted whole: on the spot under the local share, by Redis near the limit', async () => {
    let redis = 0;
    const counts = new RateCounts({
      limit: 1000,
      windowMs: 60_000,
      add: async (_key, n) => {
        redis += n;
        return { count: redis, ttlMs: 60_000 };
      },
    });
    try {
      await counts.count('c'); // the first request of a window asks Redis
      expect(await counts.count('c', 5)).toMatchObject({ current: 6 });
      // A weight over the node's batch (1 % of the limit) asks Redis, counted whole.
      expect(await counts.count('c', 100)).toMatchObject({ current: 106 });
      expect(redis).toBe(106);
      const past = await counts.count('c', 900);
      expect(past.current).toBeGreaterThan(1000);
    } finally {
      counts.close();
    }
  });
});
