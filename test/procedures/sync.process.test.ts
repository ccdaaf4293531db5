/**
 * Signals and semaphores across real node processes (bin/sprocd.js) on the test Redis: a trigger on
 * one node wakes a waiter on another, a SIGKILLed node's semaphore frees itself after its lease, and
 * a failed execution's semaphore is freed for a waiter on another node.
 */
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import { createKeys } from '../../src/redis/keys.js';
import { waitForState } from '../support/executions.js';
import { spawnNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const WAIT_MS = 20_000;
const nodes: ChildNode[] = [];
const prefixes: string[] = [];

function prefix(): string {
  const p = uniquePrefix('sync');
  prefixes.push(p);
  return p;
}

async function start(p: string, env: Record<string, string> = {}): Promise<ChildNode> {
  const node = await spawnNode(p, env);
  nodes.push(node);
  return node;
}

/** Waits until execution `number` reported `progress` and answers it. */
function progressOf(client: SprocdClient, number: number): Promise<Record<string, unknown>> {
  return vi.waitFor(
    async () => {
      const progress = (await client.get(number)).progress as Record<string, unknown> | undefined;
      expect(progress).toBeDefined();
      return progress as Record<string, unknown>;
    },
    { timeout: WAIT_MS, interval: 25 },
  );
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  const redis = testClient();
  for (const p of prefixes) {
    await deletePrefix(redis, p);
  }
  await closeTestClients();
});

describe('New signal across processes', () => {
  it('a trigger on node A wakes a waiter on node B', async () => {
    const p = prefix();
    // B alone, one slot: the waiter runs there and keeps B busy, so the trigger can only run on A.
    const b = await start(p, { SPROCD_CONCURRENCY: '1' });
    const waiter = await b.client.execute('signal', { op: 'wait', description: 'across' });
    const { signal: id } = (await progressOf(b.client, waiter.number)) as { signal: string };
    const a = await start(p, { SPROCD_CONCURRENCY: '2' });
    const trigger = await a.client.execute(
      'signal',
      { op: 'trigger', id, result: { from: 'A' } },
      { wait: WAIT_MS },
    );
    expect(trigger.state).toBe('completed');
    const done = await waitForState(b.client, waiter.number, 'completed', WAIT_MS);
    const triggeredOn = (trigger.result as { node: string }).node;
    const waitedOn = (done.result as { node: string }).node;
    expect(triggeredOn).not.toBe(waitedOn);
    expect(done.result).toMatchObject({ signaled: true, result: { from: 'A' }, description: 'across' });
  });
});

describe('Semaphore across processes', () => {
  it('a semaphore held by a SIGKILLed node frees itself after its lease', async () => {
    const p = prefix();
    const redis = testClient();
    const env = { SPROCD_LOCK_LEASE_MS: '1000' };
    const doomed = await start(p, { ...env, SPROCD_CONCURRENCY: '1' });
    const held = await doomed.client.execute('semaphore', { name: 'orphan', holdMs: 60_000, once: true });
    expect(await progressOf(doomed.client, held.number)).toEqual({ busy: false });
    const survivor = await start(p, { ...env, SPROCD_CONCURRENCY: '2' });
    const waiting = survivor.client.execute(
      'semaphore-probe',
      { name: 'orphan', ops: ['semaphore:30000'] },
      { wait: WAIT_MS },
    );
    await waitForState(survivor.client, (await probeNumber(survivor.client)) ?? 0, 'active', WAIT_MS);
    await doomed.kill('SIGKILL');
    // Nobody clears it: the lease (no longer renewed) ends, and the waiter's lease timer takes it.
    expect((await waiting).result).toEqual([false]);
    await vi.waitFor(async () => expect(await redis.exists(createKeys(p).semaphore('orphan'))).toBe(0), {
      timeout: WAIT_MS,
    });
  });

  it('a semaphore is freed when its execution fails, and a waiter on another node takes it', async () => {
    const p = prefix();
    const redis = testClient();
    const a = await start(p, { SPROCD_CONCURRENCY: '1' });
    const failing = await a.client.execute('semaphore', { name: 'shared', holdMs: 60_000, fail: true });
    expect(await progressOf(a.client, failing.number)).toEqual({ busy: false });
    const b = await start(p, { SPROCD_CONCURRENCY: '2' });
    const waiting = b.client.execute(
      'semaphore-probe',
      { name: 'shared', ops: ['semaphore:30000'] },
      { wait: WAIT_MS },
    );
    await waitForState(b.client, (await probeNumber(b.client)) ?? 0, 'active', WAIT_MS);
    // The holder's delay ends; it throws; its semaphore is freed and the waiter on B is told.
    await vi.waitFor(
      async () => {
        await a.client.wake(failing.number).catch(() => undefined);
        expect((await a.client.get(failing.number)).state).toBe('failed');
      },
      { timeout: WAIT_MS },
    );
    expect((await waiting).result).toEqual([false]);
    const ended = await a.client.get(failing.number);
    expect(ended.error?.message).toMatch(/failing while holding/);
    expect(await redis.exists(createKeys(p).semaphore('shared'))).toBe(0);
  });
});

/** The number of the newest semaphore-probe execution. */
async function probeNumber(client: SprocdClient): Promise<number | undefined> {
  return vi.waitFor(
    async () => {
      const number = (await client.list({ procedure: 'semaphore-probe' }))[0]?.number;
      expect(number).toBeDefined();
      return number;
    },
    { timeout: WAIT_MS, interval: 25 },
  );
}
