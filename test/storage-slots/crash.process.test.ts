/**
 * A multi-slot commit whose holder dies between its decide and its apply (SPROCD_STORAGE_SLOTS = 4):
 * a real node process (test/session/fixtures/agent.ts) SIGKILLs itself right after the decide. The
 * `use` over keys in different slots is then fully visible to the next holders, and the waiters
 * queued behind the dead holder go on. And a holder stopped (SIGSTOP) there: a recovery finishes its
 * commit, newer commits follow, and its applies when it wakes write nothing.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { storageLayout } from '../../src/session/layout.js';
import { slotOf } from '../../src/session/slots.js';
import { killAgent, openTestSession, spawnAgent, type Agent, type TestSession } from '../session/helpers.js';
import { closeTestClients, deletePrefix, testClient, testRedisUrl, uniquePrefix } from '../support/redis.js';

const K = 4;
const LEASE_MS = 500;
const prefix = uniquePrefix('slotcrash');
const layout = storageLayout(createKeys(prefix), K);
let crasher: Agent | undefined;
let staller: Agent | undefined;
let local: TestSession | undefined;
let other: TestSession | undefined;

/** Three names in three different slots. */
function namesApart(): string[] {
  const names: string[] = [];
  const slots = new Set<number>();
  for (let i = 0; names.length < 3; i++) {
    const name = `acct${i}`;
    if (!slots.has(slotOf(name, K))) {
      slots.add(slotOf(name, K));
      names.push(name);
    }
  }
  return names.sort();
}

beforeAll(async () => {
  [crasher, staller] = await Promise.all([spawnAgent(), spawnAgent()]);
}, 60_000);

afterAll(async () => {
  for (const agent of [crasher, staller]) {
    if (agent !== undefined) {
      await killAgent(agent);
    }
  }
  await local?.close();
  await other?.close();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

describe('a holder killed between decide and apply', () => {
  it('leaves a use over keys in different slots fully visible once recovered, and its waiters go on', async () => {
    const agent = crasher as Agent;
    const names = namesApart();
    const options = { storageSlots: K, lockLeaseMs: LEASE_MS, lockTimeoutMs: 20_000 };
    local = await openTestSession(prefix, options);
    other = await openTestSession(prefix, options);
    await local.session.storage.use(names, (...drafts) => {
      for (const d of drafts) {
        d.value = 'before';
      }
    });
    await agent.call({
      cmd: 'open',
      url: testRedisUrl(),
      prefix,
      leaseMs: LEASE_MS,
      slots: K,
      crashAfterDecide: true,
    });

    // The agent takes every key, decides its commit and dies before applying it.
    agent.send({ cmd: 'setMany', keys: names, value: 'after' });
    expect(await agent.exited).toBe('SIGKILL');
    const redis = testClient();
    const txLocks = await Promise.all(names.map((n) => redis.get(layout.lock(n))));
    expect(new Set(txLocks).size).toBe(1);
    expect(txLocks[0]).toMatch(/^tx:\d+$/);
    // Not applied anywhere yet.
    expect(await local.session.storage.get(names[0] as string)).toEqual({ value: 'before' });

    // Waiters from two nodes: one for a single key, one for all of them. The first to find the tx in
    // doubt (once its lease ran out) applies it from its record and finishes it.
    const seen: unknown[][] = [];
    const single = other.session.storage.use(names[1] as string, (d) => {
      seen.push([d.value]);
      d.value = 'single';
    });
    const all = local.session.storage.use(names, (...drafts) => {
      seen.push(drafts.map((d) => d.value));
    });
    await Promise.all([single, all]);
    // Whatever order they got their locks in, each saw the dead holder's commit in full.
    const allSeen = seen.find((s) => s.length === names.length) as unknown[];
    expect(allSeen.filter((v) => v === 'after' || v === 'single')).toHaveLength(names.length);
    expect(seen.find((s) => s.length === 1)).toEqual(['after']);
    expect(await local.session.storage.get(names[0] as string)).toEqual({ value: 'after' });
    expect(await local.session.storage.get(names[2] as string)).toEqual({ value: 'after' });
    expect(await local.session.storage.get(names[1] as string)).toEqual({ value: 'single' });
    expect(await redis.keys(`${layout.tx('')}*`)).toEqual([]);
    // The locks are free again and the next use goes straight through.
    await local.session.storage.use(names, (...drafts) => {
      for (const d of drafts) {
        d.value = 'next';
      }
    });
    expect(await other.session.storage.snapshot()).toEqual(
      Object.fromEntries(names.map((n) => [n, { value: 'next' }])),
    );
  });

  it('a holder stalled after its decide is recovered; its late applies overwrite nothing newer', async () => {
    const agent = staller as Agent;
    const names = namesApart().map((n) => `stall-${n}`);
    expect(new Set(names.map((n) => slotOf(n, K))).size).toBeGreaterThan(1);
    const storage = (local as TestSession).session.storage;
    await agent.call({
      cmd: 'open',
      url: testRedisUrl(),
      prefix,
      leaseMs: LEASE_MS,
      slots: K,
      stopAfterDecide: true,
    });
    const id = agent.send({ cmd: 'setMany', keys: names, value: 'stalled' });
    const redis = testClient();
    // Decided (the locks carry its tx), then stopped.
    await vi.waitFor(
      async () => {
        expect(await redis.get(layout.lock(names[0] as string))).toMatch(/^tx:\d+$/);
      },
      { timeout: 10_000, interval: 20 },
    );
    // A use of the same keys waits for the tx lease, recovers the commit and sees it whole.
    await storage.use(names, (...drafts) => {
      expect(drafts.map((d) => d.value)).toEqual(names.map(() => 'stalled'));
      for (const d of drafts) {
        d.value = 'newer';
      }
    });
    agent.proc.kill('SIGCONT');
    // Its use was committed (by the recovery): it succeeds, and writes nothing over the newer commit.
    const reply = await agent.waitFor((m) => m.id === id, 20_000);
    expect(reply).toMatchObject({ ok: true });
    expect(await storage.snapshot()).toMatchObject(
      Object.fromEntries(names.map((n) => [n, { value: 'newer' }])),
    );
    await storage.use(names, (...drafts) => {
      expect(drafts.map((d) => d.value)).toEqual(names.map(() => 'newer'));
    });
  });
});
