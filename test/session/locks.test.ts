/**
 * Lock semantics between two nodes in this process (two open sessions: each has its own node id,
 * heartbeat and blocking connection, exactly as two processes would): exclusion, FIFO hand-off,
 * time-outs, fencing, several keys in any order, dead holders and dead waiters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/index.js';
import { lockCancel } from '../../src/redis/scripts.js';
import type { Draft } from '../../src/types.js';
import { closeTestClients, deletePrefix, testClient, uniquePrefix } from '../support/redis.js';
import { openTestSession, rejection, sleep, type TestSession } from './helpers.js';

const prefix = uniquePrefix('lock');
const layout = storageLayout(createKeys(prefix));
let a: TestSession;
let b: TestSession;

beforeAll(async () => {
  [a, b] = await Promise.all([openTestSession(prefix), openTestSession(prefix)]);
});

afterAll(async () => {
  await Promise.all([a.close(), b.close()]);
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

/** Holds `key` on `node` until the returned release() is called. */
async function hold(node: TestSession, key: string | string[]) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let entered!: () => void;
  const inside = new Promise<void>((r) => (entered = r));
  const done = node.session.storage.use(typeof key === 'string' ? [key] : key, async () => {
    entered();
    await released;
  });
  await inside;
  return { release, done };
}

const queueLength = (key: string) => testClient().llen(layout.queue(key));

describe('exclusion', () => {
  it('two nodes x 16 concurrent callers never overlap and lose no update', async () => {
    let inside = 0;
    let maxInside = 0;
    const perNode = 16;
    const rounds = 25;
    const caller = (node: TestSession) => async () => {
      for (let i = 0; i < rounds; i++) {
        await node.session.storage.use('excl', async (d) => {
          inside++;
          maxInside = Math.max(maxInside, inside);
          const n = (d.n as number | undefined) ?? 0;
          await new Promise((r) => setImmediate(r));
          d.n = n + 1;
          inside--;
        });
      }
    };
    await Promise.all([
      ...Array.from({ length: perNode }, caller(a)),
      ...Array.from({ length: perNode }, caller(b)),
    ]);
    expect(maxInside).toBe(1);
    expect(await a.session.storage.get('excl')).toEqual({ n: 2 * perNode * rounds });
  });

  it('reads need no lock: get answers while another node holds the entry', async () => {
    await a.session.storage.use('readable', (d) => {
      d.v = 1;
    });
    const h = await hold(a, 'readable');
    const started = Date.now();
    expect(await b.session.storage.get('readable')).toEqual({ v: 1 });
    expect(Date.now() - started).toBeLessThan(500);
    h.release();
    await h.done;
  });
});

describe('waiting', () => {
  it('wakes waiters in the order they queued, across nodes', async () => {
    const h = await hold(a, 'fifo');
    const order: number[] = [];
    const waiters: Promise<void>[] = [];
    for (let i = 1; i <= 6; i++) {
      const node = i % 2 === 1 ? b : a;
      waiters.push(
        node.session.storage.use('fifo', (d) => {
          order.push(i);
          d.last = i;
        }),
      );
      await expect
        .poll(() => queueLength('fifo'), { timeout: 5000, interval: 5, message: `waiter ${i} queued` })
        .toBe(i);
    }
    h.release();
    await Promise.all([h.done, ...waiters]);
    expect(order).toEqual([1, 2, 3, 4, 5, 6]);
    expect(await a.session.storage.get('fifo')).toEqual({ last: 6 });
  });

  it('a wait longer than the time-out ends with LOCK_TIMEOUT naming the key, and leaves the queue', async () => {
    const impatient = await openTestSession(prefix, { lockTimeoutMs: 300 });
    try {
      const h = await hold(a, 'slow');
      const started = Date.now();
      const err = await rejection(impatient.session.storage.use('slow', () => undefined));
      const waited = Date.now() - started;
      expect(err.code).toBe('LOCK_TIMEOUT');
      expect(err.message).toContain('"slow"');
      expect(err.details).toEqual({ key: 'slow', timeoutMs: 300 });
      expect(waited).toBeGreaterThanOrEqual(280);
      expect(waited).toBeLessThan(3000);
      expect(await queueLength('slow')).toBe(0);
      h.release();
      await h.done;
      // nothing stuck: the lock is free at once
      await impatient.session.storage.use('slow', (d) => {
        d.after = true;
      });
      expect(await a.session.storage.get('slow')).toEqual({ after: true });
    } finally {
      await impatient.close();
    }
  });

  it('a multi-key use that times out releases the keys it already took', async () => {
    const impatient = await openTestSession(prefix, { lockTimeoutMs: 200 });
    try {
      const h = await hold(a, 'mk-z');
      const err = await rejection(impatient.session.storage.use(['mk-a', 'mk-z'], () => undefined));
      expect(err.code).toBe('LOCK_TIMEOUT');
      expect(err.message).toContain('"mk-z"');
      // mk-a was taken (sorted first) and must be free again
      const started = Date.now();
      await b.session.storage.use('mk-a', (d) => {
        d.free = true;
      });
      expect(Date.now() - started).toBeLessThan(500);
      h.release();
      await h.done;
    } finally {
      await impatient.close();
    }
  });

  it('close() ends waiting uses with SESSION_CLOSED and takes them out of the queue', async () => {
    const leaving = await openTestSession(prefix);
    const h = await hold(a, 'closing');
    const waiting = rejection(leaving.session.storage.use('closing', () => undefined));
    await expect.poll(() => queueLength('closing'), { timeout: 5000, interval: 5 }).toBe(1);
    const started = Date.now();
    await leaving.close();
    expect(Date.now() - started).toBeLessThan(500);
    expect((await waiting).code).toBe('SESSION_CLOSED');
    expect(await queueLength('closing')).toBe(0);
    h.release();
    await h.done;
  });
});

