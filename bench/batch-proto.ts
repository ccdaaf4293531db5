/**
 * Batched fetch and completion, a prototype (docs/BENCHMARKS.md, "Batched fetch and completion
 * (prototype)"): how fast can bench/graphile.ts's drain (BATCH_TOTAL no-op jobs, default 20,000,
 * queued in bulk first, then drained) go when the worker takes and files jobs in batches on BullMQ's
 * exact data layout? Beside bare BullMQ's Worker (concurrency 16), in the same run, rounds rotating
 * the order (BATCH_ROUNDS, default 3): bench/batch/worker.ts in mode 'script' (one EVALSHA of
 * BullMQ's moveToFinished and moveToActive bodies in a loop per round trip) and 'pipeline' (a pipeline
 * of BullMQ's own scripts per round trip), K (jobs held locally) in BATCH_K (default 1,8,32,100).
 * Per drain: jobs/s, node CPU (process.cpuUsage) and Redis CPU (INFO cpu) per job, EVALSHA calls and
 * µs per job (INFO commandstats). Then a correctness pass per mode (BATCH_CHECK jobs, default 5,000,
 * kept after completion): every job completed exactly once, with its return value, finishedOn and
 * processedOn, one 'active' and one 'completed' event each in the stream and at a QueueEvents, nothing
 * left active or locked, and a few jobs that outlive the lock duration twice over (lock renewal).
 * Run on its own: `node --import tsx bench/batch-proto.ts`; it starts its own redis-server.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue, QueueEvents } from 'bullmq';
import { Redis } from 'ioredis';
import { startRedisServer } from '../src/redis/embedded.js';
import { bareBullmq, type Around } from './graphile.js';
import { BatchWorker, type BatchWorkerOptions } from './batch/worker.js';

const CONCURRENCY = 16;
const BULK = 1000;
const total = Number(process.env.BATCH_TOTAL ?? 20_000);
const rounds = Number(process.env.BATCH_ROUNDS ?? 3);
const ks = (process.env.BATCH_K ?? '1,8,32,100').split(',').map(Number);
// K values also run with two round trips in flight (script mode): the node works while Redis runs one.
const depth2 = (process.env.BATCH_DEPTH2_K ?? '32,100').split(',').filter(Boolean).map(Number);
const checkTotal = Number(process.env.BATCH_CHECK ?? 5000);
const print = (line: string) => process.stdout.write(`${line}\n`);

interface Measured {
  rate: number;
  nodeUs: number;
  redisUs: number;
  evalshaCalls: number;
  evalshaUs: number;
  /** µs per job of the commands the scripts run (commandstats of everything but EVALSHA and INFO). */
  innerUs: number;
}

interface Drainer {
  label: string;
  drain(total: number, around?: Around): Promise<number>;
  close(): Promise<void>;
}

