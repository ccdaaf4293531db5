/**
 * sprocd on a real Sentinel group (test/support/sentinel.ts): a node started with a Sentinel REDIS_URL
 * and SPROCD_REPLICA_ACKS=1 keeps every acknowledged execution and storage increment when the master is
 * SIGKILLed under load, follows the new master by itself and reports redis.lost / redis.back; with no
 * replica left, requests fail at once with NOT_REPLICATED instead of being acknowledged.
 *
 * Its own vitest config (vitest.sentinel.config.ts, run by .ci/sentinel-test): a fail-over takes
 * seconds of wall time, and the group is five more redis-server processes on a two-core machine.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Execution } from '../../src/client/types.js';
import { ApiError } from '../../src/client/errors.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { freeze, startSentinelGroup, type SentinelGroup } from '../support/sentinel.js';
import { uniquePrefix } from '../support/redis.js';

let group: SentinelGroup;
let node: ChildNode;
const eventsFile = path.join(
  fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-sentinel-events-')),
  'events.jsonl',
);

beforeAll(async () => {
  group = await startSentinelGroup({ downAfterMs: 1000, failoverTimeoutMs: 3000 });
  node = await spawnNode(uniquePrefix('sentinel'), {
    REDIS_URL: group.url,
    SPROCD_REPLICA_ACKS: '1',
    SPROCD_REPLICA_ACK_TIMEOUT_MS: '1000',
    SPROCD_REDIS_TIMEOUT_MS: '3000',
    SPROCD_JOBS_DIR: path.join(FIXTURES, 'sentinel-jobs'),
    SPROCD_LIFECYCLE_DIR: path.join(FIXTURES, 'lifecycle-events'),
    SPROCD_CONCURRENCY: '8',
    SPROCD_RATE_LIMIT: '0',
    TEST_EVENTS_FILE: eventsFile,
  });
}, 90_000);

afterAll(async () => {
  await node?.stop();
  await group?.stop();
});

// A failure shows what the node said about Redis meanwhile (its warnings and errors, the last 80).
afterEach((context) => {
  if (context.task.result?.state === 'fail' && node) {
    const said = node.lines.filter((l) => l.stderr !== undefined || Number(l.level ?? 0) >= 40);
    console.log(
      `the node's warnings and errors:\n${said
        .slice(-80)
        .map((l) => JSON.stringify(l))
        .join('\n')}`,
    );
  }
});

function events(): { type: string }[] {
  return fs.existsSync(eventsFile)
    ? fs
        .readFileSync(eventsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string })
    : [];
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Clients queue `tally` executions in a loop until `stop()`; returns what was acknowledged and refused. */
function load(clients: number) {
  const acked: number[] = [];
  const refused = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: clients }, async () => {
    while (running) {
      try {
        acked.push((await node.client.execute('tally', {})).number);
      } catch (err) {
        const code = err instanceof ApiError ? err.code : 'OTHER';
        refused.set(code, (refused.get(code) ?? 0) + 1);
        await sleep(50);
      }
    }
  });
  return {
    acked,
    refused,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * Asserts that every acknowledged execution exists and completes, and that its increment is counted
 * at least once and at most once per start (at-least-once: a run whose end died with the old master
 * runs again). Returns how many were counted twice.
 */
async function checkNothingLost(acked: readonly number[]): Promise<number> {
  // Every acknowledged execution exists on the new master and runs to its end.
  const views = new Map<number, Execution>();
  await vi.waitFor(
    async () => {
      for (const number of acked) {
        if (views.get(number)?.state !== 'completed') {
          views.set(number, await node.client.get(number));
        }
      }
      // Each unfinished one with its state and error, so that a failure says what became of it.
      expect(
        acked
          .filter((n) => views.get(n)?.state !== 'completed')
          .map((n) => {
            const view = views.get(n);
            return `${n}: ${view?.state} attempt ${view?.attempt}${view?.error ? ` ${view.error.code ?? view.error.name}: ${view.error.message}` : ''}`;
          }),
      ).toEqual([]);
    },
    { timeout: 60_000, interval: 500 },
  );
  // Every acknowledged increment is counted: each completed execution's commit is in storage, at
  // most once per start of it (at-least-once: a run whose end died with the old master runs again).
  const storage = (await node.client.storage()) as Record<string, Record<string, number>>;
  const tally = new Map<number, number>();
  for (const [key, entry] of Object.entries(storage)) {
    if (key.startsWith('tally-')) {
      for (const [n, count] of Object.entries(entry)) {
        tally.set(Number(n), count);
      }
    }
  }
  const lost = acked.filter((n) => (tally.get(n) ?? 0) < 1);
  const beyondRetries = acked.filter((n) => (tally.get(n) ?? 0) > (views.get(n)?.attempt ?? 1));
  const twice = acked.filter((n) => (tally.get(n) ?? 0) > 1);
  expect(lost).toEqual([]);
  expect(beyondRetries).toEqual([]);
  expect(new Set(acked).size).toBe(acked.length);

  return twice.length;
}

describe('sprocd on Redis Sentinel with SPROCD_REPLICA_ACKS=1', () => {
  it('loses nothing acknowledged when the master is SIGKILLed under load, and follows the new master', async () => {
    const flow = load(6);
    await vi.waitFor(() => expect(flow.acked.length).toBeGreaterThanOrEqual(100), { timeout: 30_000 });
    const old = await group.master();
    await old.kill();
    const ackedBefore = flow.acked.length;
    await group.failedOver(old);
    // The node follows by itself: new executions are acknowledged again, on the new master.
    await vi.waitFor(() => expect(flow.acked.length).toBeGreaterThanOrEqual(ackedBefore + 100), {
      timeout: 30_000,
    });
    await flow.stop();

    const twice = await checkNothingLost(flow.acked);
    console.log(
      `SIGKILL under load: ${flow.acked.length} acknowledged (${ackedBefore} before the kill), refused ${JSON.stringify(Object.fromEntries(flow.refused))}, ${twice} counted twice (run again)`,
    );

    const types = events().map((e) => e.type);
    expect(types).toContain('redis.lost');
    expect(types.indexOf('redis.back')).toBeGreaterThan(types.indexOf('redis.lost'));
  });

  it('leaves a frozen (SIGSTOPped) master for the one the sentinels elect, losing nothing acknowledged', async () => {
    // The master killed above comes back; the sentinels make it a replica of the new master.
    const dead = group.servers.find((s) => s.pid === 0 || !isAlive(s.pid));
    await dead?.restart();
    await group.replicasOnline(2);
    const lostBefore = events().filter((e) => e.type === 'redis.lost').length;
    const flow = load(6);
    await vi.waitFor(() => expect(flow.acked.length).toBeGreaterThanOrEqual(100), { timeout: 30_000 });
    const frozen = await group.master();
    const ackedBefore = flow.acked.length;
    // Frozen for longer than down-after-milliseconds: the sentinels fail over while it sleeps, and it
    // wakes up still believing it is the master (until the sentinels turn it into a replica).
    const thawed = freeze(frozen.pid, 4000);
    await group.failedOver(frozen);
    await thawed;
    await vi.waitFor(() => expect(flow.acked.length).toBeGreaterThanOrEqual(ackedBefore + 100), {
      timeout: 30_000,
    });
    await flow.stop();
    const twice = await checkNothingLost(flow.acked);
    console.log(
      `SIGSTOP under load: ${flow.acked.length} acknowledged (${ackedBefore} before the freeze), refused ${JSON.stringify(Object.fromEntries(flow.refused))}, ${twice} counted twice (run again)`,
    );
    expect(events().filter((e) => e.type === 'redis.lost').length).toBeGreaterThan(lostBefore);
  });

  it('refuses acknowledgements with NOT_REPLICATED when no replica answers, without hanging', async () => {
    await group.replicasOnline(1);
    for (const replica of await group.replicas()) {
      await replica.stop();
    }
    const err = await node.client.execute('tally', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).code).toBe('NOT_REPLICATED');
    expect((err as ApiError).status).toBe(503);
    expect((err as ApiError).details).toMatchObject({ reason: 'timeout', wanted: 1, got: 0 });
    // A storage commit is refused the same way (PUT goes through `use` like a procedure's write).
    const write = await node.client.writeStorage('unreplicated', { n: 1 }).catch((e: unknown) => e);
    expect((write as ApiError).code).toBe('NOT_REPLICATED');
  });
});
