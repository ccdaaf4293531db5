/**
 * SPROCD_STORAGE_SLOTS > 1, piece by piece on a real Redis: the slot routing, the apply's version
 * check (a late or repeated apply writes nothing), the decide (lockCommit-n.lua in tx mode) and the
 * finish (lockFinish-n.lua), the recovery of a tx in doubt, and the stored K.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import {
  lockAcquire,
  lockCommit,
  lockFinish,
  lockRecheck,
  storageApply,
  type LockTimes,
} from '../../src/redis/scripts.js';
import { storageLayout } from '../../src/session/layout.js';
import { storageReport } from '../../src/session/lock-report.js';
import { TxRunner, type TxRecord } from '../../src/session/lock-tx.js';
import { slotOf, slotRouting } from '../../src/session/slots.js';
import { openTestSession } from '../session/helpers.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const prefixes: string[] = [];
const TIMES: LockTimes = { leaseMs: 5000, inboxTtlMs: 60_000 };

function fresh(k = 4) {
  const prefix = uniquePrefix('slots');
  prefixes.push(prefix);
  return { prefix, layout: storageLayout(createKeys(prefix), k) };
}

/** Two names in different slots of `k`. */
function apart(k: number): [string, string] {
  const first = 'alpha';
  for (let i = 0; ; i++) {
    const other = `beta${i}`;
    if (slotOf(other, k) !== slotOf(first, k)) {
      return [first, other];
    }
  }
}

afterAll(async () => {
  for (const prefix of prefixes) {
    await deletePrefix(testClient(), prefix);
  }
  await closeTestClients();
});

describe('slot routing', () => {
  it('is a fixed function of the name (FNV-1a of the UTF-8 bytes, mod K)', () => {
    // Fixed values: a change of the hash would hide every entry written before it.
    expect([slotOf('', 8), slotOf('a', 8), slotOf('foobar', 1000)]).toEqual([
      0x811c9dc5 % 8,
      0xe40c292c % 8,
      0xbf9cf968 % 1000,
    ]);
    expect(slotOf('a', 1)).toBe(0);
  });

  it('spreads names over every slot and groups them by slot', () => {
    const routing = slotRouting(createKeys('acme').storage, 4);
    const names = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const groups = routing.group(names, (n) => n);
    expect(groups.size).toBe(4);
    for (const [slot, list] of groups) {
      expect(slot.data).toBe(`{acme:s${slot.slot}}:data`);
      expect(slot.versions).toBe(`{acme:s${slot.slot}}:ver`);
      expect(list.every((n) => routing.slotFor(n) === slot)).toBe(true);
    }
    expect([...groups.values()].flat().sort()).toEqual([...names].sort());
  });
});

describe('apply (storageApply-2.lua)', () => {
  it('writes an entry only with a token above its version: a late or repeated apply is ignored', async () => {
    const redis = testClient();
    const { layout } = fresh();
    const slot = layout.slots.slotFor('x');
    expect(await storageApply(redis, slot, '10', [['x', 's', '{"v":10}']])).toBe(1);
    // The same tx again (holder and recovery both apply): nothing changes.
    expect(await storageApply(redis, slot, '10', [['x', 's', '{"v":10}']])).toBe(0);
    // A late apply of an older tx (a stalled holder): ignored.
    expect(await storageApply(redis, slot, '7', [['x', 's', '{"v":7}']])).toBe(0);
    expect(await redis.hget(slot.data, 'x')).toBe('{"v":10}');
    expect(await redis.hget(slot.versions, 'x')).toBe('10');
    // A delete keeps the version, so a late set cannot bring the entry back.
    expect(await storageApply(redis, slot, '12', [['x', 'd', '']])).toBe(1);
    expect(await storageApply(redis, slot, '11', [['x', 's', '{"v":11}']])).toBe(0);
    expect(await redis.hexists(slot.data, 'x')).toBe(0);
    expect(await redis.hget(slot.versions, 'x')).toBe('12');
  });
});

