/**
 * Workers across real node processes (bin/sprocd.js) on the test Redis: the node holding a worker is
 * SIGKILLed in the middle of a message; after its lease, the other node takes the worker over, runs
 * that message again with its attempt raised, then the later ones, in the order they were queued.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import type { StepSeen } from '../fixtures/worker-jobs/step.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const WAIT = { timeout: 30_000, interval: 50 };
const ENV = { SPROCD_JOBS_DIR: path.join(FIXTURES, 'worker-jobs') };
const nodes: ChildNode[] = [];
const prefixes: string[] = [];

async function entry<T>(p: string, key: string): Promise<T | undefined> {
  const json = await testClient().hget(storageLayout(createKeys(p)).data, key);
  return json === null ? undefined : (JSON.parse(json) as T);
}

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  for (const p of prefixes) {
    await deletePrefix(testClient(), p);
  }
  await closeTestClients();
});

describe('CALL WORKER across processes', () => {
  it("keeps a worker's messages in order across a SIGKILL of its node, running the interrupted one again with its attempt raised", async () => {
    const p = uniquePrefix('wkp');
    prefixes.push(p);
    const a = await spawnNode(p, ENV);
    nodes.push(a);
    const t = 'kill';
    await a.client.callWorker('survivor', 'step', { tag: t, i: 1, store: true });
    await a.client.callWorker('survivor', 'step', { tag: t, i: 2, store: true, hangFirst: true });
    for (let i = 3; i <= 6; i++) {
      await a.client.callWorker('survivor', 'step', { tag: t, i, store: true });
    }
    // Message 2 runs on a (the only node) and hangs there.
    const started = await vi.waitFor(async () => {
      const s = await entry<{ node: string; i: number }>(p, `wstart:${t}`);
      expect(s?.i).toBe(2);
      return s as { node: string };
    }, WAIT);
    const b = await spawnNode(p, ENV);
    nodes.push(b);
    const before = (await b.client.workers()).find((w) => w.name === 'survivor');
    expect(before).toMatchObject({
      node: started.node,
      pending: 4,
      current: { procedure: 'step', attempt: 1 },
    });

    await a.kill('SIGKILL');
    const items = await vi.waitFor(async () => {
      const log = await entry<{ items: StepSeen[] }>(p, `wlog:${t}`);
      expect(log?.items).toHaveLength(6);
      return (log as { items: StepSeen[] }).items;
    }, WAIT);

    expect(items.map((s) => s.i)).toEqual([1, 2, 3, 4, 5, 6]);
    const [one, two, ...rest] = items as [StepSeen, StepSeen, ...StepSeen[]];
    expect(one).toMatchObject({ node: started.node, attempt: 1, local: 1 });
    expect(two.node).not.toBe(started.node);
    // Run again where the worker moved: attempt raised, and local starts empty there.
    expect(two).toMatchObject({ attempt: 2, local: 1 });
    expect(rest.map((s) => [s.node, s.attempt, s.local])).toEqual(
      [2, 3, 4, 5].map((local) => [two.node, 1, local]),
    );
    expect(items.every((s) => s.running === 1)).toBe(true);
    await vi.waitFor(async () => {
      expect((await b.client.workers()).find((w) => w.name === 'survivor')).toMatchObject({
        node: two.node,
        pending: 0,
        processed: 6,
      });
    }, WAIT);
  });

  it('keeps pending messages through a SIGKILL of the only node: the next node to start runs them all, in order', async () => {
    const p = uniquePrefix('wkr');
    prefixes.push(p);
    const a = await spawnNode(p, ENV);
    nodes.push(a);
    const t = 'restart';
    await a.client.callWorker('durable', 'step', { tag: t, i: 1, store: true, hangFirst: true });
    for (let i = 2; i <= 4; i++) {
      await a.client.callWorker('durable', 'step', { tag: t, i, store: true });
    }
    await vi.waitFor(async () => expect((await entry<{ i: number }>(p, `wstart:${t}`))?.i).toBe(1), WAIT);
    await a.kill('SIGKILL');
    const restarted = await spawnNode(p, ENV);
    nodes.push(restarted);
    const items = await vi.waitFor(async () => {
      const log = await entry<{ items: StepSeen[] }>(p, `wlog:${t}`);
      expect(log?.items).toHaveLength(4);
      return (log as { items: StepSeen[] }).items;
    }, WAIT);
    expect(items.map((s) => [s.i, s.attempt, s.local])).toEqual([
      [1, 2, 1],
      [2, 1, 2],
      [3, 1, 3],
      [4, 1, 4],
    ]);
  });
});