describe('several keys', () => {
  it('use([x, y]) and use([y, x]) from two nodes never deadlock and lose nothing', async () => {
    const rounds = 40;
    const run = (node: TestSession, keys: string[]) => async () => {
      for (let i = 0; i < rounds; i++) {
        await node.session.storage.use(keys, async (first, second) => {
          const f = first as Draft;
          const s = second as Draft;
          f.n = ((f.n as number | undefined) ?? 0) + 1;
          await new Promise((r) => setImmediate(r));
          s.n = ((s.n as number | undefined) ?? 0) + 1;
        });
      }
    };
    await Promise.all([
      ...Array.from({ length: 4 }, run(a, ['px', 'py'])),
      ...Array.from({ length: 4 }, run(b, ['py', 'px'])),
    ]);
    expect(await a.session.storage.get('px')).toEqual({ n: 8 * rounds });
    expect(await a.session.storage.get('py')).toEqual({ n: 8 * rounds });
  });

  it('a use waiting for its second key holds the first, in key order', async () => {
    const h = await hold(a, 'k2');
    const both = b.session.storage.use(['k2', 'k1'], (d2, d1) => {
      d1.by = 'both';
      d2.by = 'both';
    });
    await expect.poll(() => queueLength('k2'), { timeout: 5000, interval: 5 }).toBe(1);
    const order: string[] = [];
    const onlyK1 = a.session.storage.use('k1', (d) => {
      order.push(`k1 saw ${String(d.by)}`);
    });
    await expect.poll(() => queueLength('k1'), { timeout: 5000, interval: 5 }).toBe(1);
    h.release();
    await Promise.all([h.done, both, onlyK1]);
    expect(order).toEqual(['k1 saw both']);
  });
});

