/**
 * sprocd against graphile-worker (issue 11), beside bare BullMQ, on the same no-op workload in the
 * same run: graphile-worker on this machine's PostgreSQL (GRAPHILE_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/sprocd_bench, a database of its own: the bench installs
 * graphile-worker's schema there), sprocd and BullMQ on the benchmark's Redis.
 *
 * Two workloads, both timed until the last job is filed as done (for graphile-worker: until its
 * jobs table is empty, since its batched completion files a job after the task returned):
 *  - drain: GRAPHILE_TOTAL (default 20,000) no-op jobs queued in bulk first (batches of 1,000, one
 *    transaction for graphile-worker, the workers paused for BullMQ and sprocd), then let go and timed
 *    from that moment: what the issue calls no-op end-to-end throughput, graphile-worker's own
 *    benchmark shape;
 *  - flow: the queue bench's shape (bench/queue.ts): GRAPHILE_FLOW_TOTAL (default 20,000) single adds,
 *    64 in flight, while the workers run, timed from the first add.
 * graphile-worker's slow runs take a share of the total (default config drain 1/5, single adds 1/10).
 * Each system is first tried in a few configurations (one round each); the best graphile-worker one (for
 * the drain its two best, the better of the two counting in each round)
 * then goes into GRAPHILE_ROUNDS (default 5) rounds that alternate the order of the four sides, and
 * the median of each side is reported with sprocd's ratios to graphile-worker's best and to BullMQ.
 * Not in the default `npm run bench` (it needs PostgreSQL): BENCH_ONLY=graphile.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import pg, { type Pool as PgPool } from 'pg';
import { isUnixUrl, parseUnixUrl } from '../src/redis/unix-url.js';
import { median, startBenchNode, type BenchNode } from './bench-node.js';
import { drive, type Row } from './queue.js';

const CONCURRENCY = 16;
const BULK = 1000;
/**
 * GRAPHILE_TRANSPORT=socket: every side on its server's Unix socket (Redis's beside its data, PostgreSQL's
 * in /var/run/postgresql) instead of TCP on 127.0.0.1, the way `npm start` reaches its embedded Redis.
 */
const OVER_SOCKETS = process.env.GRAPHILE_TRANSPORT === 'socket';
const DB_URL =
  process.env.GRAPHILE_DATABASE_URL ??
  (OVER_SOCKETS
    ? 'postgres://postgres@/sprocd_bench?host=/var/run/postgresql'
    : 'postgres://postgres@127.0.0.1:5432/sprocd_bench');

/** Called just before the timed part of a drain starts and just after it ends (bench/per-execution.ts). */
export interface Around {
  before(): Promise<void>;
  after(): Promise<void>;
}

/** One way of running jobs: `drain(n)` and `flow(n)` answer jobs/s. */
export interface Side {
  label: string;
  /**
   * The share of the workload's total this side runs (a rate is per job, so shares compare): the slow
   * graphile-worker runs (default config, single adds each a commit) would otherwise take minutes.
   */
  share?: { drain: number; flow: number };
  drain(total: number, around?: Around): Promise<number>;
  flow(total: number): Promise<number>;
  close(): Promise<void>;
}

/** Round `i`'s order of the sides: rotated by one each round, so the machine's drift hits all alike. */
function alternateOrder<T>(i: number, sides: T[]): T[] {
  const k = i % sides.length;
  return [...sides.slice(k), ...sides.slice(0, k)];
}

/** A counter that resolves once it has counted `total`. */
function countTo(total: number): { tick(): void; done: Promise<void> } {
  let n = 0;
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return {
    tick: () => {
      if (++n === total) {
        resolve();
      }
    },
    done,
  };
}

// ---------------------------------------------------------------------------------------------
// Bare BullMQ: Queue.add / addBulk and a Worker of CONCURRENCY, as bench/queue.ts runs it.

