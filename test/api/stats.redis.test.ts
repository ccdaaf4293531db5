/** GET /v1/stats and GET /v1/system-events on a real node. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { VERSION } from '../../src/version.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('stats');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/stats', () => {
  it('shows the queue depth and the executions that just ended, with their run time', async () => {
    await client.execute('echo', 1, { wait: 10_000 });
    await client.execute('echo', 2, { wait: 10_000 });
    await client.execute('fail', null, { attempts: 1, wait: 10_000 });
    await client.execute('echo', 3, { delayMs: 60_000 });
    const stats = await client.request<{
      counts: Record<string, number>;
      stepS: number;
      series: { t: number; completed: number; failed: number; aborted: number; p50Ms: number | null }[];
    }>('GET', '/v1/stats?minutes=5');
    expect(stats.stepS).toBe(10);
    expect(stats.series).toHaveLength(30);
    expect(stats.counts).toMatchObject({ delayed: 1, completed: 2, failed: 1, aborted: 0 });
    const sum = (k: 'completed' | 'failed') => stats.series.reduce((n, p) => n + p[k], 0);
    expect(sum('completed')).toBe(2);
    expect(sum('failed')).toBe(1);
    expect(stats.series.some((p) => p.p50Ms !== null && p.p50Ms >= 0)).toBe(true);
    await expect(client.request('GET', '/v1/stats?minutes=0')).rejects.toMatchObject({ status: 400 });
  });
});

describe('GET /v1/procedures', () => {
  it("gives each procedure's failure rate over the last hour (null when none ended)", async () => {
    const items = await client.procedures();
    const rate = (name: string) => items.find((p) => p.name === name)?.failureRate;
    expect(rate('echo')).toBe(0);
    expect(rate('fail')).toBe(1);
    expect(rate('noop')).toBeNull();
    expect(items.find((p) => p.name === 'fail')?.attempts).toBe(3);
  });
});

describe('GET /v1/nodes', () => {
  it("shows each node's sprocd version", async () => {
    const nodes = await client.nodes();
    expect(nodes.map((n) => n.version)).toEqual([VERSION]);
  });
});

describe('GET /v1/system-events', () => {
  it('lists the newest system events first', async () => {
    const other = await startInProcessNode(prefix, { SPROCD_NODE_NAME: 'stats-other' });
    const read = () =>
      client.request<{ items: { type: string; node: string; at: string; left?: string }[] }>(
        'GET',
        '/v1/system-events?limit=10',
      );
    const until = (type: string) =>
      vi.waitFor(
        async () => {
          const answer = await read();
          expect(answer.items.map((e) => e.type)).toContain(type);
          return answer;
        },
        { timeout: 15_000, interval: 100 },
      );
    await until('node.joined');
    await other.node.stop();
    const { items } = await until('node.left');
    expect(items.find((e) => e.type === 'node.left')).toMatchObject({ left: 'stats-other', node: node.name });
    expect(items.every((e) => typeof e.type === 'string' && typeof e.at === 'string')).toBe(true);
    const times = items.map((e) => Date.parse(e.at));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });
});
