/**
 * PAUSE PROCESS and RESUME PROCESS across real node processes (bin/sprocd.js) on the test Redis: a
 * pause asked on one node holds an execution running on the other and a resume from that other node
 * lets it go on; a paused execution whose node is SIGKILLed starts paused where it is recovered; a
 * paused execution that has not started stays paused through the death of the node that queued it.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { waitForState } from '../support/executions.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const WAIT_MS = 20_000;
const nodes: ChildNode[] = [];
const prefixes: string[] = [];

function prefix(): string {
  const p = uniquePrefix('pause');
  prefixes.push(p);
  return p;
}

async function start(p: string, name: string, concurrency = 1): Promise<ChildNode> {
  const node = await spawnNode(p, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'process-jobs'),
    SPROCD_NODE_NAME: name,
    SPROCD_CONCURRENCY: String(concurrency),
  });
  nodes.push(node);
  return node;
}

/** Waits `ms` of real time: long enough for work the execution would have done if it were not held. */
const pass = (ms: number) => new Promise((r) => setTimeout(r, ms));

afterEach(async () => {
  await Promise.all(nodes.splice(0).map((n) => n.kill('SIGKILL')));
});

afterAll(async () => {
  for (const p of prefixes) {
    await deletePrefix(testClient(), p);
  }
  await closeTestClients();
});

describe('PAUSE PROCESS across processes', () => {
  it('a pause from node B holds an execution running on node A; a resume from A lets it go on', async () => {
    const p = prefix();
    const nodeA = await start(p, 'node-a');
    const nodeB = await start(p, 'node-b');
    // One slot each: the two executions run one on each node.
    const first = (await nodeA.client.execute('busy', { ms: 3000 })).number;
    const second = (await nodeA.client.execute('busy', { ms: 3000 })).number;
    const a1 = await waitForState(nodeA.client, first, 'active', WAIT_MS);
    const a2 = await waitForState(nodeA.client, second, 'active', WAIT_MS);
    expect(new Set([a1.node, a2.node])).toEqual(new Set(['node-a', 'node-b']));
    const target = a1.node === 'node-a' ? first : second;
    const other = target === first ? second : first;

    await nodeB.client.pause(target);
    expect(await nodeA.client.processState(target)).toBe(5);
    expect(await nodeB.client.processState(target)).toBe(5);
    // The one not paused ends its work; the paused one, held at a checkpoint, does not.
    await waitForState(nodeB.client, other, 'completed', WAIT_MS);
    await pass(1000);
    expect(await nodeB.client.get(target)).toMatchObject({ state: 'active', node: 'node-a' });

    await nodeA.client.resume(target);
    expect(await nodeB.client.processState(target)).not.toBe(5);
    await waitForState(nodeB.client, target, 'completed', WAIT_MS);
  });

  it('a paused execution whose node dies starts paused where it is recovered', async () => {
    const p = prefix();
    const doomed = await start(p, 'node-doomed');
    const target = (await doomed.client.execute('busy', { ms: 3000 })).number;
    await waitForState(doomed.client, target, 'active', WAIT_MS);
    await doomed.client.pause(target);
    const heir = await start(p, 'node-heir');
    await doomed.kill('SIGKILL');
    // The heir's stalled check puts it back; it starts there (attempt 2) and stops at its first checkpoint.
    await expect
      .poll(async () => (await heir.client.get(target)).node, { timeout: WAIT_MS })
      .toBe('node-heir');
    expect(await heir.client.get(target)).toMatchObject({ state: 'active', attempt: 2 });
    expect(await heir.client.processState(target)).toBe(5);
    await pass(4000);
    expect((await heir.client.get(target)).state).toBe('active');

    await heir.client.resume(target);
    await waitForState(heir.client, target, 'completed', WAIT_MS);
  });

  it('a paused execution that has not started stays paused when the node that queued it dies', async () => {
    const p = prefix();
    const holder = await start(p, 'node-holder');
    const blocker = (await holder.client.execute('busy', { ms: 600_000 })).number;
    await waitForState(holder.client, blocker, 'active', WAIT_MS);
    const later = (await holder.client.execute('sleeper', { ms: 0 }, { delayMs: 600_000 })).number;
    const queued = (await holder.client.execute('busy', { ms: 600_000 })).number;
    await holder.client.pause(later);
    await holder.client.pause(queued);
    await holder.kill('SIGKILL');

    const next = await start(p, 'node-next', 2);
    expect(await next.client.processState(later)).toBe(5);
    expect(await next.client.processState(queued)).toBe(5);
    // The new node runs new work; the paused ones stay where they are.
    const fresh = (await next.client.execute('sleeper', { ms: 0 })).number;
    await waitForState(next.client, fresh, 'completed', WAIT_MS);
    expect(await next.client.get(queued)).toMatchObject({ state: 'delayed', attempt: 0 });

    await next.client.resume(later);
    expect(await next.client.processState(later)).toBe(1);
    await next.client.abort(later);
    await next.client.abort(queued);
    await next.client.abort(blocker);
    await waitForState(next.client, queued, 'aborted', WAIT_MS);
  });
});
