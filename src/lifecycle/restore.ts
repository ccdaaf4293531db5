/**
 * Restore: puts back what a backup file holds. The file is read and checked whole first (format,
 * version, checksum, every line), so a damaged or foreign file changes nothing. Then, holding the
 * cluster's backup lock (no backup or second restore meanwhile) and without the backup hooks:
 * 1. the storage entries are staged in a temporary hash, in batches;
 * 2. one script (restoreSwap in redis/scripts.ts) swaps the staged hash in for the entries hash, writes the session
 *    identity, raises the execution counter past every number in the file (never lowers it), and
 *    breaks the storage locks held at that moment so that no `use` that read the old entries can
 *    commit over the restored ones;
 * 3. the unfinished executions are queued again with their numbers, in batches; one whose job
 *    exists (or whose unique name is live again) is skipped.
 * See docs/ARCHITECTURE.md#backups-and-restore.
 */
import { randomBytes } from 'node:crypto';
import type { JobsOptions, Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { executionJobKey } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';
import { restoreSwap } from '../redis/scripts.js';
import { parseBackup, type ExecutionLine, type ParsedBackup } from './backup-format.js';
import type { BackupService } from './backup.js';

/** What POST /v1/restore answers. */
export interface RestoreSummary {
  /** The restored session id. */
  session: string;
  /** Storage entries put back (the storage now holds exactly these). */
  entries: number;
  /** Executions queued again. */
  executions: number;
  /** Executions of the file left alone because their job exists (or their unique name is live). */
  skipped: number;
  /** The execution counter after the restore. */
  sequence: number;
  /** Where the file came from. */
  from: { prefix: string; node: string; number: number; createdAt: string };
}

/** Staged entries are removed by Redis if a restore dies before its swap. */
const STAGING_TTL_MS = 3_600_000;
/** Entries per staging HSET, and the most bytes in one. */
const STAGE_BATCH = 1000;
const STAGE_BYTES = 1024 * 1024;
/** Executions queued per round trip. */
const QUEUE_BATCH = 500;

/** Checks `bytes` and restores them; throws BackupInvalidError (400) or ConflictError (409). */
export async function restoreBackup(
  backups: BackupService,
  queue: Queue,
  bytes: Buffer,
): Promise<RestoreSummary> {
  const parsed = await parseBackup(bytes);
  return backups.exclusive(async (signal) => {
    const started = Date.now();
    const log = backups.host.log.child({ part: 'restore' });
    log.info(
      { from: parsed.header, entries: parsed.entries.size, executions: parsed.executions.length },
      'restore started',
    );
    const sequence = await swap(backups, parsed, signal);
    const { redis, keys } = backups.host;
    const { queued, skipped } = await requeue(redis, keys, queue, parsed.executions, signal);
    const summary: RestoreSummary = {
      session: parsed.session.id as string,
      entries: parsed.entries.size,
      executions: queued,
      skipped,
      sequence,
      from: {
        prefix: parsed.header.prefix,
        node: parsed.header.node,
        number: parsed.header.number,
        createdAt: parsed.header.createdAt,
      },
    };
    log.info({ ...summary, durationMs: Date.now() - started }, 'restore done');
    return summary;
  });
}

/** Stages the entries, then swaps storage, identity and counter in at once. Returns the counter. */
async function swap(backups: BackupService, parsed: ParsedBackup, signal: AbortSignal): Promise<number> {
  const { redis, keys } = backups.host;
  const staged = keys.backup.staged(randomBytes(8).toString('hex'));
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length > 0) {
      await redis
        .multi()
        .hset(staged, ...batch)
        .pexpire(staged, STAGING_TTL_MS)
        .exec();
      batch = [];
      batchBytes = 0;
    }
  };
  try {
    for (const [name, json] of parsed.entries) {
      batch.push(name, json);
      batchBytes += name.length + json.length;
      if (batch.length >= STAGE_BATCH * 2 || batchBytes >= STAGE_BYTES) {
        signal.throwIfAborted();
        await flush();
      }
    }
    await flush();
    signal.throwIfAborted();
    // Every entry that may be locked now: those stored now and those coming back.
    const names = new Set([...(await redis.hkeys(keys.storage.data)), ...parsed.entries.keys()]);
    let floor = parsed.sequence;
    for (const x of parsed.executions) {
      floor = Math.max(floor, x.n);
    }
    await restoreSwap(redis, keys, {
      staged: parsed.entries.size > 0 ? staged : undefined,
      lockedEntries: names,
      sequenceFloor: floor,
      identity: parsed.session,
    });
  } catch (err) {
    await redis.unlink(staged).catch(() => undefined);
    throw err;
  }
  return Number((await redis.get(keys.sequence)) ?? 0);
}

/** Queues the executions again, oldest number first; skips those whose job exists. */
async function requeue(
  redis: Redis,
  keys: Keys,
  queue: Queue,
  executions: readonly ExecutionLine[],
  signal: AbortSignal,
): Promise<{ queued: number; skipped: number }> {
  const sorted = [...executions].sort((a, b) => a.n - b.n);
  let queued = 0;
  let skipped = 0;
  for (let i = 0; i < sorted.length; i += QUEUE_BATCH) {
    signal.throwIfAborted();
    const batch = sorted.slice(i, i + QUEUE_BATCH);
    const pipe = redis.pipeline();
    for (const x of batch) {
      pipe.exists(executionJobKey(keys, x.n));
    }
    const exists = (await pipe.exec()) ?? [];
    const fresh = batch.filter((_, j) => exists[j]?.[1] !== 1);
    skipped += batch.length - fresh.length;
    if (fresh.length === 0) {
      continue;
    }
    const jobs = await queue.addBulk(fresh.map((x) => ({ name: x.name, data: x.data, opts: jobOptions(x) })));
    jobs.forEach((job, j) => {
      if (job.id === jobIdOf((fresh[j] as ExecutionLine).n)) {
        queued++;
      } else {
        skipped++; // its unique name is live again: BullMQ's deduplication kept the live one
      }
    });
  }
  return { queued, skipped };
}

function jobOptions(x: ExecutionLine): JobsOptions {
  const opts: JobsOptions = { ...(x.opts as JobsOptions), jobId: jobIdOf(x.n), timestamp: x.timestamp };
  if (x.priority) {
    opts.priority = x.priority;
  }
  if (x.state === 'delayed' && x.dueAt !== undefined && x.dueAt > x.timestamp) {
    // BullMQ makes a job due at timestamp + delay: the original due time comes back exactly.
    opts.delay = x.dueAt - x.timestamp;
  }
  return opts;
}
