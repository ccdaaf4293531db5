/**
 * ABORT PROCESS BY ID stops what the code can change (issue 9): an aborted execution's code may go on
 * running, but a storage commit it makes after the abort (even of a `use` that held its lock before),
 * an execution it starts and a signal it triggers are refused with ABORTED, and the locks it held are
 * free at once.
 */
import path from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import type { SprocdNode } from '../../src/node.js';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import type { ZombieSeen } from '../fixtures/abort-jobs/zombie.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('abx');
const nodes: SprocdNode[] = [];
const seen = () => (globalThis as { zombie?: ZombieSeen }).zombie;

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('ABORT PROCESS BY ID: an aborted execution changes nothing', () => {
  it('refuses its storage commits and the executions it starts, and frees its locks at once', async () => {
    const a = await startInProcessNode(prefix, {
      SPROCD_JOBS_DIR: path.join(FIXTURES, 'abort-jobs'),
      SPROCD_LOCK_TIMEOUT_MS: '2000',
    });
    nodes.push(a.node);
    const view = await a.client.execute('zombie');
    await vi.waitFor(() => expect(seen()?.holding).toBe(true), { timeout: 15_000, interval: 25 });

    await a.client.abort(view.number);
    await waitForState(a.client, view.number, 'aborted');
    await vi.waitFor(() => expect(seen()?.done).toBe(true), { timeout: 15_000, interval: 25 });
    expect(seen()).toMatchObject({
      held: 'ABORTED',
      after: 'ABORTED',
      execute: 'ABORTED',
      trigger: 'ABORTED',
    });

    const data = storageLayout(createKeys(prefix)).data;
    expect(await testClient().hget(data, 'held')).toBeNull();
    expect(await testClient().hget(data, 'after')).toBeNull();
    const children = await a.client.list({ procedure: 'echo' });
    expect(children).toHaveLength(0);
    // The signal it made before the abort is still untriggered: any other execution may trigger it.
    const signalKey = createKeys(prefix).signal(seen()?.signalId ?? '');
    expect(await testClient().hget(signalKey, 's')).toBe('0');
    // The lock it held is free: another writer takes it within the lock time-out.
    await a.node.session.storage.use('held', (d) => {
      d.by = 'the next writer';
    });
    expect(await a.node.session.storage.get('held')).toEqual({ by: 'the next writer' });
  });

  it('ctx.checkpoint() passes at once while nothing stops the run, and rejects with ABORTED after an abort', async () => {
    const a = await startInProcessNode(prefix, { SPROCD_JOBS_DIR: path.join(FIXTURES, 'abort-jobs') });
    nodes.push(a.node);
    const counted = await a.client.execute('looper', { rounds: 100 });
    expect((await waitForState(a.client, counted.number, 'completed')).result).toBe(100);

    const looper = () => (globalThis as { looper?: { ended?: string; passed?: number } }).looper;
    const endless = await a.client.execute('looper', {});
    await vi.waitFor(() => expect(looper()?.passed).toBeGreaterThan(1000), { timeout: 15_000, interval: 25 });
    await a.client.abort(endless.number);
    await vi.waitFor(() => expect(looper()?.ended).toBe('ABORTED'), { timeout: 15_000, interval: 25 });
    await waitForState(a.client, endless.number, 'aborted');
  });
});
