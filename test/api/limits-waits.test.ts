/**
 * Waits on a real node and Redis: a wait asks Redis only for its execution's state (never the job),
 * stops asking the moment its client goes away (Redis commands seen with MONITOR), and the node's cap
 * on waits answers 503 TOO_MANY_WAITS with Retry-After before anything is queued.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { monitorDuring } from '../support/monitor.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('waits');
let node: SprocdNode;
let client: SprocdClient;
let url: string;

beforeAll(async () => {
  ({ node, client, url } = await startInProcessNode(prefix, {
    SPROCD_MAX_WAITS: '2',
    SPROCD_HEADERS_TIMEOUT_MS: '1000',
  }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** Starts POST /v1/executions of a far-delayed echo with `wait`; abort the controller to go away. */
function startWait(wait: number): { controller: AbortController; answer: Promise<Response | undefined> } {
  const controller = new AbortController();
  const answer = fetch(`${url}/v1/executions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ procedure: 'echo', params: 1, delayMs: 600_000, wait }),
    signal: controller.signal,
  }).catch(() => undefined);
  return { controller, answer };
}

const waits = () => node.internals().executions.waits;

/** The Redis commands on this node's keys touching `needle` (a job id) while `during` runs, scripts' own included. */
async function commandsTouching(needle: string, during: () => Promise<void>): Promise<string[][]> {
  // A plain-socket MONITOR (ioredis's monitor mode throws when other files' lines come with its +OK).
  const text = await monitorDuring(during);
  return text
    .split('\n')
    .map((line) => [...line.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1] ?? ''))
    .filter(
      (args) =>
        args.some((a) => a.startsWith(`{${prefix}}`)) &&
        args.some((a) => a === needle || a.endsWith(`:${needle}`)),
    );
}

describe('a wait', () => {
  it('asks Redis for the state only, and nothing more once its client went away', async () => {
    const { controller, answer } = startWait(60_000);
    await expect.poll(waits).toBe(1);
    const [execution] = (await client.listPage({ state: 'delayed' })).items;
    const jobId = `e${execution?.number ?? 0}`;

    // Connected: the state is asked again after a second (ZSCORE, EXISTS), the job is never read.
    const connected = await commandsTouching(jobId, () => new Promise((r) => setTimeout(r, 1500)));
    const names = connected.map((args) => args[0]?.toLowerCase());
    expect(names).toContain('zscore');
    expect(names.filter((n) => n !== 'zscore' && n !== 'exists')).toEqual([]);

    // Gone: the wait ends at once and asks nothing more (it would again within the next 4 s).
    const after = await commandsTouching(jobId, async () => {
      controller.abort();
      await expect.poll(waits).toBe(0);
      await new Promise((r) => setTimeout(r, 4000));
    });
    expect(after).toEqual([]);
    expect(await answer).toBeUndefined();
    expect((await client.get(execution?.number ?? 0)).state).toBe('delayed');
  });

  it('ends when its execution ends, woken by the event', async () => {
    const answer = fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 'now', wait: 30_000 }),
    });
    const res = await answer;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ state: 'completed', result: 'now' });
  });
});

describe("the node's cap on waits (SPROCD_MAX_WAITS=2)", () => {
  it('answers 503 TOO_MANY_WAITS with Retry-After and queues nothing; a request without wait still runs', async () => {
    const first = startWait(60_000);
    const second = startWait(60_000);
    await expect.poll(waits).toBe(2);
    const before = (await client.listPage({ state: 'delayed' })).items.length;

    const refused = await fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 2, delayMs: 600_000, wait: 1000 }),
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('TOO_MANY_WAITS');
    expect((await client.listPage({ state: 'delayed' })).items).toHaveLength(before);

    const queued = await client.execute('echo', 3, { delayMs: 600_000 });
    expect(queued.state).toBe('delayed');

    first.controller.abort();
    second.controller.abort();
    await expect.poll(waits).toBe(0);
    const res = await fetch(`${url}/v1/executions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ procedure: 'echo', params: 4, delayMs: 600_000, wait: 50 }),
    });
    expect(res.status).toBe(202);
  });
});
