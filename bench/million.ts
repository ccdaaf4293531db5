/**
 * A million waiting executions (issue 11): enqueues 0 → MILLION_TOTAL (default 1,000,000) executions
 * from code in batches of 1,000 with no worker running, printing the enqueue rate of each tenth (the
 * curve) and Redis `used_memory` per execution; then, at that size, the latency of a lookup by number,
 * the abort, pause and resume of a waiting execution and a list filtered by procedure, beside
 * BullMQ's own getJobState on the same jobs. It runs on its own redis-server (no persistence, no
 * memory cap) on a free port.
 * About two minutes: not in the default `npm run bench`; run it with BENCH_ONLY=million.
 *
 * Knobs: MILLION_TOTAL (default 1,000,000; the curve has ten steps whatever the total, so 10,000,000
 * gives one per million); MILLION_MAX_MEMORY_GB (default 12) stops the enqueue when Redis passes it;
 * MILLION_LOOKUPS=0 skips the latencies; MILLION_BACKUP=1 backs the deployment up (what
 * POST /v1/backups runs), MILLION_RESTORE=1 (with the backup) restores that file into an empty
 * deployment, MILLION_RESTART=1 starts a node against the waiting executions (bench/million-ops.ts).
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { Executions } from '../src/procedures/executions.js';
import { ProcedureRegistry } from '../src/procedures/registry.js';
import { executionJobKey } from '../src/redis/bullmq-internals.js';
import { startRedisServer } from '../src/redis/embedded.js';
import { createKeys, jobIdOf } from '../src/redis/keys.js';
import {
  SLOW_MS,
  benchBackupAt,
  benchRestartAt,
  benchRestoreAt,
  resetSlowlog,
  slowest,
} from './million-ops.js';
import type { Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const BATCH = 1000;
const IN_FLIGHT = 4;
/** One execution in this many is of another procedure: the rare one the filtered list looks for. */
const RARE_EVERY = 1000;
const on = (knob: string, byDefault = false) => (process.env[knob] ?? (byDefault ? '1' : '0')) !== '0';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

/** p50 and p99 (ms) of `samples` runs of `step`, run one after another. */
async function latency(samples: number, step: (i: number) => Promise<unknown>): Promise<[number, number]> {
  const times: number[] = [];
  for (let i = 0; i < samples; i++) {
    const t = performance.now();
    await step(i);
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return [percentile(times, 50), percentile(times, 99)];
}

async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? NaN);
}