describe('decide and finish', () => {
  it('a decide writes a tx record and marks the locks; finish releases them and grants the next waiter', async () => {
    const redis = testClient();
    const { layout } = fresh();
    const [a, b] = apart(4);
    const held = await lockAcquire(redis, layout, TIMES, 'n1.1', [a, b]);
    expect(held.complete).toBe(true);
    // The lock scripts bring no values with data slots.
    expect(held.values).toEqual([undefined, undefined]);
    const waiting = await lockAcquire(redis, layout, TIMES, 'n2.1', [b]);
    expect(waiting.complete).toBe(false);

    const reply = await lockCommit(redis, layout, TIMES, 'n1', [
      { name: a, lockValue: held.lockValue, op: 'set', json: '{"v":1}', riders: [] },
      { name: b, lockValue: held.lockValue, op: 'keep', riders: [] },
    ]);
    expect(reply.ok).toBe(true);
    const id = reply.tx as string;
    expect(id).toMatch(/^\d+$/);
    // Decided, not applied, nothing released.
    expect(await redis.get(layout.lock(a))).toBe(`tx:${id}`);
    expect(await redis.get(layout.lock(b))).toBe(`tx:${id}`);
    expect(await redis.pttl(layout.lock(a))).toBe(-1);
    expect(await redis.hget(layout.slots.slotFor(a).data, a)).toBeNull();
    const record = JSON.parse((await redis.get(layout.tx(id))) as string) as TxRecord;
    expect(record).toEqual({ token: id, changes: [[a, 's', '{"v":1}']], names: [a, b] });
    // A waiter checking meanwhile waits for the tx lease.
    const check = await lockRecheck(redis, layout, TIMES, b, 'n2.1');
    expect(check.granted).toBe(false);
    expect(check.inDoubt).toBeUndefined();
    expect(check.pttl).toBeGreaterThan(0);

    await storageApply(redis, layout.slots.slotFor(a), id, record.changes);
    const done = await lockFinish(redis, layout, TIMES, 'n2', id, [a, b]);
    expect(done.finished).toBe(true);
    expect(done.grants).toHaveLength(1);
    expect(done.grants[0]?.startsWith('n2.1\n')).toBe(true);
    expect(await redis.exists(layout.lock(a), layout.tx(id), layout.txLease(id))).toBe(0);
    // The record is kept a while under its finished name, for a backup's snapshot to roll forward.
    expect(await redis.get(layout.txDone(id))).toBe(JSON.stringify(record));
    expect(await redis.pttl(layout.txDone(id))).toBeGreaterThan(0);
    expect(await redis.get(layout.lock(b))).toMatch(/^\d+:n2\.1$/);
    // A second finish (holder and recovery) changes nothing.
    expect((await lockFinish(redis, layout, TIMES, 'n2', id, [a, b])).finished).toBe(false);
    expect(await redis.get(layout.lock(b))).toMatch(/^\d+:n2\.1$/);
  });

  it('a decide that finds a lock lost writes no tx record and releases as without slots', async () => {
    const redis = testClient();
    const { layout } = fresh();
    const [a, b] = apart(4);
    const held = await lockAcquire(redis, layout, TIMES, 'n1.1', [a, b]);
    await redis.set(layout.lock(b), '999:n9.1', 'PX', 5000); // b's lease ran out; another took it
    const reply = await lockCommit(redis, layout, TIMES, 'n1', [
      { name: a, lockValue: held.lockValue, op: 'set', json: '{"v":1}', riders: [] },
      { name: b, lockValue: held.lockValue, op: 'set', json: '{"v":1}', riders: [] },
    ]);
    expect(reply).toMatchObject({ ok: false, lost: [b] });
    expect(reply.tx).toBeUndefined();
    expect(await redis.keys(`${layout.tx('')}*`)).toEqual([]);
    expect(await redis.exists(layout.lock(a))).toBe(0);
    for (const slot of layout.slots.all()) {
      expect(await redis.exists(slot.data)).toBe(0);
    }
  });

  it('a tx whose lease ran out is in doubt: a waiter re-applies it from its record and finishes it', async () => {
    const redis = testClient();
    const { layout } = fresh();
    const [a, b] = apart(4);
    const held = await lockAcquire(redis, layout, TIMES, 'n1.1', [a, b]);
    await lockAcquire(redis, layout, TIMES, 'n2.1', [a]);
    const reply = await lockCommit(redis, layout, TIMES, 'n1', [
      { name: a, lockValue: held.lockValue, op: 'set', json: '{"v":"a"}', riders: [] },
      { name: b, lockValue: held.lockValue, op: 'set', json: '{"v":"b"}', riders: [] },
    ]);
    const id = reply.tx as string;
    // The holder applied one slot, then died: its tx lease runs out.
    await storageApply(redis, layout.slots.slotFor(a), id, [[a, 's', '{"v":"a"}']]);
    await redis.del(layout.txLease(id));
    // lockAcquire on a lock in doubt queues with no lease left, so the waiter checks at once.
    const late = await lockAcquire(redis, layout, TIMES, 'n3.1', [b]);
    expect(late).toMatchObject({ complete: false, pttl: 0 });
    const check = await lockRecheck(redis, layout, TIMES, a, 'n2.1');
    expect(check.inDoubt).toBe(id);

    await new TxRunner({ redis, layout, times: TIMES }).recover(id, a);
    expect(await redis.hget(layout.slots.slotFor(a).data, a)).toBe('{"v":"a"}');
    expect(await redis.hget(layout.slots.slotFor(b).data, b)).toBe('{"v":"b"}');
    expect(await redis.exists(layout.tx(id))).toBe(0);
    // Both waiters got their lock (grants to their inboxes).
    expect(await redis.get(layout.lock(a))).toMatch(/:n2\.1$/);
    expect(await redis.get(layout.lock(b))).toMatch(/:n3\.1$/);
    expect(await redis.llen(layout.inbox('n2'))).toBe(1);
    expect(await redis.llen(layout.inbox('n3'))).toBe(1);
  });
});

