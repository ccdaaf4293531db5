/**
 * What ctx.checkpoint() costs (BENCH_ONLY=checkpoint): no-op executions/s through executeOnServer on
 * one in-process node (concurrency 16, 64 requests in flight as in bench/queue.ts), against executions of a procedure that
 * calls ctx.checkpoint() 100 times, in alternating rounds on the same node; the ratio is the median of
 * the rounds' ratios. Knob: BENCH_CHECKPOINT_ROUNDS (6 of each), BENCH_CHECKPOINT_TOTAL (10,000 each).
 */
import { alternate, median, startBenchNode } from './bench-node.js';
import type { Row } from './queue.js';

const ROUNDS = Number(process.env.BENCH_CHECKPOINT_ROUNDS ?? 6);
const TOTAL = Number(process.env.BENCH_CHECKPOINT_TOTAL ?? 10_000);

export async function benchCheckpoint(redisUrl: string): Promise<Row[]> {
  const bench = await startBenchNode(redisUrl, 'checkpoint');
  try {
    await bench.rate('noop', 2000);
    await bench.rate('checkpoint100', 2000);
    const { a: plain, b: checked, ratios } = await alternate(bench, ROUNDS, TOTAL, 'noop', 'checkpoint100');
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
    await bench.stop();
  }
}
