/**
 * What the benchmarks share: an in-process node on the benchmark's Redis (the no-op procedures of
 * bench/jobs, no lifecycle), its executions/s for a procedure, rounds that alternate two procedures,
 * and the median of some figures.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'bullmq';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import type { Executions } from '../src/procedures/executions.js';
import { drive } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** A node started for a benchmark. */
export interface BenchNode {
  node: SprocdNode;
  executions: Executions;
  /** The node's procedures Workers, one per queue shard (their `completed` events count what ran). */
  worker: CompletedEvents;
  /** Executions/s of `total` executions of `procedure`, 64 requests in flight, until all have run. */
  rate(procedure: string, total: number): Promise<number>;
  /** Empties its queue and stops it. */
  stop(): Promise<void>;
}

/** The `completed` events of every queue shard's Worker, subscribed to as one. */
export interface CompletedEvents {
  on(event: 'completed', listener: () => void): void;
  off(event: 'completed', listener: () => void): void;
  /** Stops every Worker taking jobs (those running go on). */
  pause(doNotWaitActive?: boolean): Promise<void>;
  resume(): Promise<void>;
}

/** The node's procedure Workers (one per queue shard) as one source of `completed` events. */
export function procedureWorkers(node: SprocdNode): CompletedEvents {
  const workers = (node as unknown as { workers: { bullWorkers: readonly Worker[] } }).workers.bullWorkers;
  return {
    on: (event, listener) => workers.forEach((w) => w.on(event, listener)),
    off: (event, listener) => workers.forEach((w) => w.off(event, listener)),
    pause: async (doNotWaitActive) => {
      await Promise.all(workers.map((w) => w.pause(doNotWaitActive)));
    },
    resume: async () => {
      await Promise.all(workers.map((w) => w.resume()));
    },
  };
}

/** Starts a node (concurrency 16) on `redisUrl` under a prefix of its own; `env` adds settings. */
export async function startBenchNode(
  redisUrl: string,
  label: string,
  env: Record<string, string> = {},
): Promise<BenchNode> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-${label}-${Date.now()}`,
      PORT: '0',
      LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'silent',
      SPROCD_CONCURRENCY: '16',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
      ...env,
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger(settings.logLevel, { pretty: false }));
  await node.start();
  const executions = node.internals().executions;
  const worker = procedureWorkers(node);
  const rate = async (procedure: string, total: number): Promise<number> => {
    let done = 0;
    let allDone!: () => void;
    const finished = new Promise<void>((r) => (allDone = r));
    const onCompleted = () => {
      if (++done === total) {
        allDone();
      }
    };
    worker.on('completed', onCompleted);
    const t0 = performance.now();
    await drive(total, () => executions.execute(procedure, null));
    await finished;
    worker.off('completed', onCompleted);
    return total / ((performance.now() - t0) / 1000);
  };
  const stop = async () => {
    await Promise.all(executions.queues.map((q) => q.obliterate({ force: true })));
    await node.stop();
  };
  return { node, executions, worker, rate, stop };
}

/**
 * `rounds` rounds of `total` executions of procedure `a` and of `b` on `bench`, each first in every
 * other round so that the machine's drift hits both alike: each side's rates, and each round's b/a.
 */
export async function alternate(
  bench: BenchNode,
  rounds: number,
  total: number,
  a: string,
  b: string,
): Promise<{ a: number[]; b: number[]; ratios: number[] }> {
  const out = { a: [] as number[], b: [] as number[], ratios: [] as number[] };
  for (let i = 0; i < rounds; i++) {
    const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
    const x = await bench.rate(first, total);
    const y = await bench.rate(second, total);
    const [ra, rb] = first === a ? [x, y] : [y, x];
    out.a.push(ra);
    out.b.push(rb);
    out.ratios.push(rb / ra);
  }
  return out;
}

/** Median of some numbers. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}