describe('reads outside use', () => {
  it('get, keys, snapshot and the console listing (page by page, slot after slot) read every slot', async () => {
    const { prefix } = fresh();
    const node = await openTestSession(prefix, { storageSlots: 4 });
    try {
      const storage = node.session.storage;
      const names = Array.from({ length: 30 }, (_, i) => `r${String(i).padStart(2, '0')}`);
      await storage.use(names.slice(0, 15), (...drafts) => drafts.forEach((d, i) => (d.i = i)));
      await storage.use(names.slice(15), (...drafts) => drafts.forEach((d, i) => (d.i = i + 15)));
      expect(new Set(names.map((n) => slotOf(n, 4))).size).toBe(4);
      expect(await storage.get('r20')).toEqual({ i: 20 });
      expect(await storage.keys()).toEqual(names);
      expect(Object.keys(await storage.snapshot())).toEqual(names);
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await storageReport(node.command, node.layout, { limit: 5, cursor });
        listed.push(...page.items.map((item) => item.key));
        cursor = page.nextCursor;
        pages++;
      } while (cursor !== undefined);
      expect(pages).toBeGreaterThan(1);
      expect([...new Set(listed)].sort()).toEqual(names);
    } finally {
      await node.close();
    }
  });
});

describe('a restore swapping the slots in', () => {
  it('refuses every decide meanwhile (LOCK_LOST, nothing written, the locks released)', async () => {
    const redis = testClient();
    const { layout } = fresh();
    const [a, b] = apart(4);
    const held = await lockAcquire(redis, layout, TIMES, 'n1.1', [a, b]);
    await redis.set(layout.restoring, '1', 'PX', 5000);
    const reply = await lockCommit(redis, layout, TIMES, 'n1', [
      { name: a, lockValue: held.lockValue, op: 'set', json: '{"v":1}', riders: [] },
      { name: b, lockValue: held.lockValue, op: 'keep', riders: [] },
    ]);
    expect(reply).toMatchObject({ ok: false, fenced: false, lost: [a, b] });
    expect(reply.tx).toBeUndefined();
    expect(await redis.exists(layout.lock(a), layout.lock(b))).toBe(0);
    expect(await redis.exists(layout.slots.slotFor(a).data)).toBe(0);
  });
});

describe('the commit token', () => {
  it('stays above the versions read under the locks when the fence counter went back (a fail-over)', async () => {
    const { prefix, layout } = fresh();
    const node = await openTestSession(prefix, { storageSlots: 4 });
    try {
      const storage = node.session.storage;
      for (let i = 0; i < 5; i++) {
        await storage.use('x', (d) => {
          d.n = i;
        });
      }
      const redis = testClient();
      const version = Number(await redis.hget(layout.slots.slotFor('x').versions, 'x'));
      expect(version).toBeGreaterThan(5);
      // The {prefix} master's replacement lacked the last writes: the counter is back at 1.
      await redis.set(layout.fence, '1');
      await storage.use('x', (d) => {
        d.n = 'after';
      });
      expect(await storage.get('x')).toEqual({ n: 'after' });
      expect(Number(await redis.hget(layout.slots.slotFor('x').versions, 'x'))).toBeGreaterThan(version);
    } finally {
      await node.close();
    }
  });
});

describe('the stored K', () => {
  it('is stored at the first start with K > 1; a node with another K refuses to start', async () => {
    const { prefix, layout } = fresh();
    const first = await openTestSession(prefix, { storageSlots: 4 });
    try {
      expect(await testClient().get(layout.slotCount)).toBe('4');
      await expect(openTestSession(prefix, { storageSlots: 1 })).rejects.toMatchObject({
        code: 'STORAGE_SLOTS_MISMATCH',
        details: { configured: 1, stored: 4 },
      });
      await expect(openTestSession(prefix, { storageSlots: 8 })).rejects.toMatchObject({
        code: 'STORAGE_SLOTS_MISMATCH',
      });
    } finally {
      await first.close();
    }
  });

  it('K = 1 stores nothing, and a storage with entries in the one hash refuses K > 1', async () => {
    const { prefix, layout } = fresh(1);
    const node = await openTestSession(prefix, { storageSlots: 1 });
    try {
      await node.session.storage.use('x', (d) => {
        d.v = 1;
      });
      expect(await testClient().exists(layout.slotCount)).toBe(0);
      await expect(openTestSession(prefix, { storageSlots: 4 })).rejects.toMatchObject({
        code: 'STORAGE_SLOTS_MISMATCH',
        details: { configured: 4, stored: 1 },
      });
    } finally {
      await node.close();
    }
  });
});
