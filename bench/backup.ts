/**
 * Backup and restore of 100,000 queued executions and a 10 MB storage: backup time and file size,
 * restore time into an empty deployment, and the longest pause a storage.use commit sees while the
 * backup runs (beside the longest one without a backup). Baselines from the same run: bare BullMQ
 * addBulk of the same jobs, and a bare pipelined read of the same data (no file, no checks).
 *
 * `npm run bench` runs it through bench/run.ts; standalone:
 * `REDIS_URL=redis://... npx tsx bench/backup.ts`.
 */
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import readline from 'node:readline';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue, type JobsOptions } from 'bullmq';
import type { RedisConnection } from '../src/redis/redis-connection.js';
import pino from 'pino';
import { loadSettings } from '../src/config.js';
import { BackupService, type BackupHost } from '../src/lifecycle/backup.js';
import { restoreBackup } from '../src/lifecycle/restore.js';
import { executionJobKey } from '../src/redis/bullmq-internals.js';
import { closeConnection, openConnection } from '../src/redis/connections.js';
import { createKeys, jobIdOf, QUEUE_NAME, type Keys } from '../src/redis/keys.js';
import { openSession, storageLayout, type SessionService } from '../src/session/index.js';
import { deleteDeploymentKeys } from '../src/redis/cleanup.js';

/** One figure. */
export interface Row {
  name: string;
  value: number;
  unit: string;
}

const HERE = path.dirname(fileURLToPath(import.meta.url));
const EXECUTIONS = Number(process.env.BENCH_BACKUP_EXECUTIONS ?? 100_000);
const STORAGE_BYTES = Number(process.env.BENCH_BACKUP_STORAGE_BYTES ?? 10 * 1024 * 1024);
const ENTRY_BYTES = 10_000;
const BATCH = 1000;

interface Deployment {
  keys: Keys;
  command: RedisConnection;
  session: SessionService;
  queue: Queue;
  backups: BackupService;
}

async function open(url: string, prefix: string, backupDir: string): Promise<Deployment> {
  const settings = loadSettings(
    {
      REDIS_URL: url,
      SPROCD_PREFIX: prefix,
      SPROCD_BACKUP_DIR: backupDir,
      SPROCD_BACKUP_KEEP: '2',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
      SPROCD_REDIS_TIMEOUT_MS: '10000',
      // Both deployments share it: the restore verifies the signature as a real one does.
      SPROCD_BACKUP_KEY: 'sprocd-benchmark-backup-key-0123456789abcdef',
      LOG_LEVEL: 'warn',
    },
    HERE,
  );
  const keys = createKeys(prefix);
  const name = `sprocd-bench-backup-${process.pid}`;
  const command = openConnection('command', { url, timeoutMs: 10_000, name });
  const log = pino({ level: 'warn' });
  const session = await openSession({
    command,
    redisUrl: url,
    keys,
    userName: 'sprocd',
    lockLeaseMs: 10_000,
    lockTimeoutMs: 60_000,
    maxEntryBytes: 1024 * 1024,
    connectionName: name,
    logger: log,
  });
  // The backup service needs only this of a node; the benchmark has no hooks and no workers (the
  // executions stay queued).
  const host: BackupHost = {
    name: 'bench',
    settings,
    keys,
    redis: command,
    log,
    runHook: async () => undefined,
    emitSystemEvent: () => undefined,
  };
  const queue = new Queue(QUEUE_NAME, { connection: command, prefix: keys.bullPrefix });
  await queue.waitUntilReady();
  return { keys, command, session, queue, backups: new BackupService(host) };
}

async function close(d: Deployment): Promise<void> {
  await d.session.close();
  await d.queue.close();
  await closeConnection(d.command);
}

