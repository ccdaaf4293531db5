/** The audit trail in Redis: appended, bounded, read back newest first page by page, filtered. */
import { afterAll, describe, expect, it } from 'vitest';
import { AuditTrail, type AuditRecord } from '../../src/auth/audit.js';
import { createKeys } from '../../src/redis/keys.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';

const redis = testClient();
const prefixes: string[] = [];

function trail(max: number): AuditTrail {
  const prefix = uniquePrefix('audit');
  prefixes.push(prefix);
  return new AuditTrail(redis, createKeys(prefix).audit, max);
}

const record = (i: number, over: Partial<AuditRecord> = {}): AuditRecord => ({
  caller: i % 2 === 0 ? 'ci' : 'ops',
  action: i % 3 === 0 ? 'abort' : 'execute',
  status: 202,
  node: 'n1',
  details: { execution: i },
  ...over,
});

afterAll(async () => {
  for (const prefix of prefixes) {
    await deletePrefix(redis, prefix);
  }
  await closeTestClients();
});

describe('AuditTrail', () => {
  it('keeps the records it is given, newest first, with their time', async () => {
    const t = trail(100);
    const before = Date.now();
    await t.record(record(1, { ip: '127.0.0.1' }));
    await t.record(record(2));
    const page = await t.page();
    expect(page.nextCursor).toBeUndefined();
    expect(page.items.map((e) => e.details?.execution)).toEqual([2, 1]);
    expect(page.items[1]).toMatchObject({
      caller: 'ops',
      action: 'execute',
      status: 202,
      node: 'n1',
      ip: '127.0.0.1',
    });
    expect(Date.parse(page.items[0]!.at)).toBeGreaterThanOrEqual(before - 1000);
    expect(page.items[0]!.id).toMatch(/^\d+-\d+$/);
  });

  it('stays bounded: the oldest entries go beyond max', async () => {
    const t = trail(5);
    for (let i = 1; i <= 12; i++) {
      await t.record(record(i));
    }
    expect(await t.length()).toBe(5);
    const page = await t.page({ limit: 100 });
    expect(page.items.map((e) => e.details?.execution)).toEqual([12, 11, 10, 9, 8]);
  });

  it('writes records given together (one round trip per turn), each resolving with its own id, in order', async () => {
    const t = trail(1000);
    const ids = await Promise.all(Array.from({ length: 50 }, (_, i) => t.record(record(i))));
    expect(new Set(ids).size).toBe(50);
    const page = await t.page({ limit: 100 });
    expect(page.items.map((e) => e.id)).toEqual([...ids].reverse());
    expect(page.items.map((e) => e.details?.execution)).toEqual(Array.from({ length: 50 }, (_, i) => 49 - i));
    // Records that come while a write is in flight go in the next one.
    const late = await Promise.all([
      t.record(record(100)),
      new Promise((r) => setImmediate(r)).then(() => t.record(record(101))),
    ]);
    expect((await t.page({ limit: 2 })).items.map((e) => e.id)).toEqual([...late].reverse());
  });

  it('stays bounded when one write carries more records than max', async () => {
    const t = trail(5);
    const ids = await Promise.all(Array.from({ length: 12 }, (_, i) => t.record(record(i + 1))));
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(await t.length()).toBe(5);
    const page = await t.page({ limit: 100 });
    expect(page.items.map((e) => e.details?.execution)).toEqual([12, 11, 10, 9, 8]);
  });

  it('records nothing with max 0', async () => {
    const t = trail(0);
    expect(await t.record(record(1))).toBeUndefined();
    expect(await t.length()).toBe(0);
  });

  it('pages back with nextCursor until the oldest entry', async () => {
    const t = trail(1000);
    for (let i = 1; i <= 25; i++) {
      await t.record(record(i));
    }
    const seen: unknown[] = [];
    let before: string | undefined;
    let pages = 0;
    do {
      const page = await t.page({ limit: 10, before });
      seen.push(...page.items.map((e) => e.details?.execution));
      before = page.nextCursor;
      pages++;
    } while (before !== undefined);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => 25 - i));
    // Exactly one page's worth: no empty page after it.
    const t2 = trail(1000);
    for (let i = 1; i <= 10; i++) {
      await t2.record(record(i));
    }
    expect((await t2.page({ limit: 10 })).nextCursor).toBeUndefined();
  });

  it('filters by caller and action, across more entries than one read', async () => {
    const t = trail(5000);
    const pipeline = redis.pipeline();
    for (let i = 1; i <= 600; i++) {
      pipeline.xadd(
        createKeys(prefixes.at(-1)!).audit,
        '*',
        'e',
        JSON.stringify(record(i, i === 3 ? { caller: 'rare' } : {})),
      );
    }
    await pipeline.exec();
    expect((await t.page({ caller: 'rare' })).items.map((e) => e.details?.execution)).toEqual([3]);
    const aborts = await t.page({ caller: 'ci', action: 'abort', limit: 20 });
    expect(aborts.items).toHaveLength(20);
    expect(aborts.items.every((e) => e.caller === 'ci' && e.action === 'abort')).toBe(true);
    expect(aborts.items.map((e) => e.details?.execution)).toEqual(
      Array.from({ length: 20 }, (_, i) => 600 - 6 * i),
    );
    const next = await t.page({ caller: 'ci', action: 'abort', limit: 200, before: aborts.nextCursor });
    expect(next.items.map((e) => e.details?.execution)).toEqual(
      Array.from({ length: 80 }, (_, i) => 480 - 6 * i),
    );
    expect(next.nextCursor).toBeUndefined();
  });

  it('refuses a cursor it did not make', async () => {
    await expect(trail(10).page({ before: 'abc' })).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