export function bareBullmq(redisUrl: string): Side {
  const connection = isUnixUrl(redisUrl)
    ? new Redis({ ...parseUnixUrl(redisUrl), maxRetriesPerRequest: null })
    : new Redis(redisUrl, { maxRetriesPerRequest: null });
  const prefix = `{bench-gbull-${Date.now()}}`;
  const queue = new Queue('procedures', { connection, prefix });
  const opts = { removeOnComplete: { count: 1000, age: 86400 }, removeOnFail: { count: 1000, age: 86400 } };
  const data = (i: number) => ({ procedure: 'noop', params: null, id: String(i), name: '' });
  const worker = async (onDone: () => void, autorun: boolean) => {
    const w = new Worker('procedures', async () => null, {
      connection,
      prefix,
      concurrency: CONCURRENCY,
      autorun,
    });
    w.on('completed', onDone);
    await w.waitUntilReady();
    return w;
  };
  return {
    label: 'bare BullMQ',
    async drain(total, around) {
      for (let i = 0; i < total; i += BULK) {
        const n = Math.min(BULK, total - i);
        await queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'noop', data: data(i + k), opts })));
      }
      const count = countTo(total);
      const w = await worker(count.tick, false);
      await around?.before();
      const t0 = performance.now();
      void w.run();
      await count.done;
      const rate = total / ((performance.now() - t0) / 1000);
      await around?.after();
      await w.close();
      return rate;
    },
    async flow(total) {
      const count = countTo(total);
      const w = await worker(count.tick, true);
      const t0 = performance.now();
      await drive(total, (i) => queue.add('noop', data(i), opts));
      await count.done;
      const rate = total / ((performance.now() - t0) / 1000);
      await w.close();
      return rate;
    },
    async close() {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// sprocd: the in-process node of bench/bench-node.ts (concurrency 16, the no-op procedure).

export async function sprocdSide(
  redisUrl: string,
  label = 'sprocd',
  env: Record<string, string> = {},
): Promise<Side & { bench: BenchNode }> {
  const bench = await startBenchNode(redisUrl, 'graphile', env);
  const { executions, worker } = bench;
  return {
    label,
    bench,
    async drain(total, around) {
      // The node's worker is paused while the executions are queued, so that only the drain is timed.
      // Counted from before: a fetch already waiting when it paused still takes the first one.
      const count = countTo(total);
      worker.on('completed', count.tick);
      await worker.pause(true);
      const batches = Math.ceil(total / BULK);
      let next = 0;
      await Promise.all(
        Array.from({ length: 4 }, async () => {
          while (next < batches) {
            const b = next++;
            const n = Math.min(BULK, total - b * BULK);
            await executions.executeBatch(Array.from({ length: n }, () => ({ procedure: 'noop' })));
          }
        }),
      );
      await around?.before();
      const t0 = performance.now();
      await worker.resume();
      await count.done;
      const rate = total / ((performance.now() - t0) / 1000);
      await around?.after();
      worker.off('completed', count.tick);
      return rate;
    },
    flow: (total) => bench.rate('noop', total),
    close: () => bench.stop(),
  };
}

// ---------------------------------------------------------------------------------------------
// graphile-worker: a runner in this process with a no-op task, on PostgreSQL.

/** One graphile-worker configuration. */
export interface GraphileConfig {
  label: string;
  concurrentJobs: number;
  /** localQueue.size; 0: no local queue (graphile-worker's default). */
  localQueue: number;
  /** completeJobBatchDelay and failJobBatchDelay; -1: no batching (the default). */
  batchDelay: number;
  /** PostgreSQL's synchronous_commit for the worker's and the enqueuer's sessions. */
  synchronousCommit: 'on' | 'off';
}

type GraphileModule = typeof import('graphile-worker');

async function graphileSide(gw: GraphileModule, config: GraphileConfig): Promise<Side> {
  const url = `${DB_URL}${DB_URL.includes('?') ? '&' : '?'}options=-c%20synchronous_commit%3D${config.synchronousCommit}`;
  // The adds of the flow: 16 connections for the 64 adds in flight (one query per connection at a time).
  const pool: PgPool = new pg.Pool({ connectionString: url, max: CONCURRENCY });
  pool.on('error', () => undefined);
  pool.on('connect', (client) => client.on('error', () => undefined));
  const utils = await gw.makeWorkerUtils({ pgPool: pool });
  const logger = new gw.Logger(() => () => undefined);
  let onTask: () => void = () => undefined;
  const preset = {
    worker: {
      connectionString: url,
      concurrentJobs: config.concurrentJobs,
      maxPoolSize: config.concurrentJobs + 2,
      pollInterval: 2000,
      ...(config.localQueue > 0 ? { localQueue: { size: config.localQueue } } : {}),
      completeJobBatchDelay: config.batchDelay,
      failJobBatchDelay: config.batchDelay,
    },
  };
  const taskList = { noop: async () => void onTask() };
  const empty = async () => {
    // Batched completions are filed after the task returned: done means the jobs table is empty.
    for (;;) {
      const { rows } = await pool.query<{ n: string }>(
        'select count(*) as n from graphile_worker._private_jobs',
      );
      if (rows[0]?.n === '0') {
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  };
  const start = async () => gw.run({ preset, taskList, logger, noHandleSignals: true });
  return {
    label: `graphile-worker ${config.label}`,
    share: { drain: config.localQueue > 0 ? 1 : 0.2, flow: 0.1 },
    async drain(total) {
      const runner = await start();
      const count = countTo(total);
      onTask = count.tick;
      // All jobs in one transaction: the running worker sees them only at COMMIT, where the clock starts.
      const client = await pool.connect();
      let t0: number;
      try {
        await client.query('begin');
        for (let i = 0; i < total; i += BULK) {
          const n = Math.min(BULK, total - i);
          await client.query(
            `select from graphile_worker.add_jobs(array(select row('noop', json_build_object('i', g), null, null, null, null, null, null)::graphile_worker.job_spec from generate_series($1::int, $2::int) g))`,
            [i, i + n - 1],
          );
        }
        t0 = performance.now();
        await client.query('commit');
      } finally {
        client.release();
      }
      await count.done;
      await empty();
      const rate = total / ((performance.now() - t0) / 1000);
      await runner.stop();
      return rate;
    },
    async flow(total) {
      const runner = await start();
      const count = countTo(total);
      onTask = count.tick;
      const t0 = performance.now();
      await drive(total, (i) => utils.addJob('noop', { i }));
      await count.done;
      await empty();
      const rate = total / ((performance.now() - t0) / 1000);
      await runner.stop();
      return rate;
    },
    async close() {
      await utils.release();
      await pool.end();
    },
  };
}

/** The configurations tried; the fastest one of each workload is the one measured in rounds. */
function graphileConfigs(): GraphileConfig[] {
  const fast = (c: number, size: number, sync: 'on' | 'off'): GraphileConfig => ({
    label: `fast (concurrency ${c}, localQueue ${size}, batch delay 0, synchronous_commit ${sync})`,
    concurrentJobs: c,
    localQueue: size,
    batchDelay: 0,
    synchronousCommit: sync,
  });
  return [
    fast(8, 500, 'on'),
    fast(16, 500, 'on'),
    fast(24, 500, 'on'),
    fast(16, 17, 'on'),
    fast(16, 500, 'off'),
    fast(24, 500, 'off'),
    fast(32, 1000, 'off'),
  ];
}

/** sprocd's settings tried for its fastest configuration: SPROCD_CONCURRENCY and SPROCD_WORKER_BATCH. */
const SPROCD_CONFIGS = [
  { concurrency: 32, batch: 32 },
  { concurrency: 64, batch: 64 },
  { concurrency: 128, batch: 128 },
  { concurrency: 256, batch: 256 },
  { concurrency: 512, batch: 256 },
];
/** What the tuning found fastest here (docs/BENCHMARKS.md), taken without one (GRAPHILE_TUNE=0). */
const SPROCD_FASTEST_HERE = { concurrency: 64, batch: 64 };

/**
 * sprocd in its fastest configuration, as graphile-worker is measured in its own: with `tune`, the
 * better of two drains of each of SPROCD_CONFIGS (after a warm-up), the fastest kept.
 */
async function fastestSprocd(
  redisUrl: string,
  tune: boolean,
  log: (line: string) => void,
): Promise<Side & { bench: BenchNode }> {
  const start = (c: { concurrency: number; batch: number }) =>
    sprocdSide(redisUrl, `sprocd fastest (concurrency ${c.concurrency}, batch ${c.batch})`, {
      SPROCD_CONCURRENCY: String(c.concurrency),
      SPROCD_WORKER_BATCH: String(c.batch),
    });
  if (!tune) {
    return start(SPROCD_FASTEST_HERE);
  }
  let best: { side: Side & { bench: BenchNode }; rate: number } | undefined;
  for (const config of SPROCD_CONFIGS) {
    const side = await start(config);
    await side.drain(2000);
    // The better of two drains, as graphile-worker's configurations are tried.
    const total = Number(process.env.GRAPHILE_TOTAL ?? 20_000);
    const rate = Math.max(await side.drain(total), await side.drain(total));
    log(`  tuning ${side.label}: drain ${rate.toFixed(0)} jobs/s`);
    if (!best || rate > best.rate) {
      await best?.side.close();
      best = { side, rate };
    } else {
      await side.close();
    }
  }
  log(`  sprocd's fastest: ${best!.side.label}`);
  return best!.side;
}

/** What the tuning found fastest here for both workloads (docs/BENCHMARKS.md). */
const FASTEST_HERE: GraphileConfig = {
  label: 'fast (concurrency 16, localQueue 500, batch delay 0, synchronous_commit off)',
  concurrentJobs: 16,
  localQueue: 500,
  batchDelay: 0,
  synchronousCommit: 'off',
};

const DEFAULT_CONFIG: GraphileConfig = {
  label: 'default (concurrency 16, no local queue, no batching, synchronous_commit on)',
  concurrentJobs: CONCURRENCY,
  localQueue: 0,
  batchDelay: -1,
  synchronousCommit: 'on',
};

// ---------------------------------------------------------------------------------------------

function sized(side: Side, workload: 'drain' | 'flow', total: number): number {
  return Math.round(total * (side.share?.[workload] ?? 1));
}

async function vacuum(pool: PgPool): Promise<void> {
  // Every run ends with the jobs table empty: it is emptied for good, so that no run's dead rows or
  // grown indexes slow the next one's job fetches (each graphile-worker run starts on a fresh table).
  await pool.query('truncate graphile_worker._private_jobs');
  await pool.query('vacuum analyze graphile_worker._private_jobs');
}

/** Runs the benchmark; `log` gets the tuning and each round as they go. */
export async function benchGraphile(
  tcpUrl: string,
  socketUrl: string | undefined,
  log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<Row[]> {
  if (OVER_SOCKETS && !socketUrl) {
    throw new Error('GRAPHILE_TRANSPORT=socket needs the benchmark Redis on a Unix socket (no REDIS_URL)');
  }
  const redisUrl = OVER_SOCKETS ? (socketUrl as string) : tcpUrl;
  log(`  transport: ${OVER_SOCKETS ? 'Unix sockets' : 'TCP on 127.0.0.1'} (${redisUrl}; ${DB_URL})`);
  process.env.NO_LOG_SUCCESS = '1'; // graphile-worker reads it at import: no per-job log line to format
  const gw = await import('graphile-worker');
  const drainTotal = Number(process.env.GRAPHILE_TOTAL ?? 20_000);
  const flowTotal = Number(process.env.GRAPHILE_FLOW_TOTAL ?? 20_000);
  const rounds = Number(process.env.GRAPHILE_ROUNDS ?? 5);
  await gw.runMigrations({ connectionString: DB_URL });
  const admin = new pg.Pool({ connectionString: DB_URL, max: 1 });

  const bull = bareBullmq(redisUrl);
  const ours = await sprocdSide(redisUrl);
  const oursFastest = await fastestSprocd(redisUrl, process.env.GRAPHILE_TUNE !== '0', log);
  // The same node with one Redis call per execution (BullMQ's own Worker loop): what the batches gain.
  const unbatched = await sprocdSide(redisUrl, 'sprocd, SPROCD_WORKER_BATCH=1', { SPROCD_WORKER_BATCH: '1' });
  const sides: Side[] = [];
  try {
    // Warm-up of each, then one round of each graphile-worker configuration per workload.
    const step = process.env.GRAPHILE_TRACE ? log : () => undefined;
    step(`  warm-up: bare BullMQ drain ${(await bull.drain(2000)).toFixed(0)}`);
    step(`  warm-up: sprocd drain ${(await ours.drain(2000)).toFixed(0)}`);
    step(`  warm-up: ${unbatched.label} drain ${(await unbatched.drain(2000)).toFixed(0)}`);
    step(`  warm-up: bare BullMQ flow ${(await bull.flow(2000)).toFixed(0)}`);
    step(`  warm-up: sprocd flow ${(await ours.flow(2000)).toFixed(0)}`);
    const tried: { config: GraphileConfig; drain: number; flow: number }[] = [];
    // GRAPHILE_TUNE=0: no tuning; the configuration the tuning found fastest on this machine (both workloads).
    const tune = process.env.GRAPHILE_TUNE !== '0';
    if (!tune) {
      tried.push({ config: DEFAULT_CONFIG, drain: 0, flow: 0 }, { config: FASTEST_HERE, drain: 1, flow: 1 });
    }
    for (const config of tune ? [DEFAULT_CONFIG, ...graphileConfigs()] : []) {
      const side = await graphileSide(gw, config);
      step(`  warm-up: ${side.label} drain ${(await side.drain(2000)).toFixed(0)}`);
      await vacuum(admin);
      // The better of two drains: a drain takes graphile-worker a second or two, noisy on 2 cores.
      const drain1 = await side.drain(sized(side, 'drain', drainTotal));
      await vacuum(admin);
      const drain = Math.max(drain1, await side.drain(sized(side, 'drain', drainTotal)));
      await vacuum(admin);
      const flow = await side.flow(sized(side, 'flow', flowTotal));
      await vacuum(admin);
      await side.close();
      tried.push({ config, drain, flow });
      log(`  tuning ${config.label}: drain ${drain.toFixed(0)} jobs/s, flow ${flow.toFixed(0)} jobs/s`);
    }
    const fastest = tried.slice(1);
    // The drain's two fastest configurations both run in every round, and the round's graphile-worker
    // figure is the better of them: one tuning drain each cannot tell apart configurations a few
    // percent apart on this VM, so neither is dropped on that one drain's word.
    const byDrain = [...fastest].sort((a, b) => b.drain - a.drain);
    const bestDrain = byDrain[0]!.config;
    const runnerUp = byDrain[1]?.config;
    const bestFlow = fastest.reduce((a, b) => (b.flow > a.flow ? b : a)).config;
    log(`  best for drain: ${bestDrain.label}${runnerUp ? `, then ${runnerUp.label}` : ''}`);
    log(`  best for flow: ${bestFlow.label}`);

    const gDefault = await graphileSide(gw, DEFAULT_CONFIG);
    const gDrain = await graphileSide(gw, bestDrain);
    const gDrain2 = runnerUp ? await graphileSide(gw, runnerUp) : undefined;
    const gFlow = bestFlow === bestDrain ? gDrain : await graphileSide(gw, bestFlow);
    sides.push(gDefault, gDrain);
    if (gDrain2) {
      sides.push(gDrain2);
    }
    if (gFlow !== gDrain) {
      sides.push(gFlow);
    }
    const runs = { drain: new Map<string, number[]>(), flow: new Map<string, number[]>() };
    const record = (map: Map<string, number[]>, key: string, rate: number) =>
      map.set(key, [...(map.get(key) ?? []), rate]);
    for (let i = 0; i < rounds; i++) {
      const graphileDrains: number[] = [];
      const drainSides = [
        ours,
        oursFastest,
        bull,
        gDrain,
        ...(gDrain2 ? [gDrain2] : []),
        gDefault,
        unbatched,
      ];
      for (const side of alternateOrder(i, drainSides)) {
        const rate = await side.drain(sized(side, 'drain', drainTotal));
        await vacuum(admin);
        if (side === gDrain || side === gDrain2) {
          graphileDrains.push(rate);
        } else {
          record(runs.drain, side.label, rate);
        }
      }
      record(runs.drain, 'best', Math.max(...graphileDrains));
      const flowOrder = alternateOrder(i, [ours, oursFastest, bull, gFlow, gDefault, unbatched]);
      for (const side of flowOrder) {
        const key = side === gFlow ? 'best' : side.label;
        record(runs.flow, key, await side.flow(sized(side, 'flow', flowTotal)));
        await vacuum(admin);
      }
      const show = (map: Map<string, number[]>) =>
        [...map].map(([k, v]) => `${k} ${(v.at(-1) ?? 0).toFixed(0)}`).join(', ');
      log(`  round ${i + 1}: drain ${show(runs.drain)}; flow ${show(runs.flow)}`);
    }
    const rows: Row[] = [];
    for (const [workload, map, best, total] of [
      ['drain', runs.drain, bestDrain, drainTotal],
      ['flow', runs.flow, bestFlow, flowTotal],
    ] as const) {
      const m = (key: string) => median(map.get(key) ?? []);
      // Ratios within each round, then their median: the machine's speed drifts between rounds.
      const r = (a: string, b: string) => {
        const bs = map.get(b) ?? [];
        return median((map.get(a) ?? []).map((x, i) => x / (bs[i] ?? NaN)));
      };
      const s = m('sprocd');
      const u = m(unbatched.label);
      const f = m(oursFastest.label);
      const b = m('bare BullMQ');
      const g = m('best');
      const d = m(gDefault.label);
      const what =
        workload === 'drain' ? `${total} queued first, then drained` : `${total} adds while running`;
      rows.push(
        { name: `${workload} (${what}): sprocd`, value: s, unit: 'jobs/s' },
        { name: `${workload}: ${oursFastest.label}`, value: f, unit: 'jobs/s' },
        { name: `${workload}: ${unbatched.label}`, value: u, unit: 'jobs/s' },
        { name: `${workload}: bare BullMQ (concurrency ${CONCURRENCY})`, value: b, unit: 'jobs/s' },
        {
          name:
            workload === 'drain' && runnerUp
              ? `${workload}: graphile-worker, the better of ${best.label} and ${runnerUp.label}`
              : `${workload}: graphile-worker ${best.label}`,
          value: g,
          unit: 'jobs/s',
        },
        { name: `${workload}: graphile-worker ${DEFAULT_CONFIG.label}`, value: d, unit: 'jobs/s' },
        {
          name: `${workload}: graphile-worker best / bare BullMQ (median of rounds)`,
          value: r('best', 'bare BullMQ'),
          unit: 'x',
        },
        {
          name: `${workload}: sprocd / graphile-worker best (median of rounds)`,
          value: r('sprocd', 'best'),
          unit: 'x',
        },
        {
          name: `${workload}: sprocd / bare BullMQ (median of rounds)`,
          value: r('sprocd', 'bare BullMQ'),
          unit: 'x',
        },
        {
          name: `${workload}: ${oursFastest.label} / graphile-worker best (median of rounds)`,
          value: r(oursFastest.label, 'best'),
          unit: 'x',
        },
        {
          name: `${workload}: ${unbatched.label} / graphile-worker best (median of rounds)`,
          value: r(unbatched.label, 'best'),
          unit: 'x',
        },
      );
    }
    return rows;
  } finally {
    for (const side of sides) {
      await side.close();
    }
    await bull.close();
    await ours.close();
    await oursFastest.close();
    await unbatched.close();
    await admin.end();
  }
}
