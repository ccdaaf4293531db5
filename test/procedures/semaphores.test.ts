/**
 * Semaphore, Test semaphore and CLEAR SEMAPHORE (ctx.semaphore, ctx.testSemaphore,
 * ctx.clearSemaphore) on in-process nodes against the real test Redis: the 4D meanings, waits,
 * release when the execution ends however it ends, names.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sem');
const keys = createKeys(prefix);
let node: SprocdNode;
let client: SprocdClient;
let n = 0;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, { SPROCD_CONCURRENCY: '8' }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** A semaphore name no other test uses. */
function fresh(): string {
  return `sem-${++n}`;
}

/** Runs the probe fixture: `ops` on `name`, each one's result. */
async function probe(name: string, ops: string[], on: SprocdClient = client): Promise<unknown> {
  const done = await on.execute('semaphore-probe', { name, ops }, { wait: 20_000 });
  expect(done.state).toBe('completed');
  return done.result;
}

/** Starts an execution that takes `name` and holds it; resolves once it holds it. */
async function holder(
  name: string,
  params: Record<string, unknown> = {},
  on: SprocdClient = client,
): Promise<number> {
  const { number } = await on.execute('semaphore', { name, holdMs: 60_000, ...params });
  await vi.waitFor(async () => expect((await on.get(number)).progress).toEqual({ busy: false }), {
    timeout: 10_000,
    interval: 20,
  });
  return number;
}

describe('Semaphore', () => {
  it('answers false when it takes a free semaphore, true when someone holds it', async () => {
    const name = fresh();
    const held = await holder(name);
    expect(await probe(name, ['semaphore'])).toEqual([true]);
    await client.abort(held);
  });

  it('an execution that holds it already gets true, as in 4D', async () => {
    const name = fresh();
    expect(await probe(name, ['semaphore', 'semaphore', 'test', 'clear', 'test', 'semaphore'])).toEqual([
      false,
      true,
      true,
      null,
      false,
      false,
    ]);
  });

  it('with a wait, takes it as soon as its holder clears it', async () => {
    const name = fresh();
    const held = await holder(name, { clear: true });
    const waiting = client.execute(
      'semaphore-probe',
      { name, ops: ['semaphore:30000', 'test'] },
      { wait: 20_000 },
    );
    // The holder's delay ends: it clears the semaphore, which wakes the waiter.
    await vi.waitFor(async () => {
      await client.wake(held).catch(() => undefined);
      expect((await client.get(held)).state).toBe('completed');
    });
    expect((await waiting).result).toEqual([false, true]);
  });

  it('with a wait, answers true at the end of the wait when the holder keeps it', async () => {
    const name = fresh();
    const held = await holder(name);
    expect(await probe(name, ['semaphore:50'])).toEqual([true]);
    await client.abort(held);
  });

  it('is freed when its execution completes, fails, or is aborted', async () => {
    const redis = testClient();
    const completed = fresh();
    const done = await client.execute('semaphore', { name: completed }, { wait: 10_000 });
    expect(done.result).toMatchObject({ busy: false });
    expect(await redis.exists(keys.semaphore(completed))).toBe(0);

    const failed = fresh();
    const failing = await client.execute('semaphore', { name: failed, fail: true }, { wait: 10_000 });
    expect(failing.state).toBe('failed');
    expect(await redis.exists(keys.semaphore(failed))).toBe(0);

    const aborted = fresh();
    const held = await holder(aborted);
    expect(await redis.exists(keys.semaphore(aborted))).toBe(1);
    await client.abort(held);
    await waitForState(client, held, 'aborted');
    await vi.waitFor(async () => expect(await redis.exists(keys.semaphore(aborted))).toBe(0));
    expect(await probe(aborted, ['test'])).toEqual([false]);
  });

  it('a waiter is woken when the holder ends without clearing it', async () => {
    const name = fresh();
    const held = await holder(name);
    const waiting = client.execute('semaphore-probe', { name, ops: ['semaphore:30000'] }, { wait: 20_000 });
    await vi.waitFor(async () => {
      await client.wake(held).catch(() => undefined);
      expect((await client.get(held)).state).toBe('completed');
    });
    expect((await waiting).result).toEqual([false]);
  });

  it('refuses bad names with INVALID_NAME', async () => {
    for (const name of ['', '$local', 'x'.repeat(256)]) {
      expect(await probe(name, ['semaphore', 'test', 'clear'])).toEqual([
        { code: 'INVALID_NAME' },
        { code: 'INVALID_NAME' },
        { code: 'INVALID_NAME' },
      ]);
    }
    expect(await probe('x'.repeat(255), ['semaphore'])).toEqual([false]);
  });

  it('outlives its lease while its node renews it', async () => {
    const p = uniquePrefix('semlease');
    const other = await startInProcessNode(p, { SPROCD_LOCK_LEASE_MS: '300' });
    const redis = testClient();
    try {
      const name = fresh();
      const held = await holder(name, {}, other.client);
      // Four leases later, it is still held, its lease no longer than one lease.
      await new Promise((r) => setTimeout(r, 1200));
      expect(await redis.get(createKeys(p).semaphore(name))).toMatch(new RegExp(`:${held}:`));
      expect(await redis.pttl(createKeys(p).semaphore(name))).toBeLessThanOrEqual(300);
      expect(await probe(name, ['semaphore', 'test'], other.client)).toEqual([true, true]);
    } finally {
      await other.node.stop();
      await deletePrefix(redis, p);
    }
  });

  it('is freed when its execution is given back at a stop', async () => {
    const p = uniquePrefix('semstop');
    const other = await startInProcessNode(p, { SPROCD_SHUTDOWN_GRACE_MS: '200' });
    const redis = testClient();
    try {
      const name = fresh();
      await holder(name, {}, other.client);
      expect(await redis.exists(createKeys(p).semaphore(name))).toBe(1);
      await other.node.stop();
      expect(await redis.exists(createKeys(p).semaphore(name))).toBe(0);
    } finally {
      await other.node.stop();
      await deletePrefix(redis, p);
    }
  });
});

describe('Test semaphore', () => {
  it('tells whether someone holds it, and takes nothing', async () => {
    const name = fresh();
    expect(await probe(name, ['test', 'test'])).toEqual([false, false]);
    const held = await holder(name);
    expect(await probe(name, ['test'])).toEqual([true]);
    await client.abort(held);
    await waitForState(client, held, 'aborted');
    expect(await probe(name, ['test'])).toEqual([false]);
  });
});

describe('CLEAR SEMAPHORE', () => {
  it('clears a semaphore this execution holds', async () => {
    const name = fresh();
    expect(await probe(name, ['semaphore', 'clear', 'test'])).toEqual([false, null, false]);
  });

  it('does nothing to a semaphore another execution holds', async () => {
    const name = fresh();
    const held = await holder(name);
    expect(await probe(name, ['clear', 'test', 'semaphore'])).toEqual([null, true, true]);
    await client.abort(held);
  });

  it('does nothing to a semaphore nobody holds', async () => {
    expect(await probe(fresh(), ['clear', 'test'])).toEqual([null, false]);
  });
});
