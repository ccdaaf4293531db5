/**
 * The operations of issue 11 at a million waiting executions, for bench/million.ts: a backup through
 * the function POST /v1/backups calls, a restore of its file into an empty deployment through the
 * function POST /v1/restore calls, and a node started against the Redis that holds them. Each reports
 * its wall time, its progress events (how many, the longest gap between two) and the Redis commands
 * that blocked Redis for more than {@link SLOW_MS} (SLOWLOG), the issue's bound.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { loadSettings } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { BackupService, type BackupHost } from '../src/lifecycle/backup.js';
import { restoreBackup } from '../src/lifecycle/restore.js';
import { SprocdNode } from '../src/node.js';
import { Executions } from '../src/procedures/executions.js';
import { ProcedureRegistry } from '../src/procedures/registry.js';
import { bullQueueKeys } from '../src/redis/bullmq-internals.js';
import { createKeys } from '../src/redis/keys.js';
import { openSession } from '../src/session/index.js';
import type { Row } from './queue.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** Both deployments share it: the restore verifies the signature as a real one does. */
const BACKUP_KEY = 'sprocd-benchmark-million-key-0123456789abcdef';
/** A Redis command longer than this counts as blocking Redis (issue 11: ~50 ms). */
export const SLOW_MS = 50;

/** The events a phase published, with the moment each came (ms since the phase began). */
interface Recorded {
  type: string;
  at: number;
  data: Record<string, unknown>;
}

function recorder(): { events: Recorded[]; publish: (type: string, data: Record<string, unknown>) => void } {
  const t0 = performance.now();
  const events: Recorded[] = [];
  return { events, publish: (type, data) => events.push({ type, at: performance.now() - t0, data }) };
}

/** How many progress events came, and the longest time without one (from start to the end). */
function spacing(events: Recorded[], progressType: string, endMs: number): { count: number; maxGap: number } {
  const times = [0, ...events.filter((e) => e.type === progressType).map((e) => e.at), endMs];
  let maxGap = 0;
  for (let i = 1; i < times.length; i++) {
    maxGap = Math.max(maxGap, (times[i] as number) - (times[i - 1] as number));
  }
  return { count: times.length - 2, maxGap };
}

/** When each phase of a restore began (s since the start), from its progress events. */
function phases(events: Recorded[]): string {
  const firsts = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'restore.progress' && !firsts.has(String(e.data.phase))) {
      firsts.set(String(e.data.phase), e.at);
    }
  }
  const end = events.find((e) => e.type === 'restore.finished')?.at ?? NaN;
  return `${[...firsts].map(([phase, at]) => `${phase} at ${(at / 1000).toFixed(1)} s`).join(', ')}, finished at ${(end / 1000).toFixed(1)} s`;
}

/** Starts counting Redis commands slower than {@link SLOW_MS}. */
export async function resetSlowlog(redis: Redis): Promise<void> {
  await redis.config('SET', 'slowlog-log-slower-than', String(SLOW_MS * 1000));
  await redis.config('SET', 'slowlog-max-len', '1000');
  await redis.call('SLOWLOG', 'RESET');
}

/** The commands slower than {@link SLOW_MS} since {@link resetSlowlog}: the longest (ms) and what it was. */
export async function slowest(redis: Redis): Promise<{ count: number; maxMs: number; command: string }> {
  const entries = (await redis.call('SLOWLOG', 'GET', '1000')) as [number, number, number, string[]][];
  let maxMs = 0;
  let command = '';
  for (const [, , micros, args] of entries) {
    if (micros / 1000 > maxMs) {
      maxMs = micros / 1000;
      command = args.slice(0, 3).join(' ').slice(0, 80);
    }
  }
  return { count: entries.length, maxMs, command };
}

function bareSettings(url: string, prefix: string, backupDir: string) {
  return loadSettings(
    {
      REDIS_URL: url,
      SPROCD_PREFIX: prefix,
      SPROCD_BACKUP_DIR: backupDir,
      SPROCD_BACKUP_KEY: BACKUP_KEY,
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
      LOG_LEVEL: 'warn',
    },
    HERE,
  );
}

