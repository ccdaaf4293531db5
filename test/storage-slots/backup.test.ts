/**
 * Backup and restore with the entries in 4 data slots (SPROCD_STORAGE_SLOTS = 4), on in-process nodes:
 * the backup holds the entries of every slot, and a multi-slot commit caught between its decide and
 * its last apply whole (its record is rolled forward in the copies); a restore puts every entry in its
 * slot, clears the versions and raises each slot's floor, so an apply of a tx decided before it is
 * ignored.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SprocdClient } from '../../src/client.js';
import type { BackupRecord } from '../../src/lifecycle/backup-history.js';
import { parseBackup } from '../../src/lifecycle/backup-reader.js';
import type { SprocdNode } from '../../src/node.js';
import { lockAcquire, lockCommit, storageApply } from '../../src/redis/scripts.js';
import { storageLayout } from '../../src/session/layout.js';
import { slotOf } from '../../src/session/slots.js';
import { startInProcessNode } from '../support/node.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const KEY = 'slots-backup-test-key-0123456789abcdef';
const K = 4;
const prefixes = { source: uniquePrefix('sb'), target: uniquePrefix('sbt') };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-slots-backup-'));
const env = { SPROCD_BACKUP_DIR: dir, SPROCD_BACKUP_KEY: KEY, SPROCD_STORAGE_SLOTS: String(K) };
const nodes: SprocdNode[] = [];
let source: { node: SprocdNode; client: SprocdClient };
let target: { node: SprocdNode; client: SprocdClient };

beforeAll(async () => {
  source = await startInProcessNode(prefixes.source, env);
  target = await startInProcessNode(prefixes.target, env);
  nodes.push(source.node, target.node);
});

afterAll(async () => {
  await Promise.all(nodes.map((n) => n.stop()));
  for (const prefix of Object.values(prefixes)) {
    await deletePrefix(testClient(), prefix);
  }
  await closeTestClients();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Two names in different slots. */
function apart(): [string, string] {
  for (let i = 0; ; i++) {
    if (slotOf(`tx-a${i}`, K) !== slotOf(`tx-b${i}`, K)) {
      return [`tx-a${i}`, `tx-b${i}`];
    }
  }
}

describe('backup and restore with data slots', () => {
  it('back up every slot, a tx in flight whole, and restore each entry into its slot', async () => {
    const redis = testClient();
    const storage = source.node.session.storage;
    const names = Array.from({ length: 40 }, (_, i) => `e${i}`);
    for (const name of names) {
      await storage.use(name, (d) => {
        d.n = name;
      });
    }
    const layout = storageLayout(source.node.internals().keys, K);
    expect(new Set(names.map((n) => slotOf(n, K))).size).toBe(K);

    // A commit decided and applied in one of its two slots only: its committer is "still at it".
    const [a, b] = apart();
    const times = { leaseMs: 60_000, inboxTtlMs: 60_000 };
    const held = await lockAcquire(redis, layout, times, 'ghost.1', [a, b]);
    const decided = await lockCommit(redis, layout, times, 'ghost', [
      { name: a, lockValue: held.lockValue, op: 'set', json: '{"v":"a"}', riders: [] },
      { name: b, lockValue: held.lockValue, op: 'set', json: '{"v":"b"}', riders: [] },
    ]);
    const id = decided.tx as string;
    await storageApply(redis, layout.slots.slotFor(a), id, [[a, 's', '{"v":"a"}']]);
    expect(await storage.get(b)).toBeUndefined();

    const record = (await source.client.backup()) as unknown as BackupRecord;
    expect(record.status).toBe(0);
    const bytes = fs.readFileSync(record.file as string);
    const parsed = await parseBackup(bytes, { allowUnsigned: true });
    expect(parsed.entries.size).toBe(names.length + 2);
    for (const name of names) {
      expect(JSON.parse(parsed.entries.get(name) as string)).toEqual({ n: name });
    }
    // The tx is in the backup whole, though one of its slots did not have it yet.
    expect(parsed.entries.get(a)).toBe('{"v":"a"}');
    expect(parsed.entries.get(b)).toBe('{"v":"b"}');
    // The copies are gone.
    expect(await redis.keys(`{${prefixes.source}:s*:snap:*`)).toEqual([]);

    // The target has entries of its own, and a tx decided before the restore, applied after it.
    const targetStorage = target.node.session.storage;
    await targetStorage.use('old', (d) => {
      d.gone = true;
    });
    const targetLayout = storageLayout(target.node.internals().keys, K);
    const late = await lockAcquire(redis, targetLayout, times, 'late.1', ['e1']);
    const lateTx = await lockCommit(redis, targetLayout, times, 'late', [
      { name: 'e1', lockValue: late.lockValue, op: 'set', json: '{"late":true}', riders: [] },
    ]);

    const summary = await target.client.restore(bytes);
    expect(summary.entries).toBe(names.length + 2);
    expect(await targetStorage.get('old')).toBeUndefined();
    const restored = await targetStorage.snapshot();
    expect(Object.keys(restored).sort()).toEqual([...names, a, b].sort());
    for (const name of [...names, a, b]) {
      const slot = targetLayout.slots.slotFor(name);
      expect(await redis.hexists(slot.data, name), name).toBe(1);
    }
    for (const slot of targetLayout.slots.all()) {
      expect(await redis.exists(slot.versions)).toBe(0);
      expect(Number(await redis.get(slot.floor))).toBeGreaterThan(Number(lateTx.tx));
    }
    // The late apply of the tx decided before the restore writes nothing.
    const slotE1 = targetLayout.slots.slotFor('e1');
    expect(await storageApply(redis, slotE1, lateTx.tx as string, [['e1', 's', '{"late":true}']])).toBe(0);
    expect(await targetStorage.get('e1')).toEqual({ n: 'e1' });
    // Its locks were broken: the next use goes straight through and is applied.
    await targetStorage.use(['e1', a], (x, y) => {
      x.after = 1;
      y.after = 1;
    });
    expect(await targetStorage.get('e1')).toEqual({ n: 'e1', after: 1 });
    expect(await targetStorage.get(a)).toEqual({ v: 'a', after: 1 });

    // A backup right after: the txs from before the restore (finished, or in flight) stay out of it.
    const again = (await target.client.backup()) as unknown as BackupRecord;
    const reparsed = await parseBackup(fs.readFileSync(again.file as string), { allowUnsigned: true });
    expect(reparsed.entries.has('old')).toBe(false);
    expect(JSON.parse(reparsed.entries.get('e1') as string)).toEqual({ n: 'e1', after: 1 });
    expect(reparsed.entries.size).toBe(names.length + 2);
  });
});
