/**
 * The console's actions on executions, on a real node: retry (linked both ways), remove, bulk by
 * filter with a dry run that counts, the timeline, and children found by their parent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { jobIdOf } from '../../src/redis/keys.js';
import type { ExecutionView } from '../../src/types.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('admin');
let node: SprocdNode;
let client: SprocdClient;

interface Timeline {
  items: { at: string; type: string; node?: string; attempt?: number; message?: string }[];
  retriedBy?: number;
}
const timeline = (n: number) => client.request<Timeline>('GET', `/v1/executions/${n}/timeline`);

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_NODE_NAME: 'admin-node' }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('POST /v1/executions/:n/retry', () => {
  it('starts a new execution with the same procedure, params and name, linked both ways', async () => {
    const failed = await client.execute(
      'fail',
      { succeedOn: 99 },
      { name: 'retry-me', attempts: 1, wait: 10_000 },
    );
    expect(failed.state).toBe('failed');
    const retry = await client.request<ExecutionView>('POST', `/v1/executions/${failed.number}/retry`);
    expect(retry).toMatchObject({
      procedure: 'fail',
      params: { succeedOn: 99 },
      name: 'retry-me',
      retryOf: failed.number,
      attempts: 1,
    });
    expect(retry.number).not.toBe(failed.number);
    expect((await client.get(retry.number)).retryOf).toBe(failed.number);
    expect((await timeline(failed.number)).retriedBy).toBe(retry.number);
    const done = await client.execute('echo', 1, { wait: 10_000 });
    await expect(client.request('POST', `/v1/executions/${done.number}/retry`)).rejects.toMatchObject({
      status: 409,
      code: 'EXECUTION_NOT_RETRYABLE',
    });
    await expect(client.request('POST', '/v1/executions/99999999/retry')).rejects.toMatchObject({
      status: 404,
    });
  });
});

describe('DELETE /v1/executions/:n', () => {
  it('removes a finished execution, and refuses an unfinished one', async () => {
    const done = await client.execute('echo', 'bye', { wait: 10_000 });
    await client.request('DELETE', `/v1/executions/${done.number}`);
    await expect(client.get(done.number)).rejects.toMatchObject({ status: 404 });
    const later = await client.execute('echo', 'later', { delayMs: 60_000 });
    await expect(client.request('DELETE', `/v1/executions/${later.number}`)).rejects.toMatchObject({
      status: 409,
      code: 'EXECUTION_NOT_FINISHED',
    });
    await expect(client.request('DELETE', `/v1/executions/${done.number}`)).rejects.toMatchObject({
      status: 404,
    });
  });
});

describe('POST /v1/executions/bulk', () => {
  it('counts with dryRun, then aborts, then removes what a filter matches', async () => {
    const queued = await Promise.all(
      [1, 2, 3].map((i) => client.execute('echo', i, { name: 'bulk-set', delayMs: 60_000 })),
    );
    const other = await client.execute('echo', 0, { name: 'not-this-set', delayMs: 60_000 });
    const bulk = (body: object) =>
      client.request<Record<string, unknown>>('POST', '/v1/executions/bulk', { body });
    expect(await bulk({ action: 'abort', filter: { name: 'bulk-set' }, dryRun: true })).toEqual({
      action: 'abort',
      matched: 3,
    });
    expect(await bulk({ action: 'remove', filter: { name: 'bulk-set' }, dryRun: true })).toEqual({
      action: 'remove',
      matched: 0,
    });
    expect(await bulk({ action: 'abort', filter: { name: 'bulk-set' } })).toEqual({
      action: 'abort',
      matched: 3,
      done: 3,
      skipped: 0,
    });
    for (const q of queued) {
      expect((await client.get(q.number)).state).toBe('aborted');
    }
    expect((await client.get(other.number)).state).toBe('delayed');
    expect(await bulk({ action: 'remove', filter: { name: 'bulk-set', state: 'aborted' } })).toMatchObject({
      matched: 3,
      done: 3,
    });
    await expect(client.get(queued[0]?.number ?? 0)).rejects.toMatchObject({ status: 404 });
    await expect(bulk({ action: 'explode', filter: {} })).rejects.toMatchObject({ status: 400 });
  });
});

describe('GET /v1/executions/:n/timeline', () => {
  it('tells the starts, the retry and the end of an execution, with the node of its last attempt', async () => {
    const twice = await client.execute('fail', { succeedOn: 2 }, { attempts: 2, wait: 10_000 });
    expect(twice.state).toBe('completed');
    const { items } = await timeline(twice.number);
    expect(items.map((e) => e.type)).toEqual(['queued', 'started', 'retrying', 'started', 'completed']);
    expect(items.filter((e) => e.type === 'started').map((e) => e.attempt)).toEqual([1, 2]);
    expect(items.at(-1)?.node).toBe('admin-node');
    expect(items.map((e) => Date.parse(e.at))).toEqual(
      items.map((e) => Date.parse(e.at)).sort((a, b) => a - b),
    );
  });

  it('shows a delay cut short', async () => {
    const view = await client.execute('echo', 'w', { delayMs: 60_000 });
    await (await node.internals().executions.queueOf(view.number).getJob(jobIdOf(view.number)))?.promote();
    await waitForState(client, view.number, 'completed');
    const { items } = await timeline(view.number);
    expect(items.map((e) => e.type)).toEqual(['queued', 'delayed', 'woken', 'started', 'completed']);
  });
});

describe('children', () => {
  it('know their parent, and the list finds them by it', async () => {
    const parent = await client.execute('spawner', { value: 'kid' }, { wait: 10_000 });
    const child = (parent.result as { child: number }).child;
    expect((await client.get(child)).parent).toBe(parent.number);
    const page = await client.listPage({ parent: parent.number });
    expect(page.items.map((e) => e.number)).toEqual([child]);
  });
});