async function redisCpu(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function evalsha(redis: Redis): Promise<{ calls: number; usec: number; inner: number }> {
  const out = { calls: 0, usec: 0, inner: 0 };
  for (const m of (await redis.info('commandstats')).matchAll(/cmdstat_([^:]+):calls=(\d+),usec=(\d+)/g)) {
    if (m[1] === 'evalsha') {
      out.calls = Number(m[2]);
      out.usec = Number(m[3]);
    } else if (m[1] !== 'info') {
      out.inner += Number(m[3]);
    }
  }
  return out;
}

/** One drain with the CPU and commandstats deltas around its timed part. */
async function measure(side: Drainer, probe: Redis, n: number): Promise<Measured> {
  let cpu0 = process.cpuUsage();
  let redis0 = 0;
  let es0 = { calls: 0, usec: 0, inner: 0 };
  const out = { nodeUs: 0, redisUs: 0, evalshaCalls: 0, evalshaUs: 0, innerUs: 0 };
  const rate = await side.drain(n, {
    before: async () => {
      es0 = await evalsha(probe);
      redis0 = await redisCpu(probe);
      cpu0 = process.cpuUsage();
    },
    after: async () => {
      const cpu = process.cpuUsage(cpu0);
      out.nodeUs = (cpu.user + cpu.system) / n;
      out.redisUs = (((await redisCpu(probe)) - redis0) * 1e6) / n;
      const es = await evalsha(probe);
      out.evalshaCalls = (es.calls - es0.calls) / n;
      out.evalshaUs = (es.usec - es0.usec) / n;
      out.innerUs = (es.inner - es0.inner) / n;
    },
  });
  return { rate, ...out };
}

const data = (i: number) => ({ procedure: 'noop', params: null, id: String(i), name: '' });
const jobOpts = { removeOnComplete: { count: 1000, age: 86400 }, removeOnFail: { count: 1000, age: 86400 } };

/** The batched worker as a drain side (the same jobs and options as bench/graphile.ts's BullMQ side). */
function batchSide(url: string, mode: BatchWorkerOptions['mode'], k: number, depth = 1): Drainer {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const prefix = `{bench-batch-${mode}-${k}-${depth}-${Date.now()}}`;
  const queue = new Queue('procedures', { connection, prefix });
  return {
    label: `${mode} K=${k}${depth > 1 ? ` depth ${depth}` : ''}`,
    async drain(n, around) {
      for (let i = 0; i < n; i += BULK) {
        const m = Math.min(BULK, n - i);
        await queue.addBulk(
          Array.from({ length: m }, (_, j) => ({ name: 'noop', data: data(i + j), opts: jobOpts })),
        );
      }
      const worker = new BatchWorker(connection, queue, {
        mode,
        k,
        concurrency: Math.min(CONCURRENCY, k),
        depth,
        lockDuration: 30_000,
        processor: async () => null,
      });
      await around?.before();
      const t0 = performance.now();
      await worker.run();
      const rate = n / ((performance.now() - t0) / 1000);
      await around?.after();
      if (worker.stats.errors.length > 0 || worker.stats.filed !== n) {
        throw new Error(
          `${mode} K=${k}: filed ${worker.stats.filed} of ${n}, ${worker.stats.errors.slice(0, 5).join('; ')}`,
        );
      }
      return rate;
    },
    async close() {
      await queue.obliterate({ force: true });
      await queue.close();
      connection.disconnect();
    },
  };
}

/** The correctness pass: jobs kept after completion, so that each can be looked at. */
async function check(
  url: string,
  mode: BatchWorkerOptions['mode'],
  k: number,
  depth: number,
): Promise<string[]> {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const prefix = `{bench-batch-check-${mode}-${k}}`;
  const queue = new Queue('procedures', {
    connection,
    prefix,
    streams: { events: { maxLen: 10 * checkTotal } },
  });
  const events = new QueueEvents('procedures', {
    connection: { host: '127.0.0.1', port: Number(new URL(url).port) },
    prefix,
  });
  await events.waitUntilReady();
  const heard = new Map<string, number>();
  events.on('completed', ({ jobId }) => heard.set(jobId, (heard.get(jobId) ?? 0) + 1));
  const problems: string[] = [];
  const slowEvery = 997; // a few jobs outlive the lock twice over: only lock renewal keeps them
  const lockDuration = 600;
  try {
    for (let i = 0; i < checkTotal; i += BULK) {
      const m = Math.min(BULK, checkTotal - i);
      await queue.addBulk(
        Array.from({ length: m }, (_, j) => ({
          name: 'noop',
          data: data(i + j),
          opts: { removeOnComplete: false },
        })),
      );
    }
    const ran = new Map<string, number>();
    const worker = new BatchWorker(connection, queue, {
      mode,
      k,
      concurrency: Math.min(CONCURRENCY, k),
      depth,
      lockDuration,
      name: 'batch-proto',
      processor: async (job) => {
        ran.set(job.id!, (ran.get(job.id!) ?? 0) + 1);
        const id = Number((job.data as { id: string }).id);
        await sleep(id % slowEvery === 0 ? 2.5 * lockDuration : id % 3);
        return { echo: id };
      },
    });
    await worker.run();
    problems.push(...worker.stats.errors);
    if (worker.stats.renewals === 0) {
      problems.push('no lock renewal ran');
    }
    const counts = await queue.getJobCounts();
    const want = {
      completed: checkTotal,
      active: 0,
      wait: 0,
      failed: 0,
      delayed: 0,
      prioritized: 0,
      paused: 0,
    };
    for (const [state, n] of Object.entries(want)) {
      if ((counts[state] ?? 0) !== n) {
        problems.push(`getJobCounts ${state} ${counts[state]} (want ${n})`);
      }
    }
    const stream = await connection.xrange(queue.keys.events!, '-', '+');
    const seen = { active: new Map<string, number>(), completed: new Map<string, number>() };
    for (const [, fields] of stream) {
      const f = new Map<string, string>();
      for (let i = 0; i < fields.length; i += 2) {
        f.set(fields[i]!, fields[i + 1]!);
      }
      const ev = f.get('event');
      if (ev === 'active' || ev === 'completed') {
        const id = f.get('jobId')!;
        seen[ev].set(id, (seen[ev].get(id) ?? 0) + 1);
      }
    }
    for (let i = 0; i < 50 && heard.size < checkTotal; i++) {
      await sleep(100); // QueueEvents reads the stream behind the drain
    }
    const jobs = await queue.getJobs(['completed'], 0, -1);
    const byId = new Map(jobs.map((j) => [j.id!, j]));
    const ids = [...byId.keys()];
    if (ids.length !== checkTotal) {
      problems.push(`${ids.length} completed jobs (want ${checkTotal})`);
    }
    let locks = 0;
    for (const id of ids) {
      const job = byId.get(id)!;
      const n = Number((job.data as { id: string }).id);
      const bad = (what: string) => problems.length < 20 && problems.push(`job ${id}: ${what}`);
      if (ran.get(id) !== 1) {
        bad(`ran ${ran.get(id) ?? 0} times`);
      }
      if (JSON.stringify(job.returnvalue) !== JSON.stringify({ echo: n })) {
        bad(`returnvalue ${JSON.stringify(job.returnvalue)}`);
      }
      if (!job.finishedOn || !job.processedOn || job.finishedOn < job.processedOn) {
        bad('finishedOn/processedOn');
      }
      if (job.attemptsMade !== 1 || job.attemptsStarted !== 1) {
        bad(`attempts ${job.attemptsMade}/${job.attemptsStarted}`);
      }
      if (job.processedBy !== 'batch-proto') {
        bad(`processedBy ${job.processedBy}`);
      }
      if (seen.active.get(id) !== 1 || seen.completed.get(id) !== 1) {
        bad(`events active ${seen.active.get(id)} completed ${seen.completed.get(id)}`);
      }
      if (heard.get(id) !== 1) {
        bad(`QueueEvents heard 'completed' ${heard.get(id) ?? 0} times`);
      }
      locks += await connection.exists(`${queue.keys['']}${id}:lock`);
    }
    if ((await queue.getJobState(ids[0]!)) !== 'completed') {
      problems.push('getJobState is not completed');
    }
    if (locks > 0) {
      problems.push(`${locks} locks left`);
    }
    const stalled = await connection.scard(queue.keys.stalled!);
    if (stalled > 0) {
      problems.push(`${stalled} jobs in the stalled set`);
    }
    print(
      `  check ${mode} K=${k} depth ${depth}: ${checkTotal} jobs, ${worker.stats.roundTrips} round trips, ${worker.stats.renewals} lock renewals, ` +
        `${problems.length === 0 ? 'all correct' : `${problems.length} problems`}`,
    );
  } finally {
    await events.close();
    await queue.obliterate({ force: true });
    await queue.close();
    connection.disconnect();
  }
  return problems;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-'));
const server = await startRedisServer({ dir, appendonly: false });
const probe = new Redis(server.url);
print(
  `machine: ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, Node ${process.version}; drain of ${total}, ${rounds} rounds`,
);
try {
  const sides: Drainer[] = [
    bareBullmq(server.url),
    ...ks.map((k) => batchSide(server.url, 'script', k)),
    ...depth2.map((k) => batchSide(server.url, 'script', k, 2)),
    ...ks.map((k) => batchSide(server.url, 'pipeline', k)),
  ];
  for (const side of sides) {
    await side.drain(2000); // warm-up (JIT, the scripts loaded)
  }
  const runs = new Map<string, Measured[]>(sides.map((s) => [s.label, []]));
  for (let r = 0; r < rounds; r++) {
    const order = [...sides.slice(r % sides.length), ...sides.slice(0, r % sides.length)];
    const line: string[] = [];
    for (const side of order) {
      const m = await measure(side, probe, total);
      runs.get(side.label)!.push(m);
      line.push(`${side.label} ${m.rate.toFixed(0)}`);
    }
    // Ratios within the round, as the machine's speed drifts between rounds.
    const bull = runs.get('bare BullMQ')![r]!.rate;
    print(`round ${r + 1}: ${line.join(', ')} (bare BullMQ ${bull.toFixed(0)})`);
  }
  print(
    '\n| side | jobs/s (median) | × bare BullMQ (median of rounds) | node CPU µs/job | Redis CPU µs/job | EVALSHA calls/job | EVALSHA µs/job | of which inner commands |',
  );
  print('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const bullRuns = runs.get('bare BullMQ')!;
  for (const side of sides) {
    const ms = runs.get(side.label)!;
    const ratio = median(ms.map((m, i) => m.rate / bullRuns[i]!.rate));
    print(
      `| ${side.label} | ${median(ms.map((m) => m.rate)).toFixed(0)} | ${ratio.toFixed(2)} | ${median(ms.map((m) => m.nodeUs)).toFixed(1)} | ` +
        `${median(ms.map((m) => m.redisUs)).toFixed(1)} | ${median(ms.map((m) => m.evalshaCalls)).toFixed(3)} | ${median(ms.map((m) => m.evalshaUs)).toFixed(1)} | ${median(ms.map((m) => m.innerUs)).toFixed(1)} |`,
    );
  }
  for (const side of sides) {
    await side.close();
  }
  print('');
  const problems: string[] = [];
  for (const [mode, k, depth] of [
    ['script', 1, 1],
    ['script', 32, 1],
    ['script', 32, 2],
    ['pipeline', 1, 1],
    ['pipeline', 32, 1],
  ] as const) {
    problems.push(
      ...(await check(server.url, mode, k, depth)).map((p) => `${mode} K=${k} depth ${depth}: ${p}`),
    );
  }
  for (const p of problems) {
    print(`  PROBLEM ${p}`);
  }
  process.exitCode = problems.length > 0 ? 1 : 0;
} finally {
  probe.disconnect();
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
