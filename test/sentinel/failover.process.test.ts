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
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Execution } from '../../src/client/types.js';
import { ApiError } from '../../src/client/errors.js';
import { FIXTURES, spawnNode, type ChildNode } from '../support/node.js';
import { startSentinelGroup, type SentinelGroup } from '../support/sentinel.js';
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

function events(): { type: string }[] {
  return fs.existsSync(eventsFile)
    ? fs
        .readFileSync(eventsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string })
    : [];
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

    // Every acknowledged execution exists on the new master and runs to its end.
    const views = new Map<number, Execution>();
    await vi.waitFor(
      async () => {
        for (const number of flow.acked) {
          if (views.get(number)?.state !== 'completed') {
            views.set(number, await node.client.get(number));
          }
        }
        expect(flow.acked.filter((n) => views.get(n)?.state !== 'completed')).toEqual([]);
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
    const lost = flow.acked.filter((n) => (tally.get(n) ?? 0) < 1);
    const beyondRetries = flow.acked.filter((n) => (tally.get(n) ?? 0) > (views.get(n)?.attempt ?? 1));
    const twice = flow.acked.filter((n) => (tally.get(n) ?? 0) > 1);
    console.log(
      `fail-over under load: ${flow.acked.length} acknowledged (${ackedBefore} before the kill), refused ${JSON.stringify(Object.fromEntries(flow.refused))}, ${twice.length} counted twice (run again)`,
    );
    expect(lost).toEqual([]);
    expect(beyondRetries).toEqual([]);
    expect(new Set(flow.acked).size).toBe(flow.acked.length);

    const types = events().map((e) => e.type);
    expect(types).toContain('redis.lost');
    expect(types.indexOf('redis.back')).toBeGreaterThan(types.indexOf('redis.lost'));
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
