/**
 * The execution histogram's exposition is prom-client's own: the same observations in a prom-client
 * Histogram and in a HotHistogram give the same lines at a scrape (default labels included), so
 * dashboards and alerts written for /metrics do not see the difference.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotHistogram } from '../../src/stats/hot-histogram.js';

const BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 5];

/** A scrape's lines, sorted (a metric family's series may come in any order). */
async function lines(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split('\n').filter(Boolean).sort();
}

describe('HotHistogram', () => {
  it("exposes exactly what prom-client's Histogram exposes for the same observations", async () => {
    const theirs = new Registry();
    const ours = new Registry();
    for (const r of [theirs, ours]) {
      r.setDefaultLabels({ node: 'n1' });
    }
    const reference = new Histogram({
      name: 'x_seconds',
      help: 'How long.',
      labelNames: ['procedure', 'outcome'],
      buckets: BUCKETS,
      registers: [theirs],
    });
    const hot = new HotHistogram('x_seconds', 'How long.', ['procedure', 'outcome'], BUCKETS, ours);
    const observations: [string, string, number][] = [
      ['a', 'completed', 0.001],
      ['a', 'completed', 0.005], // on a bound: counted in that bucket (le is inclusive)
      ['a', 'failed', 0.3],
      ['b "quoted"\n', 'completed', 7], // beyond every bound: only +Inf; label escaping alike
      ['a', 'completed', 0.0251],
      ['b "quoted"\n', 'aborted', 0],
    ];
    for (const [procedure, outcome, value] of observations) {
      reference.labels(procedure, outcome).observe(value);
      hot.observe(procedure, outcome, value);
    }
    const expected = await lines(theirs);
    expect(expected.some((l) => l.startsWith('x_seconds_bucket{le="0.005",node="n1",procedure="a"'))).toBe(
      true,
    );
    expect(await lines(ours)).toEqual(expected);
  });

  it('is emptied by the registry reset, as prom-client metrics are', async () => {
    const registry = new Registry();
    const hot = new HotHistogram('y_seconds', 'How long.', ['procedure', 'outcome'], BUCKETS, registry);
    hot.observe('a', 'completed', 0.2);
    expect((await registry.metrics()).includes('y_seconds_count{procedure="a",outcome="completed"} 1')).toBe(
      true,
    );
    registry.resetMetrics();
    expect(await registry.metrics()).not.toContain('y_seconds_count');
  });
});
