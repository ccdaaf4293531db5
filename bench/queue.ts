/**
 * Throughput and start latency of no-op procedures through executeOnServer on one node, beside the
 * same work on bare BullMQ (Queue.add + Worker, same concurrency) on the same Redis in the same run.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { SprocdNode } from '../src/node.js';
import { procedureWorkers } from './bench-node.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** One figure of a benchmark. */
export interface Row {
  name: string;
  value: number;
  unit: string;
}

const CONCURRENCY = 16;
const IN_FLIGHT = 64;

/** Calls `add` `total` times, `IN_FLIGHT` at once. */
export async function drive(total: number, add: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < total) {
        await add(next++);
      }
    }),
  );
}

/** CPU time of this process and of the Redis server over a stretch of work (µs per item). */
interface CpuSpent {
  nodeUs: number;
  redisUs: number;
}

async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

/** Starts counting CPU; the returned function ends it and divides by `items`. */
async function cpuMeter(redis: Redis): Promise<(items: number) => Promise<CpuSpent>> {
  const node0 = process.cpuUsage();
  const redis0 = await redisCpuSeconds(redis);
  return async (items) => {
    const node = process.cpuUsage(node0);
    const redisS = (await redisCpuSeconds(redis)) - redis0;
    return { nodeUs: (node.user + node.system) / items, redisUs: (redisS * 1e6) / items };
  };
}

type Side = { rate: number; p50: number; p99: number } & CpuSpent;

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function bareBullmq(redisUrl: string, total: number, samples: number): Promise<Side> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `{bench-bull-${Date.now()}}`;
  const queue = new Queue('procedures', { connection, prefix });
  const starts = new Map<string, number>();
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  let latencyMode = false;
  const worker = new Worker(
    'procedures',
    async (job) => {
      if (latencyMode) {
        starts.set(job.id ?? '', performance.now());
      }
      return null;
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  worker.on('completed', () => {
    if (++done === total) {
      allDone();
    }
  });
  await worker.waitUntilReady();
  const opts = { removeOnComplete: { count: 1000, age: 86400 }, removeOnFail: { count: 1000, age: 86400 } };
  const meter = await cpuMeter(connection);
  const t0 = performance.now();
  await drive(total, (i) =>
    queue.add('noop', { procedure: 'noop', params: null, id: String(i), name: '' }, opts),
  );
  await finished;
  const rate = total / ((performance.now() - t0) / 1000);
  const cpu = await meter(total);

  latencyMode = true;
  const lat: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const job = await queue.add('mark', { i }, opts);
    while (!starts.has(job.id ?? '')) {
      await new Promise((r) => setImmediate(r));
    }
    lat.push((starts.get(job.id ?? '') ?? t) - t);
  }
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  connection.disconnect();
  lat.sort((a, b) => a - b);
  return { rate, p50: percentile(lat, 50), p99: percentile(lat, 99), ...cpu };
}

async function sprocd(redisUrl: string, total: number, samples: number): Promise<Side> {
  const settings = loadSettings(
    {
      REDIS_URL: redisUrl,
      SPROCD_PREFIX: `bench-sprocd-${Date.now()}`,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_CONCURRENCY: String(CONCURRENCY),
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
    },
    HERE,
  );
  const node = new SprocdNode(settings, createLogger('silent', { pretty: false }));
  await node.start();
  const executions = node.internals().executions;
  let done = 0;
  let allDone!: () => void;
  const finished = new Promise<void>((r) => (allDone = r));
  const worker = procedureWorkers(node);
  worker.on('completed', () => {
    if (++done === total) {
      allDone();
    }
  });
  const probe = new Redis(redisUrl);
  const meter = await cpuMeter(probe);
  const t0 = performance.now();
  await drive(total, () => executions.execute('noop', null));
  await finished;
  const rate = total / ((performance.now() - t0) / 1000);
  const cpu = await meter(total);
  probe.disconnect();

  const starts = new Map<number, number>();
  (globalThis as { __benchMark?: (n: number) => void }).__benchMark = (n) => starts.set(n, performance.now());
  const lat: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    const { execution } = await executions.execute('mark', null);
    while (!starts.has(execution.number)) {
      await new Promise((r) => setImmediate(r));
    }
    lat.push((starts.get(execution.number) ?? t) - t);
  }
  await executions.queues[0]!.obliterate({ force: true });
  await node.stop();
  lat.sort((a, b) => a - b);
  return { rate, p50: percentile(lat, 50), p99: percentile(lat, 99), ...cpu };
}

/** Median of some numbers. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
}

/**
 * Runs the queue benchmark: a warm-up of each side, then `rounds` rounds alternating the two sides
 * (a 2-core machine is noisy), reporting the median of each figure.
 */
export async function benchQueue(
  redisUrl: string,
  total = 20_000,
  samples = 500,
  rounds = 3,
): Promise<Row[]> {
  await bareBullmq(redisUrl, 2000, 20);
  await sprocd(redisUrl, 2000, 20);
  const bull: Side[] = [];
  const ours: Side[] = [];
  for (let i = 0; i < rounds; i++) {
    bull.push(await bareBullmq(redisUrl, total, samples));
    ours.push(await sprocd(redisUrl, total, samples));
  }
  const m = (list: Side[], k: keyof Side) => median(list.map((x) => x[k]));
  return [
    { name: 'bare BullMQ: no-op jobs/s (add + process)', value: m(bull, 'rate'), unit: 'jobs/s' },
    {
      name: 'sprocd: no-op executions/s (executeOnServer + process)',
      value: m(ours, 'rate'),
      unit: 'executions/s',
    },
    {
      name: 'throughput ratio sprocd / BullMQ (target >= 0.9)',
      value: m(ours, 'rate') / m(bull, 'rate'),
      unit: 'x',
    },
    { name: 'bare BullMQ: add-to-start latency p50', value: m(bull, 'p50'), unit: 'ms' },
    { name: 'bare BullMQ: add-to-start latency p99', value: m(bull, 'p99'), unit: 'ms' },
    { name: 'sprocd: request-to-start latency p50', value: m(ours, 'p50'), unit: 'ms' },
    { name: 'sprocd: request-to-start latency p99', value: m(ours, 'p99'), unit: 'ms' },
    {
      name: 'p99 latency ratio sprocd / BullMQ (target <= 1.5)',
      value: m(ours, 'p99') / m(bull, 'p99'),
      unit: 'x',
    },
    // Where the time goes: the node (this process: driver, queue and worker) and the Redis server.
    { name: 'bare BullMQ: node CPU per job', value: m(bull, 'nodeUs'), unit: 'us' },
    { name: 'bare BullMQ: Redis CPU per job', value: m(bull, 'redisUs'), unit: 'us' },
    { name: 'sprocd: node CPU per execution', value: m(ours, 'nodeUs'), unit: 'us' },
    { name: 'sprocd: Redis CPU per execution', value: m(ours, 'redisUs'), unit: 'us' },
  ];
}
