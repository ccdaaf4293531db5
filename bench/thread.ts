/**
 * What `isolation: 'thread'` costs (BENCH_ONLY=thread): no-op executions/s through executeOnServer on
 * one in-process node (concurrency 16, 64 requests in flight as in bench/queue.ts), inline against the
 * same no-op in worker threads (idle threads reused, as in steady use), in alternating rounds on the
 * same node; the ratio is the median of the rounds' ratios. Knobs: BENCH_THREAD_ROUNDS (4 of each),
 * BENCH_THREAD_TOTAL (4,000 each).
 */
import { alternate, median, startBenchNode } from './bench-node.js';
import type { Row } from './queue.js';

const ROUNDS = Number(process.env.BENCH_THREAD_ROUNDS ?? 4);
const TOTAL = Number(process.env.BENCH_THREAD_TOTAL ?? 4_000);

export async function benchThread(redisUrl: string): Promise<Row[]> {
  const bench = await startBenchNode(redisUrl, 'thread');
  try {
    // The first thread executions start the threads (a few hundred ms each): a cold start, measured apart.
    const t0 = performance.now();
    await bench.rate('noop-thread', 16);
    const coldMs = performance.now() - t0;
    await bench.rate('noop', 2000);
    await bench.rate('noop-thread', 2000);
    const { a: inline, b: threaded, ratios } = await alternate(bench, ROUNDS, TOTAL, 'noop', 'noop-thread');
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
    await bench.stop();
  }
}
