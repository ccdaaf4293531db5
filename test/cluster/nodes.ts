/**
 * What the Cluster tests read of their two node processes: who ran an execution, the storage tallies,
 * and the executions' views once they settled.
 */
import { expect, vi } from 'vitest';
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