/** Runs the benchmark; `log` gets the curve as it goes. */
export async function benchMillion(
  total = Number(process.env.MILLION_TOTAL ?? 1_000_000),
  log: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Promise<Row[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-million-'));
  const server = await startRedisServer({ dir, appendonly: false });
  const redis = new Redis(server.url, { maxRetriesPerRequest: null });
  const keys = createKeys('million');
  const registry = new ProcedureRegistry(path.join(HERE, 'jobs'));
  await registry.load();
  const executions = new Executions(
    redis,
    keys,
    registry,
    { keepFinished: 1000, keepFinishedSeconds: 86_400 },
    () => new Redis(server.url, { maxRetriesPerRequest: null }),
  );
  const rows: Row[] = [];
  try {
    const memory0 = await usedMemory(redis);
    await resetSlowlog(redis);
    const step = total / 10;
    let queued = 0;
    let stepStart = performance.now();
    const t0 = stepStart;
    let next = 0;
    let mark = step;
    const batches = Math.ceil(total / BATCH);
    const maxMemory = Number(process.env.MILLION_MAX_MEMORY_GB ?? 12) * 1e9;
    let memoryCheck = 0;
    let stopped: string | undefined;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < batches && stopped === undefined) {
          if (++memoryCheck % 100 === 0) {
            const memory = await usedMemory(redis);
            if (memory > maxMemory) {
              stopped = `Redis used_memory ${(memory / 1e9).toFixed(2)} GB passed MILLION_MAX_MEMORY_GB`;
              break;
            }
          }
          const b = next++;
          const size = Math.min(BATCH, total - b * BATCH);
          await executions.executeBatch(
            Array.from({ length: size }, (_, i) => {
              const n = b * BATCH + i;
              return n % RARE_EVERY === 0
                ? { procedure: 'mark', params: { n } }
                : { procedure: 'noop', params: { n } };
            }),
          );
          queued += size;
          if (queued >= mark) {
            mark += step;
            const now = performance.now();
            const rate = step / ((now - stepStart) / 1000);
            log(
              `  ${String(Math.round(queued / 1000)).padStart(5)}k queued: ${rate.toFixed(0)} executions/s`,
            );
            rows.push({
              name: `enqueue rate up to ${Math.round(queued / 1000)}k`,
              value: rate,
              unit: 'executions/s',
            });
            stepStart = now;
          }
        }
      }),
    );
    if (stopped !== undefined) {
      throw new Error(`stopped at ${queued} queued: ${stopped}`);
    }
    const overall = total / ((performance.now() - t0) / 1000);
    rows.push({
      name: `enqueue rate 0 → ${total / 1000}k, batches of ${BATCH}`,
      value: overall,
      unit: 'executions/s',
    });
    const slow = await slowest(redis);
    log(
      `  enqueue: Redis commands over ${SLOW_MS} ms: ${slow.count}, longest ${slow.maxMs.toFixed(1)} ms ${slow.command}`,
    );
    rows.push({ name: `enqueue: Redis commands over ${SLOW_MS} ms`, value: slow.count, unit: '' });
    const memory = await usedMemory(redis);
    rows.push({
      name: 'Redis used_memory per waiting execution',
      value: (memory - memory0) / total,
      unit: 'B',
    });
    // One job hash, as Redis keeps it.
    const sample = executionJobKey(keys, Math.floor(total / 2));
    const [usage, encoding, fields] = await Promise.all([
      redis.memory('USAGE', sample),
      redis.object('ENCODING', sample),
      redis.hgetall(sample),
    ]);
    rows.push({ name: `one job hash: MEMORY USAGE (${String(encoding)})`, value: Number(usage), unit: 'B' });
    log(`  a job hash: ${JSON.stringify(fields)}`);
    const longest = Object.entries(fields).sort((a, b) => b[1].length - a[1].length)[0];
    log(`  longest field: ${longest?.[0]} (${longest?.[1].length} B)`);

    // Lookups at this size: random numbers among those queued (numbers start at 1).
    if (on('MILLION_LOOKUPS', true)) {
      await lookups(rows, executions, total, log);
    }
    let file: string | undefined;
    if (on('MILLION_BACKUP')) {
      const backup = await benchBackupAt(redis, server.url, 'million', path.join(dir, 'backups'), log);
      rows.push(...backup.rows);
      file = backup.file;
    }
    if (file !== undefined && on('MILLION_RESTORE')) {
      rows.push(
        ...(await benchRestoreAt(
          redis,
          server.url,
          'million-restored',
          path.join(dir, 'backups'),
          file,
          Math.floor(total / 2) + 1,
          log,
        )),
      );
    }
    if (on('MILLION_RESTART')) {
      rows.push(...(await benchRestartAt(redis, server.url, 'million', log)));
    }
  } finally {
    await executions.close();
    redis.disconnect();
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** The latencies of lookups, aborts, lists and counts at `total` waiting. */
async function lookups(
  rows: Row[],
  executions: Executions,
  total: number,
  log: (line: string) => void,
): Promise<void> {
  {
    const random = () => 1 + Math.floor(Math.random() * total);
    const [findP50, findP99] = await latency(300, () => executions.find(random()));
    const [bullP50, bullP99] = await latency(300, () => executions.queues[0]!.getJobState(jobIdOf(random())));
    const aborted = new Set<number>();
    const [abortP50, abortP99] = await latency(300, async () => {
      let n = random();
      while (aborted.has(n)) {
        n = random();
      }
      aborted.add(n);
      await executions.abort(n);
    });
    // PAUSE PROCESS of a waiting execution, then RESUME PROCESS of the same ones (before any worker
    // pops them): neither walks the wait list.
    const paused: number[] = [];
    const [pauseP50, pauseP99] = await latency(300, async () => {
      let n = random();
      while (aborted.has(n)) {
        n = random();
      }
      aborted.add(n);
      paused.push(n);
      await executions.pause(n);
    });
    const [resumeP50, resumeP99] = await latency(300, (i) => executions.resume(paused[i] as number));
    const [listP50, listP99] = await latency(100, () => executions.list({ procedure: 'noop', limit: 50 }));
    const [rareP50, rareP99] = await latency(100, () => executions.list({ procedure: 'mark', limit: 50 }));
    const [waitingP50, waitingP99] = await latency(100, () =>
      executions.list({ state: 'waiting', limit: 50 }),
    );
    const [countsP50, countsP99] = await latency(50, () => executions.counts());
    const at = `at ${total / 1000}k waiting`;
    rows.push(
      { name: `find by number ${at}: p50`, value: findP50, unit: 'ms' },
      { name: `find by number ${at}: p99`, value: findP99, unit: 'ms' },
      { name: `BullMQ getJobState ${at}: p50`, value: bullP50, unit: 'ms' },
      { name: `BullMQ getJobState ${at}: p99`, value: bullP99, unit: 'ms' },
      { name: `abort of a waiting execution ${at}: p50`, value: abortP50, unit: 'ms' },
      { name: `abort of a waiting execution ${at}: p99`, value: abortP99, unit: 'ms' },
      { name: `pause of a waiting execution ${at}: p50`, value: pauseP50, unit: 'ms' },
      { name: `pause of a waiting execution ${at}: p99`, value: pauseP99, unit: 'ms' },
      { name: `resume of a paused waiting execution ${at}: p50`, value: resumeP50, unit: 'ms' },
      { name: `resume of a paused waiting execution ${at}: p99`, value: resumeP99, unit: 'ms' },
      { name: `list ?procedure=noop (most) ${at}: p50`, value: listP50, unit: 'ms' },
      { name: `list ?procedure=noop (most) ${at}: p99`, value: listP99, unit: 'ms' },
      { name: `list ?procedure=mark (1 in ${RARE_EVERY}) ${at}: p50`, value: rareP50, unit: 'ms' },
      { name: `list ?procedure=mark (1 in ${RARE_EVERY}) ${at}: p99`, value: rareP99, unit: 'ms' },
      { name: `list ?state=waiting ${at}: p50`, value: waitingP50, unit: 'ms' },
      { name: `list ?state=waiting ${at}: p99`, value: waitingP99, unit: 'ms' },
      { name: `counts ${at}: p50`, value: countsP50, unit: 'ms' },
      { name: `counts ${at}: p99`, value: countsP99, unit: 'ms' },
    );
    const counts = await executions.counts();
    log(`  counts after the aborts: ${JSON.stringify(counts)}`);
  }
}
