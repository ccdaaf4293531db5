/**
 * What the Cluster tests read of their two node processes: who ran an execution, the storage tallies,
 * and the executions' views once they settled.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { expect, vi } from 'vitest';
import { ApiError } from '../../src/client/errors.js';
import type { Execution } from '../../src/client/types.js';
import type { ChildNode } from '../support/node.js';

export const nameOf = (node: ChildNode) =>
  String(node.lines.find((l) => l.msg === 'sprocd node ready')?.node);

/** The storage entries `tally-*` read back: execution number → times its increment was committed. */
export async function tallies(node: ChildNode): Promise<Map<number, number>> {
  const storage = (await node.client.storage()) as Record<string, Record<string, number>>;
  const counted = new Map<number, number>();
  for (const [key, entry] of Object.entries(storage)) {
    if (key.startsWith('tally-')) {
      for (const [n, count] of Object.entries(entry)) {
        counted.set(Number(n), count);
      }
    }
  }
  return counted;
}

/** The views of `numbers` once each is no longer queued or running (read every 300 ms, not in a burst). */
export async function settled(
  node: ChildNode,
  numbers: readonly number[],
  timeoutMs = 30_000,
): Promise<Execution[]> {
  const views = new Map<number, Execution>();
  const done = (n: number) => ['completed', 'failed', 'aborted'].includes(views.get(n)?.state ?? '');
  await vi.waitFor(
    async () => {
      for (const n of numbers.filter((x) => !done(x))) {
        views.set(n, await node.client.get(n));
      }
      expect(numbers.filter((n) => !done(n))).toEqual([]);
    },
    { timeout: timeoutMs, interval: 300 },
  );
  return numbers.map((n) => views.get(n) as Execution);
}

/** `tally` executions asked in a loop of six clients over two nodes, until `stop()`. */
export interface TallyLoad {
  /** The numbers of the executions acknowledged, in order. */
  readonly acked: number[];
  /** Refused requests by error code. */
  readonly refused: Map<string, number>;
  stop(): Promise<void>;
}

/** Starts six loops asking `tally` executions, alternately of `a` and `b`; a refused request waits 50 ms. */
export function tallyLoad(a: ChildNode, b: ChildNode): TallyLoad {
  const acked: number[] = [];
  const refused = new Map<string, number>();
  let running = true;
  const loops = Array.from({ length: 6 }, async (_, i) => {
    const node = i % 2 ? a : b;
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
 * Every acknowledged execution of `load` completed, and its increment was counted at least once and at
 * most once per start of it (a run whose end died with an old master runs again: at-least-once); what
 * was refused meanwhile was refused as retryable (503), not as a bug. Returns how many were counted twice.
 */
export async function expectNothingAckedLost(a: ChildNode, b: ChildNode, load: TallyLoad): Promise<number> {
  const { acked, refused } = load;
  const views = new Map((await settled(a, acked, 90_000)).map((v) => [v.number, v]));
  const notCompleted = acked.filter((n) => views.get(n)?.state !== 'completed');
  expect(
    notCompleted
      .slice(0, 5)
      .map((n) => ({ n, state: views.get(n)?.state, error: views.get(n)?.error?.message })),
  ).toEqual([]);
  const counted = await tallies(b);
  expect(acked.filter((n) => (counted.get(n) ?? 0) < 1)).toEqual([]);
  expect(acked.filter((n) => (counted.get(n) ?? 0) > (views.get(n)?.attempt ?? 1))).toEqual([]);
  expect(new Set(acked).size).toBe(acked.length);
  expect(
    [...refused.keys()].filter((code) => code !== 'REDIS_UNAVAILABLE' && code !== 'NOT_REPLICATED'),
  ).toEqual([]);
  return acked.filter((n) => (counted.get(n) ?? 0) > 1).length;
}
