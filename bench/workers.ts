/**
 * Messages/s through one worker (BENCH_ONLY=workers): CALL WORKER of a no-op procedure on one
 * sprocd node, beside a bare BullMQ Worker with concurrency 1 on one queue, on the same Redis in the
 * same run. Each round queues MESSAGES (64 adds in flight, as bench/queue.ts drives executions) and
 * times from the first add until the procedure (or the bare processor) has run the last one; the two
 * sides alternate rounds, first one then the other, so both see the same machine. The figures are the
 * medians of the rounds, and the ratio of the medians. Knobs: BENCH_WORKERS_MESSAGES (3000),
 * BENCH_WORKERS_ROUNDS (6).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import type { Workers } from '../src/procedures/workers/workers.js';
import { deleteDeploymentKeys } from '../src/redis/cleanup.js';
import { drive, type Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const MESSAGES = Number(process.env.BENCH_WORKERS_MESSAGES ?? 3000);
const ROUNDS = Number(process.env.BENCH_WORKERS_ROUNDS ?? 6);

/** What bench/jobs/tally.ts calls for each message it runs. */
const tally = globalThis as { __benchTally?: () => void };

/** Resolves once `tally` was called `total` times from now. */
function counted(total: number): Promise<void> {
  let n = 0;
  return new Promise((resolve) => {
    tally.__benchTally = () => {
      if (++n === total) {
        resolve();
      }
    };
  });
}

/** One round: queues `total` messages with `add` and answers messages/s until the last one ran. */
async function round(total: number, add: (i: number) => Promise<unknown>): Promise<number> {
  const done = counted(total);
  const t0 = performance.now();
  await drive(total, add);
  await done;
  return total / ((performance.now() - t0) / 1000);
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

export async function benchWorkers(url: string): Promise<Row[]> {
  // The bare side: one queue, one Worker with concurrency 1, its processor the same tally.
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const bullPrefix = `{bench-wbull-${Date.now()}}`;
  const queue = new Queue('mailbox', { connection, prefix: bullPrefix });
  const bare = new Worker(
    'mailbox',
    async () => {
      tally.__benchTally?.();
      return null;
    },
    { connection, prefix: bullPrefix, concurrency: 1 },
  );
  await bare.waitUntilReady();
  const opts = { removeOnComplete: { count: 1000, age: 86400 }, removeOnFail: { count: 1000, age: 86400 } };

  const prefix = `bench-workers-${Date.now()}`;
  const settings = loadSettings(
    {
      REDIS_URL: url,
      SPROCD_PREFIX: prefix,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger('silent', { pretty: false }));
  await node.start();
  // The in-process call path (as bench/queue.ts calls executions.execute): checks, then one script.
  const workers = (node as unknown as { workerCalls: Workers }).workerCalls;

  const sides = {
    bare: (i: number) => queue.add('tally', { i }, opts),
    sprocd: (i: number) => workers.call('bench', 'tally', { i }),
  };
  const rates: Record<keyof typeof sides, number[]> = { bare: [], sprocd: [] };
  try {
    // Warm-up of both paths (JIT, script loading), not counted.
    await round(500, sides.bare);
    await round(500, sides.sprocd);
    for (let r = 0; r < ROUNDS; r++) {
      const order: (keyof typeof sides)[] = r % 2 === 0 ? ['bare', 'sprocd'] : ['sprocd', 'bare'];
      for (const side of order) {
        rates[side].push(await round(MESSAGES, sides[side]));
      }
    }
  } finally {
    await bare.close();
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
    await node.stop();
    const cleanup = new Redis(url);
    await deleteDeploymentKeys(cleanup, prefix);
    cleanup.disconnect();
  }
  const bareRate = median(rates.bare);
  const ours = median(rates.sprocd);
  const perRound = rates.sprocd.map((v, i) => v / (rates.bare[i] ?? NaN));
  return [
    { name: 'bare BullMQ Worker, concurrency 1, one queue: messages/s', value: bareRate, unit: 'msg/s' },
    { name: 'sprocd: CALL WORKER, one worker: messages/s', value: ours, unit: 'msg/s' },
    { name: 'ratio sprocd / BullMQ (target >= 0.8)', value: ours / bareRate, unit: 'x' },
    { name: 'ratio, lowest round', value: Math.min(...perRound), unit: 'x' },
    { name: 'ratio, highest round', value: Math.max(...perRound), unit: 'x' },
  ];
}
