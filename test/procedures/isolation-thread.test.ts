/**
 * `isolation: 'thread'` (issue 9): the procedure's run goes to a worker thread, its ctx crosses to the
 * node, and an abort or a time-out terminates the thread, so even code that never yields is stopped
 * and its worker slot freed.
 */
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { SprocdClient } from '../../src/client.js';
import { loadSettings } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { SprocdNode } from '../../src/node.js';
import { bullQueueKeys, executionJobKey } from '../../src/redis/bullmq-internals.js';
import { jobIdOf } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, ROOT, testEnv, testKeys } from '../support/node.js';
import { checkedFetch } from '../support/openapi.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('thr');
const nodes: SprocdNode[] = [];

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** A node of the thread procedures that logs at info into `lines`. */
async function threadNode(name: string, concurrency = '1') {
  const settings = loadSettings(
    testEnv(`${prefix}-${name}`, {
      LOG_LEVEL: 'info',
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'thread-jobs'),
      SPROCD_CONCURRENCY: concurrency,
    }),
    ROOT,
  );
  const lines: Record<string, unknown>[] = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) };
  const node = new SprocdNode(settings, createLogger('info', { destination }));
  nodes.push(node);
  await node.start();
  return {
    node,
    lines,
    client: new SprocdClient({ url: node.url, token: '', fetch: checkedFetch(node.url) }),
  };
}

describe("isolation: 'thread'", () => {
  it('runs in a worker thread with ctx.log, progress, delay and the storage of the node', async () => {
    const { node, client, lines } = await threadNode('work', '2');
    const first = await client.execute('work', { by: 2 });
    const done = await waitForState(client, first.number, 'completed');
    expect(done.result).toEqual({
      before: 0,
      after: 2,
      inThread: true,
      number: first.number,
      node: node.name,
    });
    expect(done.progress).toBe(50);
    // The thread is reused for the next execution; the storage saw both.
    const second = await client.execute('work', {});
    expect((await waitForState(client, second.number, 'completed')).result).toMatchObject({
      before: 2,
      after: 3,
    });
    expect(await node.session.storage.get('counter')).toEqual({ n: 3 });
    // ctx.log in the thread writes through the node's logger of the execution.
    expect(lines.find((l) => l.msg === 'counting in a thread')).toMatchObject({
      by: 2,
      execution: first.number,
      procedure: 'work',
    });
    const kept = await vi.waitFor(async () => {
      const items = await client.logs(first.number);
      expect(items.map((l) => l.msg)).toContain('counting in a thread');
      return items;
    });
    expect(kept.find((l) => l.msg === 'counting in a thread')?.fields).toMatchObject({ by: 2 });
  });

  it('offers the rest of ctx: use that throws writes nothing, executeOnServer, signals, semaphores, onErrCall', async () => {
    const { node, client } = await threadNode('features', '2');
    const view = await client.execute('features');
    const done = await waitForState(client, view.number, 'completed');
    expect(done.result).toMatchObject({
      useThrew: 'MIND_CHANGED',
      written: [],
      nested: 'UNSUPPORTED_IN_THREAD',
      childParent: view.number,
      triggered: true,
      waited: true,
      signal: { signaled: true, result: { rows: 42 } },
      taken: false,
      held: true,
      heldAfter: false,
      pause: 'ok',
      worker: 'none',
      batch: [view.number],
      callWorker: 'UNKNOWN_PROCEDURE',
      handled: 'handled by onErrCall',
    });
    const { child, childNumber } = done.result as { child: number; childNumber: number };
    expect([0, child]).toContain(childNumber);
    expect((await waitForState(client, child, 'completed')).result).toMatchObject({ after: 10 });
    expect(await node.session.storage.get('feat-a')).toBeUndefined();
    expect(await node.session.storage.get('feat-c')).toBeUndefined();
  });

  it('a stop terminates a thread that ignores its signal after the grace, and gives its execution back', async () => {
    const { node, client } = await threadNode('stop');
    const spin = await client.execute('spin');
    await vi.waitFor(async () => expect(await node.session.storage.get('spin')).toEqual({ started: 1 }), {
      timeout: 15_000,
      interval: 25,
    });
    await node.stop();
    expect(node.state).toBe('stopped');
    const keys = testKeys(`${prefix}-stop`);
    const [finishedOn] = await testClient().hmget(executionJobKey(keys, spin.number), 'finishedOn');
    expect(finishedOn).toBeNull();
    // Given back to the wait list of its own shard.
    const wait = bullQueueKeys(keys.queues.ofNumber(spin.number)).wait;
    expect(await testClient().lrange(wait, 0, -1)).toContain(jobIdOf(spin.number));
  });

  it('an abort terminates a thread that never yields, and its slot takes the next execution', async () => {
    const { node, client } = await threadNode('abort');
    const spin = await client.execute('spin');
    await vi.waitFor(async () => expect(await node.session.storage.get('spin')).toEqual({ started: 1 }), {
      timeout: 15_000,
      interval: 25,
    });
    const next = await client.execute('work', {});
    await client.abort(spin.number);
    expect((await waitForState(client, spin.number, 'aborted')).error?.code).toBe('ABORTED');
    expect((await waitForState(client, next.number, 'completed')).result).toMatchObject({ inThread: true });
  });

  it('stops at ctx.checkpoint while paused, and goes on when resumed', async () => {
    const { client } = await threadNode('pause');
    const { number } = await client.execute('steps');
    const step = async () =>
      ((await client.get(number)).progress as { step?: number } | undefined)?.step ?? 0;
    await vi.waitFor(async () => expect(await step()).toBeGreaterThanOrEqual(3), { timeout: 15_000 });
    await client.pause(number);
    // Paused: the step stops moving (two reads 300 ms apart agree).
    const stopped = await vi.waitFor(
      async () => {
        const before = await step();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(await step()).toBe(before);
        return before;
      },
      { timeout: 15_000 },
    );
    expect((await client.get(number)).state).toBe('active');
    await client.resume(number);
    await vi.waitFor(async () => expect(await step()).toBeGreaterThan(stopped + 2), { timeout: 15_000 });
    await client.abort(number);
    await waitForState(client, number, 'aborted');
  });

  it('a time-out terminates it too', async () => {
    const { client } = await threadNode('timeout');
    const spin = await client.execute('spin-timeout');
    const next = await client.execute('work', {});
    expect((await waitForState(client, spin.number, 'failed')).error?.code).toBe('EXECUTION_TIMEOUT');
    await waitForState(client, next.number, 'completed');
  });

  it('fails with what the thread threw, its code included, and names a ctx member a thread lacks', async () => {
    const { client } = await threadNode('fail');
    const failed = await client.execute('fail');
    expect((await waitForState(client, failed.number, 'failed')).error).toMatchObject({
      message: 'no such invoice',
      code: 'INVOICE_MISSING',
    });
    const unsupported = await client.execute('unsupported');
    const error = (await waitForState(client, unsupported.number, 'failed')).error;
    expect(error?.code).toBe('UNSUPPORTED_IN_THREAD');
    expect(error?.message).toContain('ctx.somethingElse');
  });
});
