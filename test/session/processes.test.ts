/**
 * The session across real node processes (fixtures/agent.ts): one identity from three processes
 * starting at once, exact counters under contention from two processes, a SIGKILLed holder, and a
 * SIGSTOPped holder that cannot commit after its lease ran out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKeys } from '../../src/redis/keys.js';
import { closeTestClients, deletePrefix, testClient, testRedisUrl, uniquePrefix } from '../support/redis.js';
import { killAgent, openTestSession, sleep, spawnAgent, type Agent, type TestSession } from './helpers.js';

const prefix = uniquePrefix('proc');
const LEASE_MS = 500;
let agents: Agent[] = [];
let local: TestSession | undefined;

beforeAll(async () => {
  agents = await Promise.all([spawnAgent(), spawnAgent(), spawnAgent()]);
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((agent) => killAgent(agent)));
  await local?.close();
  await deletePrefix(testClient(), prefix);
  await closeTestClients();
});

function agent(i: number): Agent {
  const a = agents[i];
  if (a === undefined) {
    throw new Error(`no agent ${i}`);
  }
  return a;
}

describe('across processes', () => {
  it('three processes opening the session at once on an empty Redis prefix get one id', async () => {
    const redis = testClient();
    expect(await redis.exists(createKeys(prefix).session)).toBe(0);
    const replies = await Promise.all(
      agents.map((a) => a.call({ cmd: 'open', url: testRedisUrl(), prefix, leaseMs: LEASE_MS })),
    );
    const ids = new Set(replies.map((r) => r.sessionId));
    expect(ids.size).toBe(1);
    expect(await redis.hget(createKeys(prefix).session, 'id')).toBe([...ids][0]);
    local = await openTestSession(prefix, { lockLeaseMs: LEASE_MS, lockTimeoutMs: 20_000 });
    expect(local.session.id).toBe([...ids][0]);
  });

  it('2 processes x 16 concurrent x 5,000 increments: one counter, 20 keys, and [a, b] in both orders are exact', async () => {
    const storage = local!.session.storage;
    const total = 5000;
    for (const mode of ['one', 'many', 'pair']) {
      await Promise.all(
        [agent(0), agent(1)].map((a) =>
          a.call({ cmd: 'hammer', mode, n: total / 2, concurrency: 16 }, 60_000),
        ),
      );
    }
    expect(await storage.get('counter')).toEqual({ n: total });
    let sum = 0;
    for (let k = 0; k < 20; k++) {
      const entry = await storage.get<{ n: number }>(`k${k}`);
      expect(entry).toEqual({ n: total / 20 });
      sum += entry?.n ?? 0;
    }
    expect(sum).toBe(total);
    expect(await storage.get('pa')).toEqual({ n: total });
    expect(await storage.get('pb')).toEqual({ n: total });
  }, 60_000);

  it('SIGKILL of a process holding a lock: the others go on after the lease, its change is absent', async () => {
    const storage = local!.session.storage;
    await storage.use('victim', (d) => {
      d.value = 'before';
    });
    const victim = agent(2);
    const id = victim.send({ cmd: 'hold', key: 'victim', value: 'uncommitted', holdMs: 60_000 });
    await victim.waitFor((m) => m.event === 'holding' && m.for === id);
    // A waiter queued behind the holder, before it dies.
    let waited = 0;
    const started = Date.now();
    const next = storage.use('victim', (d) => {
      waited = Date.now() - started;
      expect(d.value).toBe('before');
      d.value = 'after';
    });
    await expect
      .poll(() => testClient().llen(`{${prefix}}:storage:queue:victim`), { timeout: 5000, interval: 5 })
      .toBe(1);
    await killAgent(victim, 'SIGKILL');
    await next;
    expect(waited).toBeLessThan(LEASE_MS * 3 + 1000);
    expect(await storage.get('victim')).toEqual({ value: 'after' });
  });

  it('a process paused (SIGSTOP) past its lease cannot commit afterwards: LOCK_LOST, nothing written', async () => {
    const storage = local!.session.storage;
    await storage.use('paused', (d) => {
      d.value = 'before';
    });
    const sleeper = agent(1);
    const id = sleeper.send({ cmd: 'hold', key: 'paused', value: 'stale', holdMs: 300 });
    await sleeper.waitFor((m) => m.event === 'holding' && m.for === id);
    sleeper.proc.kill('SIGSTOP');
    try {
      await storage.use('paused', (d) => {
        expect(d.value).toBe('before');
        d.value = 'fresh';
      });
      // Let the paused holder's 300 ms have passed in wall time before it wakes up.
      await sleep(100);
    } finally {
      sleeper.proc.kill('SIGCONT');
    }
    const reply = await sleeper.waitFor((m) => m.id === id);
    expect(reply.code).toBe('LOCK_LOST');
    expect(await storage.get('paused')).toEqual({ value: 'fresh' });
    // and the woken process works normally afterwards
    expect((await sleeper.call({ cmd: 'set', key: 'paused', value: 'later' })).ok).toBe(true);
    expect(await storage.get('paused')).toEqual({ value: 'later' });
  });
});