/** Queues the executions as Execute on server does (same data and options), in addBulk batches. */
async function fill(d: Deployment): Promise<number> {
  const started = performance.now();
  for (let first = 1; first <= EXECUTIONS; first += BATCH) {
    const jobs = [];
    for (let n = first; n < first + BATCH && n <= EXECUTIONS; n++) {
      const opts: JobsOptions = {
        jobId: jobIdOf(n),
        attempts: 1,
        removeOnComplete: { count: 1000, age: 86_400 },
        removeOnFail: { count: 1000, age: 86_400 },
      };
      // 80% waiting, 10% delayed, 10% prioritized.
      if (n % 10 === 0) {
        opts.delay = 3_600_000;
      } else if (n % 10 === 5) {
        opts.priority = 5;
      }
      jobs.push({
        name: 'noop',
        data: { procedure: 'noop', params: { n, tag: `order-${n}` }, id: randomUUID(), name: '' },
        opts,
      });
    }
    await d.queue.addBulk(jobs);
  }
  await d.command.set(d.keys.sequence, String(EXECUTIONS));
  return performance.now() - started;
}

/** Writes ~STORAGE_BYTES of entries of ENTRY_BYTES each straight into the entries hash. */
async function fillStorage(d: Deployment): Promise<void> {
  const data = storageLayout(d.keys).data;
  const count = Math.ceil(STORAGE_BYTES / ENTRY_BYTES);
  for (let first = 0; first < count; first += 100) {
    const args: string[] = [];
    for (let i = first; i < Math.min(count, first + 100); i++) {
      // Half random (incompressible), half repetitive: neither the best nor the worst case for gzip.
      const json = JSON.stringify({
        i,
        random: randomBytes(ENTRY_BYTES / 4).toString('hex'),
        text: 'lorem ipsum '.repeat(Math.floor(ENTRY_BYTES / 2 / 12)),
      });
      args.push(`entry-${i}`, json);
    }
    await d.command.hset(data, ...args);
  }
}

/** The bare cost of reading the same data: entries hash and every job hash, pipelined, no file. */
async function bareRead(d: Deployment): Promise<number> {
  const started = performance.now();
  await d.command.hgetall(storageLayout(d.keys).data);
  for (let first = 1; first <= EXECUTIONS; first += BATCH) {
    const p = d.command.pipeline();
    for (let n = first; n < first + BATCH && n <= EXECUTIONS; n++) {
      p.hgetall(executionJobKey(d.keys, n));
    }
    await p.exec();
  }
  return performance.now() - started;
}

/** Sequential storage.use commits until `stop()`; returns the longest and median durations (ms). */
function commitLoop(d: Deployment): { stop(): Promise<{ max: number; p50: number; count: number }> } {
  let running = true;
  const durations: number[] = [];
  const loop = (async () => {
    while (running) {
      const t = performance.now();
      await d.session.session.storage.use('hot', (draft) => {
        draft.n = ((draft.n as number | undefined) ?? 0) + 1;
      });
      durations.push(performance.now() - t);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      const sorted = [...durations].sort((a, b) => a - b);
      return {
        max: sorted.at(-1) ?? NaN,
        p50: sorted[Math.floor(sorted.length / 2)] ?? NaN,
        count: sorted.length,
      };
    },
  };
}

/**
 * The same loop in another process (another node): it sees only the pauses Redis makes, not this
 * process's own CPU work. Started with `--commit-loop URL PREFIX`; prints its figures on "stop".
 */
async function commitLoopProcess(
  url: string,
  prefix: string,
): Promise<{ stop(): Promise<{ max: number; p50: number; count: number }> }> {
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), '--commit-loop', url, prefix],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = readline.createInterface({ input: proc.stdout });
  const next = () => new Promise<string>((resolve) => lines.once('line', resolve));
  const ready = await next();
  if (ready !== 'ready') {
    throw new Error(`commit loop process: ${ready}`);
  }
  return {
    async stop() {
      const answer = next();
      proc.stdin.write('stop\n');
      const result = JSON.parse(await answer) as { max: number; p50: number; count: number };
      proc.stdin.end();
      await new Promise((r) => proc.once('exit', r));
      return result;
    },
  };
}

