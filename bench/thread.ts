/**
 * What `isolation: 'thread'` costs (BENCH_ONLY=thread): no-op executions/s through executeOnServer on
 * one in-process node (concurrency 16, 64 requests in flight as in bench/queue.ts), inline against the
 * same no-op in worker threads (idle threads reused, as in steady use), in alternating rounds on the
 * same node; the ratio is the median of the rounds' ratios. Knobs: BENCH_THREAD_ROUNDS (4 of each),
 * BENCH_THREAD_TOTAL (4,000 each).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Worker } from 'bullmq';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import { drive, type Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_THREAD_ROUNDS ?? 4);
const TOTAL = Number(process.env.BENCH_THREAD_TOTAL ?? 4_000);

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

export async function benchThread(redisUrl: string): Promise<Row[]> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-thread-${Date.now()}`,
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
    // The first thread executions start the threads (a few hundred ms each): a cold start, measured apart.
    const t0 = performance.now();
    await rate('noop-thread', 16);
    const coldMs = performance.now() - t0;
    await rate('noop', 2000);
    await rate('noop-thread', 2000);
    const inline: number[] = [];
    const threaded: number[] = [];
    const ratios: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Each side goes first in every other round, so the machine's drift hits both alike.
      const first = i % 2 === 0 ? 'noop' : 'noop-thread';
      const a = await rate(first, TOTAL);
      const b = await rate(first === 'noop' ? 'noop-thread' : 'noop', TOTAL);
      const [p, t] = first === 'noop' ? [a, b] : [b, a];
      inline.push(p);
      threaded.push(t);
      ratios.push(t / p);
    }
    return [
      { name: 'no-op executions/s, inline', value: median(inline), unit: 'executions/s' },
      {
        name: "no-op executions/s, isolation: 'thread' (threads reused)",
        value: median(threaded),
        unit: 'executions/s',
      },
      { name: 'ratio thread / inline', value: median(ratios), unit: 'x' },
      { name: 'first 16 thread executions (16 threads started)', value: coldMs, unit: 'ms' },
    ];
  } finally {
    await executions.queue.obliterate({ force: true });
    await node.stop();
  }
}
