/**
 * SPROCD_MAX_WAITING on a real node and Redis: once that many executions wait to run (queued or
 * delayed), new ones are refused with 503 QUEUE_FULL and Retry-After, a burst included, and nothing
 * already queued is lost; as soon as one leaves, new work is taken again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('max-waiting');
let node: SprocdNode;
let client: SprocdClient;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_MAX_WAITING: '5' }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('SPROCD_MAX_WAITING=5', () => {
  it('takes a burst up to the cap, refuses the rest with QUEUE_FULL, and keeps what was queued', async () => {
    const executions = node.internals().executions;
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => executions.execute('echo', i, { delayMs: 600_000 })),
    );
    const queued = outcomes.flatMap((o) => (o.status === 'fulfilled' ? [o.value.execution.number] : []));
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as { code: string }] : []));
    expect(queued).toHaveLength(5);
    expect(new Set(refused.map((e) => e.code))).toEqual(new Set(['QUEUE_FULL']));

    const res = await fetch(`${node.url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 'one more' }),
    });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('5');
    expect(await res.json()).toMatchObject({
      error: { code: 'QUEUE_FULL', details: { max: 5, waiting: 5 } },
    });

    const listed = (await client.listPage({ state: 'delayed' })).items.map((e) => e.number);
    expect(listed.sort((a, b) => a - b)).toEqual([...queued].sort((a, b) => a - b));

    // One leaves (aborted): one more is taken.
    await client.abort(queued[0] as number);
    const taken = await client.execute('echo', 'after', { delayMs: 600_000 });
    expect(taken.state).toBe('delayed');
    await expect(client.execute('echo', 'again', { delayMs: 600_000 })).rejects.toMatchObject({
      code: 'QUEUE_FULL',
    });
  });
});
