/**
 * Delivery per procedure (defineProcedure({ delivery })): an at-most-once execution never runs twice.
 * Its node SIGKILLed mid-run leaves it failed with NODE_LOST while an at-least-once one beside it runs
 * again on the other node; its node stopping aborts it instead of handing it back. Real node processes
 * on the test Redis.
 */
import path from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineProcedure } from '../../src/procedures/define.js';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, spawnNode, startInProcessNode, type ChildNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const JOBS = path.join(FIXTURES, 'once-jobs');
const prefixes: string[] = [];
const children: ChildNode[] = [];
const stops: (() => Promise<void>)[] = [];

function prefix(): string {
  const p = uniquePrefix('dlv');
  prefixes.push(p);
  return p;
}

async function starts(p: string): Promise<{ procedure: string; execution: number }[]> {
  const json = await testClient().hget(storageLayout(createKeys(p)).data, 'starts');
  return json === null ? [] : (JSON.parse(json) as { list: { procedure: string; execution: number }[] }).list;
}

afterEach(async () => {
  await Promise.all(children.splice(0).map((c) => c.kill('SIGKILL')));
  await Promise.all(stops.splice(0).map((stop) => stop()));
});

afterAll(async () => {
  for (const p of prefixes) {
    await deletePrefix(testClient(), p);
  }
  await closeTestClients();
});

describe("defineProcedure({ delivery: 'at-most-once' })", () => {
  it('a node killed mid-run leaves it failed with NODE_LOST, never run again (at-least-once runs again)', async () => {
    const p = prefix();
    const a = await spawnNode(p, { SPROCD_JOBS_DIR: JOBS });
    children.push(a);
    const once = await a.client.execute('once', { ms: 60_000 });
    const again = await a.client.execute('again', { ms: 60_000 });
    await waitForState(a.client, once.number, 'active');
    await expect.poll(async () => (await starts(p)).length, { timeout: 15_000 }).toBe(2);
    const b = await startInProcessNode(p, { SPROCD_JOBS_DIR: JOBS });
    stops.push(() => b.node.stop());
    await a.kill('SIGKILL');

    const lost = await waitForState(b.client, once.number, 'failed', 20_000);
    expect(lost.error).toMatchObject({ code: 'NODE_LOST' });
    expect(lost.error?.message).toMatch(/not run again/);
    // The at-least-once execution that died with it ran again on b and finished there.
    const rerun = await waitForState(b.client, again.number, 'completed', 20_000);
    expect(rerun.result).toBe('done');
    const list = await starts(p);
    expect(list.filter((s) => s.execution === again.number)).toHaveLength(2);
    expect(list.filter((s) => s.execution === once.number)).toHaveLength(1);
  });

  it('a stop aborts it instead of handing it back, and no other node runs it', async () => {
    const p = prefix();
    const a = await startInProcessNode(p, { SPROCD_JOBS_DIR: JOBS, SPROCD_SHUTDOWN_GRACE_MS: '300' });
    const b = await startInProcessNode(p, { SPROCD_JOBS_DIR: JOBS });
    stops.push(() => b.node.stop());
    // Started on a: b takes work only once a is busy with it (b starts right after a's first start).
    const once = await a.client.execute('once', { ms: 60_000 });
    const running = await waitForState(a.client, once.number, 'active');
    const runsOnA = running.node === a.node.name;
    await (runsOnA ? a.node.stop() : b.node.stop());
    const other = runsOnA ? b : a;
    const aborted = await waitForState(other.client, once.number, 'aborted', 15_000);
    expect(aborted.error).toMatchObject({ code: 'ABORTED' });
    expect(aborted.error?.message).toMatch(/at-most-once/);
    // Its one start is all there is, however long the other node has been free to take it.
    await expect
      .poll(async () => (await other.client.get(once.number)).state, { timeout: 1000 })
      .toBe('aborted');
    expect((await starts(p)).filter((s) => s.execution === once.number)).toHaveLength(1);
    if (!runsOnA) {
      stops.push(() => a.node.stop());
    }
  });

  it('takes no retries: defineProcedure and an execute asking for attempts refuse it', async () => {
    expect(() => defineProcedure({ delivery: 'at-most-once', attempts: 3, run: () => null })).toThrow(
      /at-most-once.*no retries/,
    );
    expect(() => defineProcedure({ delivery: 'twice' as 'at-most-once', run: () => null })).toThrow(
      /delivery must be/,
    );
    const p = prefix();
    const a = await startInProcessNode(p, { SPROCD_JOBS_DIR: JOBS });
    stops.push(() => a.node.stop());
    await expect(a.client.execute('once', { ms: 0 }, { attempts: 2 })).rejects.toMatchObject({
      status: 400,
      code: 'VALIDATION_FAILED',
    });
    expect((await a.client.procedures()).find((x) => x.name === 'once')).toMatchObject({
      delivery: 'at-most-once',
    });
    expect((await a.client.procedures()).find((x) => x.name === 'again')?.delivery).toBeUndefined();
    const done = await waitForState(
      a.client,
      (await a.client.execute('once', { ms: 0 })).number,
      'completed',
    );
    expect(done.result).toBe('done');
  });
});