describe('leases and fencing', () => {
  it('a holder whose lease ran out cannot commit (LOCK_LOST) and writes nothing; the next holder goes on', async () => {
    let renew = true;
    const paused = await openTestSession(prefix, {
      lockLeaseMs: 200,
      testHooks: { skipLockRenewal: () => !renew },
    });
    try {
      await a.session.storage.use('fenced', (d) => {
        d.v = 'initial';
      });
      let entered!: () => void;
      const inside = new Promise<void>((r) => (entered = r));
      renew = false;
      const stale = paused.session.storage.use('fenced', async (d) => {
        d.v = 'stale';
        entered();
        await sleep(600);
      });
      await inside;
      const started = Date.now();
      await b.session.storage.use('fenced', (d) => {
        expect(d.v).toBe('initial');
        d.v = 'fresh';
      });
      // b got the lock once the 200 ms lease ran out, long before the stale holder's 600 ms
      expect(Date.now() - started).toBeLessThan(550);
      const err = await rejection(stale);
      expect(err.code).toBe('LOCK_LOST');
      expect(err.message).toContain('"fenced"');
      expect(await a.session.storage.get('fenced')).toEqual({ v: 'fresh' });
    } finally {
      renew = true;
      await paused.close();
    }
  });

  it('a lock left by a dead holder frees itself after its lease, and dead waiters are skipped', async () => {
    const redis = testClient();
    // A holder that died: its lock, with 300 ms of lease left, and no alive key for its node.
    await redis.set(layout.lock('orphan'), '1:deadnode.1', 'PX', 300);
    // And a waiter of that dead node, queued first.
    await redis.rpush(layout.queue('orphan'), 'deadnode.2');
    const started = Date.now();
    await b.session.storage.use('orphan', (d) => {
      d.v = 1;
    });
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(250);
    expect(waited).toBeLessThan(1500);
    expect(await redis.llen(layout.queue('orphan'))).toBe(0);
    expect(await a.session.storage.get('orphan')).toEqual({ v: 1 });
  });

  it('live holders keep their lock past the lease by renewing it', async () => {
    const quick = await openTestSession(prefix, { lockLeaseMs: 150 });
    try {
      const waiterStarted = { at: 0 };
      const holder = quick.session.storage.use('renewed', async (d) => {
        waiterStarted.at = Date.now();
        await sleep(500);
        d.by = 'holder';
      });
      await expect.poll(() => waiterStarted.at, { timeout: 5000, interval: 5 }).toBeGreaterThan(0);
      await b.session.storage.use('renewed', (d) => {
        expect(d.by).toBe('holder');
        d.by = 'waiter';
      });
      await holder;
      expect(Date.now() - waiterStarted.at).toBeGreaterThanOrEqual(480);
      expect(await a.session.storage.get('renewed')).toEqual({ by: 'waiter' });
    } finally {
      await quick.close();
    }
  });
});

describe('hand-off corner cases', () => {
  it('a grant whose waiter is gone is passed on at once to the next in line', async () => {
    const redis = testClient();
    const before = new Set(await redis.keys(`${layout.prefix}:alive:*`));
    const x = await openTestSession(prefix);
    try {
      const xAlive = (await redis.keys(`${layout.prefix}:alive:*`)).find((k) => !before.has(k));
      const xNode = xAlive?.split(':').pop();
      expect(xNode).toMatch(/^[0-9a-f]{16}$/);
      const h = await hold(a, 'handon');
      // A waiter of node x that x no longer knows (as after a give-up racing its grant) ...
      await redis.rpush(layout.queue('handon'), `${xNode}.999999`);
      // ... queued before a real waiter on b.
      let wokenAt = 0;
      const next = b.session.storage.use('handon', (d) => {
        wokenAt = Date.now();
        d.ok = true;
      });
      await expect.poll(() => queueLength('handon'), { timeout: 5000, interval: 5 }).toBe(2);
      const releasedAt = Date.now();
      h.release();
      await Promise.all([h.done, next]);
      // far less than the 1000 ms lease the unknown waiter's lock would otherwise have kept it
      expect(wokenAt - releasedAt).toBeLessThan(500);
    } finally {
      await x.close();
    }
  });

  it('lockCancel-4.lua: a waiter granted the lock while giving up hands it straight on', async () => {
    const redis = testClient();
    const name = 'cancel-race';
    await redis.set(layout.lock(name), '41:gone.1', 'PX', 5000);
    await redis.rpush(layout.queue(name), 'next.1');
    await redis.set(layout.alive('next'), '1', 'PX', 5000);
    const cancel = (waiter: string) =>
      lockCancel(redis, layout, { leaseMs: 5000, inboxTtlMs: 60_000 }, name, waiter);
    expect(await cancel('gone.1')).toBe('released');
    expect(await redis.get(layout.lock(name))).toMatch(/^\d+:next\.1$/);
    const message = await redis.lpop(layout.inbox('next'));
    expect(message?.split('\n').slice(0, 3)).toEqual([
      'next.1',
      await redis.get(layout.lock(name)),
      JSON.stringify(name),
    ]);
    // not queued, not holding: nothing to do
    expect(await cancel('other.1')).toBe('none');
    await redis.rpush(layout.queue(name), 'queued.1');
    expect(await cancel('queued.1')).toBe('dequeued');
    expect(await redis.llen(layout.queue(name))).toBe(0);
    await redis.del(layout.lock(name), layout.alive('next'));
  });
});