/** The backup service of deployment `prefix`, as a node builds it, its events going to `publish`. */
function backupService(
  redis: Redis,
  url: string,
  prefix: string,
  backupDir: string,
  publish: (type: string, data: Record<string, unknown>) => void,
): BackupService {
  const host: BackupHost = {
    name: 'bench-million',
    settings: bareSettings(url, prefix, backupDir),
    keys: createKeys(prefix),
    redis,
    log: pino({ level: 'warn' }),
    runHook: async () => undefined,
    emitSystemEvent: () => undefined,
    publish,
  };
  return new BackupService(host);
}

/** A backup of deployment `prefix` (what POST /v1/backups runs): its file, and the figures. */
export async function benchBackupAt(
  redis: Redis,
  url: string,
  prefix: string,
  backupDir: string,
  log: (line: string) => void,
): Promise<{ file: string; rows: Row[] }> {
  // The session identity every deployment has once a node has started (the file must hold one).
  const session = await openSession({
    command: redis,
    redisUrl: url,
    keys: createKeys(prefix),
    userName: 'sprocd',
    lockLeaseMs: 10_000,
    lockTimeoutMs: 60_000,
    maxEntryBytes: 1024 * 1024,
    connectionName: 'bench-million',
    logger: pino({ level: 'warn' }),
  });
  await session.close();
  const { events, publish } = recorder();
  const backups = backupService(redis, url, prefix, backupDir, publish);
  await resetSlowlog(redis);
  const t0 = performance.now();
  const record = await backups.run('manual');
  const ms = performance.now() - t0;
  const slow = await slowest(redis);
  if (record.status !== 0 || !record.file) {
    throw new Error(`the backup failed: ${JSON.stringify(record)}`);
  }
  const { count, maxGap } = spacing(events, 'backup.progress', ms);
  const last = events.filter((e) => e.type === 'backup.progress').at(-1)?.data;
  log(
    `  backup: ${(ms / 1000).toFixed(1)} s, ${(record.size! / 1e6).toFixed(1)} MB, ${record.executions} executions, snapshot ${record.snapshotMs} ms; ` +
      `${count} progress events, longest gap ${maxGap.toFixed(0)} ms, last ${JSON.stringify(last)}; ` +
      `slow Redis commands (> ${SLOW_MS} ms): ${slow.count}, longest ${slow.maxMs.toFixed(1)} ms ${slow.command}`,
  );
  return {
    file: record.file,
    rows: [
      { name: 'backup: wall time', value: ms / 1000, unit: 's' },
      { name: 'backup: file size', value: record.size! / 1e6, unit: 'MB' },
      { name: 'backup: snapshot (the MULTI of COPYs)', value: record.snapshotMs ?? NaN, unit: 'ms' },
      { name: 'backup: progress events', value: count, unit: '' },
      { name: 'backup: longest time without a progress event', value: maxGap, unit: 'ms' },
      { name: `backup: Redis commands over ${SLOW_MS} ms`, value: slow.count, unit: '' },
      { name: 'backup: longest Redis command', value: slow.maxMs, unit: 'ms' },
    ],
  };
}

/**
 * A restore of `file` into the empty deployment `prefix` (what POST /v1/restore runs), then its
 * counts and a lookup of execution `probe`.
 */
