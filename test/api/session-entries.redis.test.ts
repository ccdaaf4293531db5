/** The console's storage routes on a real node: entries with sizes, lock holders and waiters, edits through use. */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { SprocdNode } from '../../src/node.js';
import { waitForState } from '../support/executions.js';
import { FIXTURES, startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefix = uniquePrefix('sentries');
let node: SprocdNode;
let client: SprocdClient;

interface Party {
  owner: string;
  node?: string;
  execution?: number;
}
interface Entry {
  key: string;
  size: number | null;
  lock?: { holder: Party; leaseUntil: string; waiters: Party[] };
}

const entries = async () => (await client.request<{ items: Entry[] }>('GET', '/v1/session/entries')).items;

beforeAll(async () => {
  ({ node, client } = await startInProcessNode(prefix, {
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'storage-jobs'),
    SPROCD_NODE_NAME: 'entries-node',
    SPROCD_LOCK_TIMEOUT_MS: '20000',
  }));
});

afterAll(async () => {
  await node?.stop();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('GET /v1/session/entries', () => {
  it('lists entries with their size, and who holds a lock, its lease and its waiters', async () => {
    await node.session.storage.use('plain', (d) => {
      d.hello = 'world';
    });
    const first = await client.execute('hold', { key: 'fresh' });
    const second = await client.execute('hold', { key: 'fresh' });
    const items = await vi.waitFor(
      async () => {
        const list = await entries();
        expect(list.find((e) => e.key === 'fresh')?.lock?.waiters).toHaveLength(1);
        return list;
      },
      { timeout: 15_000, interval: 50 },
    );
    expect(items.map((e) => e.key)).toEqual(['fresh', 'plain']);
    expect(items.find((e) => e.key === 'plain')).toEqual({ key: 'plain', size: '{"hello":"world"}'.length });
    const fresh = items.find((e) => e.key === 'fresh');
    // locked by a use that creates it: no entry yet
    expect(fresh?.size).toBeNull();
    const [holder, waiter] =
      fresh?.lock?.holder.execution === first.number ? [first, second] : [second, first];
    expect(fresh?.lock?.holder).toEqual({
      owner: `entries-node #${holder.number}`,
      node: 'entries-node',
      execution: holder.number,
    });
    expect(fresh?.lock?.waiters).toEqual([
      { owner: `entries-node #${waiter.number}`, node: 'entries-node', execution: waiter.number },
    ]);
    expect(Date.parse(fresh?.lock?.leaseUntil ?? '')).toBeGreaterThan(Date.now());
    await client.wake(holder.number);
    await vi.waitFor(async () => {
      const now = (await entries()).find((e) => e.key === 'fresh');
      expect(now?.lock?.holder.execution).toBe(waiter.number);
      expect(now?.size).toBe(`{"by":${holder.number}}`.length);
    });
    await client.wake(waiter.number);
    await waitForState(client, waiter.number, 'completed');
    expect((await entries()).find((e) => e.key === 'fresh')?.lock).toBeUndefined();
  });
});

describe('PUT /v1/session/storage/:key', () => {
  it('writes through use: it waits for the holder, and names the console while it holds', async () => {
    const holder = await client.execute('hold', { key: 'edited' });
    await vi.waitFor(async () =>
      expect((await entries()).find((e) => e.key === 'edited')?.lock?.holder.execution).toBe(holder.number),
    );
    const put = client.request('PUT', '/v1/session/storage/edited', { body: { value: { by: 'console' } } });
    await vi.waitFor(async () =>
      expect((await entries()).find((e) => e.key === 'edited')?.lock?.waiters).toEqual([
        { owner: 'entries-node console', node: 'entries-node' },
      ]),
    );
    await client.wake(holder.number);
    expect(await put).toEqual({ key: 'edited', size: '{"by":"console"}'.length });
    expect(await client.storage('edited')).toEqual({ by: 'console' });
  });

  it('writes nothing when the entry is not what the console saw', async () => {
    await client.request('PUT', '/v1/session/storage/checked', { body: { value: { v: 1 }, expect: null } });
    await expect(
      client.request('PUT', '/v1/session/storage/checked', { body: { value: { v: 3 }, expect: { v: 2 } } }),
    ).rejects.toMatchObject({ status: 409, code: 'STORAGE_ENTRY_CHANGED', details: { current: { v: 1 } } });
    await client.request('PUT', '/v1/session/storage/checked', {
      body: { value: { v: 2, w: [1] }, expect: { v: 1 } },
    });
    expect(await client.storage('checked')).toEqual({ v: 2, w: [1] });
    await expect(
      client.request('PUT', '/v1/session/storage/checked', { body: { value: [1, 2] } }),
    ).rejects.toMatchObject({ status: 400 });
  });
});