async function commitLoopMain(url: string, prefix: string): Promise<void> {
  const d = await open(url, prefix, os.tmpdir());
  const loop = commitLoop(d);
  process.stdout.write('ready\n');
  const rl = readline.createInterface({ input: process.stdin });
  await new Promise<void>((resolve) => rl.once('line', () => resolve()));
  process.stdout.write(`${JSON.stringify(await loop.stop())}\n`);
  rl.close();
  await close(d);
}

export async function benchBackup(redisUrl: string): Promise<Row[]> {
  const tag = randomBytes(4).toString('hex');
  const source = `bench-backup-${tag}`;
  const target = `bench-restore-${tag}`;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sprocd-bench-backup-'));
  const a = await open(redisUrl, source, dir);
  const b = await open(redisUrl, target, dir);
  try {
    const addBulkMs = await fill(a);
    await fillStorage(a);
    const bareMs = await bareRead(a);

    const quiet = commitLoop(a);
    await new Promise((r) => setTimeout(r, 2000));
    const withoutBackup = await quiet.stop();

    const other = await commitLoopProcess(redisUrl, source);
    const busy = commitLoop(a);
    const record = await a.backups.run('manual');
    const duringBackup = await busy.stop();
    const otherNode = await other.stop();
    if (record.status !== 0 || !record.file) {
      throw new Error(`the benchmark backup failed: ${JSON.stringify(record)}`);
    }
    const restoreStarted = performance.now();
    const body = fs.createReadStream(record.file);
    const summary = await restoreBackup(b.backups, () => b.queue, { body, allowUnsigned: false });
    const restoreMs = performance.now() - restoreStarted;
    if (summary.executions !== EXECUTIONS) {
      throw new Error(`the benchmark restore queued ${summary.executions} executions, not ${EXECUTIONS}`);
    }
    const n = EXECUTIONS.toLocaleString('en-US');
    const mb = (STORAGE_BYTES / 1024 / 1024).toFixed(0);
    return [
      { name: `backup: ${n} queued executions + ${mb} MB storage`, value: record.durationMs, unit: 'ms' },
      { name: '  backup file size (gzip)', value: (record.size ?? 0) / 1024 / 1024, unit: 'MB' },
      {
        name: '  snapshot transaction (the only moment commits wait)',
        value: record.snapshotMs ?? NaN,
        unit: 'ms',
      },
      { name: '  bare pipelined read of the same data, no file (baseline)', value: bareMs, unit: 'ms' },
      { name: 'restore into an empty deployment', value: restoreMs, unit: 'ms' },
      { name: `  bare BullMQ addBulk of the same ${n} jobs (baseline)`, value: addBulkMs, unit: 'ms' },
      {
        name: 'longest storage.use commit during the backup, another node',
        value: otherNode.max,
        unit: 'ms',
      },
      {
        name: '  median storage.use commit during the backup, another node',
        value: otherNode.p50,
        unit: 'ms',
      },
      {
        name: '  longest storage.use commit during the backup, same node',
        value: duringBackup.max,
        unit: 'ms',
      },
      {
        name: '  median storage.use commit during the backup, same node',
        value: duringBackup.p50,
        unit: 'ms',
      },
      { name: '  longest storage.use commit without a backup (2 s)', value: withoutBackup.max, unit: 'ms' },
      { name: '  median storage.use commit without a backup', value: withoutBackup.p50, unit: 'ms' },
    ];
  } finally {
    await deleteDeploymentKeys(a.command, source).catch(() => undefined);
    await deleteDeploymentKeys(a.command, target).catch(() => undefined);
    await close(a);
    await close(b);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const isMain =
  process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (isMain && process.argv[2] === '--commit-loop') {
  await commitLoopMain(process.argv[3] as string, process.argv[4] as string);
} else if (isMain) {
  const url = process.env.REDIS_URL;
  if (!url) {
    process.stderr.write('set REDIS_URL (or run `npm run bench`)\n');
    process.exit(2);
  }
  for (const row of await benchBackup(url)) {
    process.stdout.write(`${row.name.padEnd(64)} ${row.value.toFixed(1).padStart(10)} ${row.unit}\n`);
  }
}