export async function benchRestoreAt(
  redis: Redis,
  url: string,
  prefix: string,
  backupDir: string,
  file: string,
  probe: number,
  log: (line: string) => void,
): Promise<Row[]> {
  const { events, publish } = recorder();
  const backups = backupService(redis, url, prefix, backupDir, publish);
  const keys = createKeys(prefix);
  const registry = new ProcedureRegistry(path.join(HERE, 'jobs'));
  await registry.load();
  const executions = new Executions(
    redis,
    keys,
    registry,
    { keepFinished: 1000, keepFinishedSeconds: 86_400 },
    () => redis.duplicate(),
  );
  try {
    await resetSlowlog(redis);
    const t0 = performance.now();
    const summary = await restoreBackup(backups, (n) => executions.queueOf(n), {
      body: fs.createReadStream(file),
      allowUnsigned: false,
    });
    const ms = performance.now() - t0;
    const slow = await slowest(redis);
    const { count, maxGap } = spacing(events, 'restore.progress', ms);
    const counts = await executions.counts();
    const found = await executions.find(probe);
    const waiting = await redis.llen(bullQueueKeys(keys).wait);
    log(
      `  restore: ${(ms / 1000).toFixed(1)} s, ${summary.executions} queued, ${summary.skipped} skipped; ` +
        `${count} progress events, longest gap ${maxGap.toFixed(0)} ms, phases ${[...new Set(events.map((e) => String(e.data.phase ?? e.type)))].join(' ')}; ` +
        `slow Redis commands (> ${SLOW_MS} ms): ${slow.count}, longest ${slow.maxMs.toFixed(1)} ms ${slow.command}`,
    );
    log(
      `  after the restore: wait list ${waiting}, counts ${JSON.stringify(counts)}, this process's RSS ${(process.memoryUsage().rss / 1e6).toFixed(0)} MB`,
    );
    log(`  restore phases: ${phases(events)}`);
    log(`  execution ${probe}: ${found ? `${found.state} ${found.procedure}` : 'NOT FOUND'}`);
    if (!found) {
      throw new Error(`execution ${probe} is not found after the restore`);
    }
    return [
      { name: 'restore: wall time', value: ms / 1000, unit: 's' },
      { name: 'restore: executions queued', value: summary.executions, unit: '' },
      { name: 'restore: waiting afterwards (counts)', value: counts.waiting ?? NaN, unit: '' },
      { name: 'restore: progress events', value: count, unit: '' },
      { name: 'restore: longest time without a progress event', value: maxGap, unit: 'ms' },
      { name: `restore: Redis commands over ${SLOW_MS} ms`, value: slow.count, unit: '' },
      { name: 'restore: longest Redis command', value: slow.maxMs, unit: 'ms' },
    ];
  } finally {
    await executions.close();
  }
}

/**
 * A node started against deployment `prefix` (its executions waiting): the time until its start
 * resolves (it answers /readyz ready from then) and until its first execution completes.
 */
export async function benchRestartAt(
  redis: Redis,
  url: string,
  prefix: string,
  log: (line: string) => void,
): Promise<Row[]> {
  const settings = loadSettings(
    {
      REDIS_URL: url,
      SPROCD_PREFIX: prefix,
      PORT: '0',
      LOG_LEVEL: 'silent',
      SPROCD_CONCURRENCY: '16',
      SPROCD_JOBS_DIR: path.join(HERE, 'jobs'),
      SPROCD_LIFECYCLE_DIR: path.join(HERE, 'no-lifecycle'),
    },
    HERE,
  );
  const events = bullQueueKeys(createKeys(prefix)).events;
  const reader = redis.duplicate();
  const newest = await redis.xrevrange(events, '+', '-', 'COUNT', 1);
  let since = newest[0]?.[0] ?? '0';
  await resetSlowlog(redis);
  const node = new SprocdNode(settings, createLogger('silent', { pretty: false }));
  const t0 = performance.now();
  // The first `completed` in BullMQ's event stream after the start began.
  const firstCompleted = (async () => {
    for (;;) {
      const res = (await reader.xread('BLOCK', 0, 'STREAMS', events, since)) as
        [string, [string, string[]][]][] | null;
      for (const [, entries] of res ?? []) {
        for (const [id, fields] of entries) {
          since = id;
          if (fields[0] === 'event' && fields[1] === 'completed') {
            return performance.now() - t0;
          }
        }
      }
    }
  })();
  try {
    await node.start();
    const readyMs = performance.now() - t0;
    const readyz = await fetch(`${node.url}/readyz`);
    const firstMs = await firstCompleted;
    const slow = await slowest(redis);
    log(
      `  restart at ${await redis.llen(bullQueueKeys(createKeys(prefix)).wait)} waiting: ready after ${readyMs.toFixed(0)} ms (/readyz ${readyz.status}), ` +
        `first execution completed after ${firstMs.toFixed(0)} ms; ` +
        `slow Redis commands (> ${SLOW_MS} ms): ${slow.count}, longest ${slow.maxMs.toFixed(1)} ms ${slow.command}`,
    );
    return [
      { name: 'restart: start() resolved (/readyz ready)', value: readyMs, unit: 'ms' },
      { name: 'restart: first execution completed', value: firstMs, unit: 'ms' },
      { name: `restart: Redis commands over ${SLOW_MS} ms`, value: slow.count, unit: '' },
      { name: 'restart: longest Redis command', value: slow.maxMs, unit: 'ms' },
    ];
  } finally {
    await node.stop();
    reader.disconnect();
  }
}
