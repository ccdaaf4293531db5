/**
 * What ctx.checkpoint() costs (BENCH_ONLY=checkpoint): no-op executions/s through executeOnServer on
 * one in-process node (concurrency 16, 64 requests in flight as in bench/queue.ts), against executions of a procedure that
 * calls ctx.checkpoint() 100 times, in alternating rounds on the same node; the ratio is the median of
 * the rounds' ratios. Knob: BENCH_CHECKPOINT_ROUNDS (6 of each), BENCH_CHECKPOINT_TOTAL (10,000 each).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'bullmq';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import { drive, type Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_CHECKPOINT_ROUNDS ?? 6);
const TOTAL = Number(process.env.BENCH_CHECKPOINT_TOTAL ?? 10_000);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export async function benchCheckpoint(redisUrl: string): Promise<Row[]> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-checkpoint-${Date.now()}`,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_CONCURRENCY: '16',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger('silent', { pretty: false }));
  await node.start();
  const executions = node.internals().executions;
  const worker = (node as unknown as { workers: { worker: Worker } }).workers.worker;
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
  try {
    await rate('noop', 2000);
    await rate('checkpoint100', 2000);
    const plain: number[] = [];
    const checked: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Each side goes first in every other round, so the machine's drift hits both alike.
      const first = i % 2 === 0 ? 'noop' : 'checkpoint100';
      const a = await rate(first, TOTAL);
      const b = await rate(first === 'noop' ? 'checkpoint100' : 'noop', TOTAL);
      const [p, c] = first === 'noop' ? [a, b] : [b, a];
      plain.push(p);
      checked.push(c);
      ratios.push(c / p);
    }
    return [
      { name: 'no-op executions/s', value: median(plain), unit: 'executions/s' },
      {
        name: 'executions/s calling ctx.checkpoint() 100 times',
        value: median(checked),
        unit: 'executions/s',
      },
      { name: 'ratio with checkpoints / without (target >= 0.9)', value: median(ratios), unit: 'x' },
    ];
  } finally {
    await executions.queue.obliterate({ force: true });
    await node.stop();
  }
}
