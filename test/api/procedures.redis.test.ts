/** GET /v1/procedures counts and the stack of a failed execution, on a real node. */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('proc-counts');
let node: SprocdNode;
let client: SprocdClient;

// One execution at a time: a long sleep keeps the ones queued behind it waiting.
beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '1' }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

const running = (n: number) =>
  vi.waitFor(async () => expect((await client.get(n)).state).toBe('active'), { timeout: 10_000 });

describe('GET /v1/procedures counts', () => {
  let failed: number;
  let timedOut: number;
  let aborted: number;

  beforeAll(async () => {
    await client.execute('echo', 1, { wait: 10_000 });
    await client.execute('echo', 2, { wait: 10_000 });
    failed = (await client.execute('fail', null, { attempts: 1, wait: 10_000 })).number;
    timedOut = (await client.execute('overtime', null, { wait: 10_000 })).number;
    aborted = (await client.execute('sleep', { ms: 60_000 })).number;
    await running(aborted);
    await client.abort(aborted);
    await vi.waitFor(async () => expect((await client.get(aborted)).state).toBe('aborted'), {
      timeout: 10_000,
    });
    const active = (await client.execute('sleep', { ms: 60_000 })).number;
    await running(active);
    await client.execute('sleep', { ms: 1 });
    await client.execute('sleep', { ms: 1 });
    await client.execute('echo', 3, { delayMs: 60_000 });
  }, 30_000);

  it('gives the executions that ended in the last hour and the unfinished ones now, by procedure', async () => {
    await client.request('GET', '/v1/stats?minutes=1'); // the serving node writes its counts first
    const items = await client.procedures();
    const counts = (name: string) => items.find((p) => p.name === name)?.counts;
    expect(counts('echo')).toEqual({
      windowMinutes: 60,
      completed: 2,
      failed: 0,
      aborted: 0,
      waiting: 0,
      active: 0,
      delayed: 1,
    });
    expect(counts('fail')).toMatchObject({ completed: 0, failed: 1, aborted: 0, waiting: 0 });
    expect(counts('overtime')).toMatchObject({ failed: 1 });
    expect(counts('sleep')).toEqual({
      windowMinutes: 60,
      completed: 0,
      failed: 0,
      aborted: 1,
      waiting: 2,
      active: 1,
      delayed: 0,
    });
    expect(counts('noop')).toEqual({
      windowMinutes: 60,
      completed: 0,
      failed: 0,
      aborted: 0,
      waiting: 0,
      active: 0,
      delayed: 0,
    });
    expect(items.find((p) => p.name === 'fail')?.failureRate).toBe(1);
  });

  it("gives the stack of an error the procedure threw, and none for sprocd's own errors", async () => {
    const view = await client.get(failed);
    expect(view.error).toMatchObject({ name: 'Error', message: 'boom on attempt 1', code: 'BOOM' });
    expect(view.error?.stack).toMatch(/^Error: boom on attempt 1\n\s+at .*fail\.ts/);
    expect((await client.get(timedOut)).error).toMatchObject({ code: 'EXECUTION_TIMEOUT' });
    expect((await client.get(timedOut)).error?.stack).toBeUndefined();
    expect((await client.get(aborted)).error).toMatchObject({ code: 'ABORTED' });
    expect((await client.get(aborted)).error?.stack).toBeUndefined();
  });
});
