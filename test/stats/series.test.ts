/** The execution history of the console: histogram bins and percentiles (no Redis), and a node's buckets in Redis. */
import { afterAll, describe, expect, it } from 'vitest';
import { SeriesRecorder, STEP_MS, binOf, msOfBin, percentileOf, readSeries } from '../../src/stats/series.js';
import { createKeys } from '../../src/redis/keys.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('series');
const keys = createKeys(prefix);

afterAll(async () => {
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('run time histogram', () => {
  it('keeps a run time within about 10 % in its bin', () => {
    for (const ms of [0.5, 1, 3, 10, 42, 250, 1000, 12_345, 600_000]) {
      const back = msOfBin(binOf(ms));
      expect(Math.abs(back - ms) / ms, String(ms)).toBeLessThan(0.2);
    }
    expect(binOf(-5)).toBe(0);
    expect(binOf(1e12)).toBe(binOf(1e13));
  });

  it('reads percentiles from the bins, null when empty', () => {
    const h = new Map<number, number>();
    expect(percentileOf(h, 50)).toBeNull();
    for (let i = 0; i < 98; i++) {
      h.set(binOf(10), (h.get(binOf(10)) ?? 0) + 1);
    }
    h.set(binOf(1000), 2);
    expect(percentileOf(h, 50)).toBeCloseTo(msOfBin(binOf(10)));
    expect(percentileOf(h, 99)).toBeCloseTo(msOfBin(binOf(1000)));
  });
});

describe('SeriesRecorder', () => {
  it('adds what nodes counted to the same buckets in Redis; readSeries shows them oldest first', async () => {
    const redis = testClient();
    const a = new SeriesRecorder(redis, keys.stats);
    const b = new SeriesRecorder(redis, keys.stats);
    a.onEnd('x', 'completed', 10);
    a.onEnd('x', 'completed', 12);
    a.onEnd('x', 'failed', 500);
    a.onEnd('x', 'given back', 1);
    b.onEnd('y', 'aborted', 20);
    b.onEnd('y', 'completed', 11);
    await Promise.all([a.flush(), b.flush()]);
    const series = await readSeries(redis, keys.stats, 1);
    expect(series).toHaveLength(60_000 / STEP_MS);
    expect(series.map((p) => p.t)).toEqual([...series.map((p) => p.t)].sort((x, y) => x - y));
    const last = series.at(-1);
    expect(last).toMatchObject({ completed: 3, failed: 1, aborted: 1 });
    expect(last?.p50Ms).toBeCloseTo(msOfBin(binOf(12)), 5);
    expect(last?.p99Ms).toBeCloseTo(msOfBin(binOf(500)), 5);
    expect(series[0]).toMatchObject({ completed: 0, failed: 0, aborted: 0, p50Ms: null, p99Ms: null });
    expect(await redis.pttl(keys.stats(last?.t ?? 0))).toBeGreaterThan(3600_000);
  });
});
