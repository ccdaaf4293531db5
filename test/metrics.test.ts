/**
 * GET /metrics: aborted executions are counted as aborted, never as failed (in the run-time histogram
 * and in the queue's depth); the cluster's queue depth is the same on every node and carries no node
 * label, so nodes do not multiply it; HTTP requests are counted by route pattern and status.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../src/client.js';
import { NodeMetrics } from '../src/metrics.js';
import type { SprocdNode } from '../src/node.js';
import { waitForState } from './support/executions.js';
import { startInProcessNode } from './support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from './support/redis.js';

/** The value of the series `name` whose labels include all of `labels`, or undefined. */
function value(text: string, name: string, ...labels: string[]): number | undefined {
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`${name}{`) && labels.every((label) => l.includes(label)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('NodeMetrics', () => {
  const depth = { waiting: 3, delayed: 0, active: 1, completed: 7, failed: 2, aborted: 4 };
  const metrics = new NodeMetrics(
    'node-a',
    async () => depth,
    () => 1,
  );

  it('exports the queue depth by state without a node label, and the node series with one', async () => {
    const text = await metrics.exposition.metrics();
    expect(text).toMatch(/^sprocd_queue_executions\{state="aborted"\} 4$/m);
    expect(text).toMatch(/^sprocd_queue_executions\{state="failed"\} 2$/m);
    expect(text).not.toMatch(/sprocd_queue_executions\{[^}]*node=/);
    expect(text).toMatch(/^sprocd_executions_active\{node="node-a"\} 1$/m);
    expect(text).toMatch(/^# HELP sprocd_queue_executions .*max, not sum/m);
  });

  it('counts requests by method, route pattern and status, and unmatched URLs as one route', async () => {
    metrics.onRequest('GET', '/v1/executions/:number', 200, 3);
    metrics.onRequest('GET', '/v1/executions/:number', 404, 1);
    metrics.onRequest('GET', '/v1/executions/:number', 200, 2);
    metrics.onRequest('GET', undefined, 404, 1);
    const text = await metrics.exposition.metrics();
    const count = (...labels: string[]) =>
      value(text, 'sprocd_http_request_duration_seconds_count', ...labels);
    expect(count('route="/v1/executions/:number"', 'status="200"', 'method="GET"', 'node="node-a"')).toBe(2);
    expect(count('route="/v1/executions/:number"', 'status="404"')).toBe(1);
    expect(count('route="unmatched"', 'status="404"')).toBe(1);
    expect(value(text, 'sprocd_http_request_duration_seconds_sum', 'status="200"')).toBeCloseTo(0.005);
  });
});

describe('GET /metrics of real nodes', () => {
  const prefix = uniquePrefix('metrics');
  let a: { node: SprocdNode; client: SprocdClient; url: string };
  let b: { node: SprocdNode; client: SprocdClient; url: string };

  beforeAll(async () => {
    a = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '4' });
    b = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '4' });
  });

  afterAll(async () => {
    await a?.node.stop();
    await b?.node.stop();
    await deletePrefix(testClient(), prefix);
    await closeTestClients();
  });

  const scrape = async (url: string) => (await fetch(`${url}/metrics`)).text();

  it('counts aborted executions as aborted, not failed', async () => {
    const failed = await a.client.execute('fail', null, { attempts: 1, wait: 10_000 });
    expect(failed.state).toBe('failed');
    const running = await a.client.execute('cooperative', null);
    await waitForState(a.client, running.number, 'active');
    await a.client.abort(running.number);
    await waitForState(a.client, running.number, 'aborted');
    const delayed = await a.client.execute('noop', null, { delayMs: 60_000 });
    await a.client.abort(delayed.number);
    await waitForState(a.client, delayed.number, 'aborted');

    const texts = await Promise.all([scrape(a.url), scrape(b.url)]);
    for (const text of texts) {
      expect(value(text, 'sprocd_queue_executions', 'state="aborted"')).toBe(2);
      expect(value(text, 'sprocd_queue_executions', 'state="failed"')).toBe(1);
    }
    // The run-time histogram of the node that ran it (either node may have taken it).
    const ran = texts.map((t) =>
      value(t, 'sprocd_execution_duration_seconds_count', 'procedure="cooperative"'),
    );
    expect(
      texts.map((t) =>
        value(t, 'sprocd_execution_duration_seconds_count', 'procedure="cooperative"', 'outcome="aborted"'),
      ),
    ).toContain(1);
    expect(
      texts.map((t) =>
        value(t, 'sprocd_execution_duration_seconds_count', 'procedure="cooperative"', 'outcome="failed"'),
      ),
    ).toEqual([undefined, undefined]);
    expect(ran.filter((n) => n !== undefined)).toEqual([1]);
  });

  it('exports the same queue depth from every node, without a node label', async () => {
    const held = await a.client.execute('noop', null, { delayMs: 60_000 });
    const [textA, textB] = await Promise.all([scrape(a.url), scrape(b.url)]);
    const depth = (text: string) =>
      text
        .split('\n')
        .filter((l) => l.startsWith('sprocd_queue_executions{'))
        .sort();
    expect(depth(textA)).toEqual(depth(textB));
    expect(depth(textA).join('\n')).not.toMatch(/node=/);
    expect(value(textA, 'sprocd_queue_executions', 'state="delayed"')).toBe(1);
    await a.client.abort(held.number);
  });

  it('counts HTTP requests by the route pattern, never the raw URL', async () => {
    const done = await b.client.execute('noop', null, { wait: 10_000 });
    await b.client.get(done.number);
    await fetch(`${b.url}/v1/executions/999999999`);
    await fetch(`${b.url}/no/such/route/${done.number}`);
    const text = await scrape(b.url);
    const count = (...labels: string[]) =>
      value(text, 'sprocd_http_request_duration_seconds_count', ...labels);
    expect(count('method="POST"', 'route="/v1/executions"', 'status="200"')).toBeGreaterThanOrEqual(1);
    expect(count('method="GET"', 'route="/v1/executions/:number"', 'status="200"')).toBeGreaterThanOrEqual(1);
    expect(count('method="GET"', 'route="/v1/executions/:number"', 'status="404"')).toBe(1);
    expect(count('route="unmatched"', 'status="404"')).toBe(1);
    expect(text).not.toContain(`/v1/executions/${done.number}"`);
    expect(text).not.toContain('/no/such/route');
  });
});
