/**
 * Restore: puts back what a backup file holds, trusting nothing in it. Holding the cluster's backup
 * lock from the first moment (a second restore, or a backup, is refused before its body is read),
 * and without the backup hooks:
 * 1. the upload is copied to a private temporary file while it is read and checked whole: gzip,
 *    header and trust (signature under SPROCD_BACKUP_KEY, or the admin's explicit override), every
 *    line against the API's rules, the seals, the counts (restore-upload.ts). A file that fails
 *    changes nothing;
 * 2. the temporary file is read again, checked again on the way (the same bytes, or a refusal), and
 *    its storage entries are staged in a temporary hash, in batches;
 * 3. one script (restoreSwap in redis/scripts.ts) swaps the staged hash in for the entries hash,
 *    writes the session identity, raises the execution counter past every number in the file
 *    (never lowers it), and breaks the storage locks of the old and restored entries, so that no
 *    `use` that read the old entries can commit over the restored ones;
 * 4. the unfinished executions are queued again with their numbers, in batches; one whose job
 *    exists (or whose unique name is live again) is skipped.
 * Every refusal and failure is logged with its cause. See docs/ARCHITECTURE.md#backups-and-restore.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { JobsOptions, Queue } from 'bullmq';
import { duplicateConnection, serverOptions } from '../redis/cluster.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { ConflictError, SprocdError, describeError } from '../errors.js';
import { RestoreProgress } from '../events/restore-progress.js';
import { executionJobKey } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';
import { restoreSwap, type AddedExecution, type RestoreSwap } from '../redis/scripts.js';
import { indexExecutions } from '../procedures/execution-index.js';
import { BackupInvalidError, type ExecutionLine } from './backup-format.js';
import { readBackup, type ReadOptions, type Trust } from './backup-reader.js';
import type { BackupService } from './backup.js';
import { receiveUpload, uploadFile, type CheckedUpload, type UploadProgress } from './restore-upload.js';
import { SlotStaging } from './restore-slots.js';

/** A restore as the API asks for it. */
export interface RestoreRequest {
  /** The backup file's bytes as they arrive; not read before the backup lock is held. */
  readonly body: Readable;
  /** The admin's explicit override: restore a file this node cannot verify (logged). */
  readonly allowUnsigned: boolean;
}

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
  /** How far the file was trusted: `verified` unless the override let it in. */
  signature: Trust;
  /** Where the file came from. */
  from: { prefix: string; node: string; number: number; createdAt: string };
}

/** Staged entries are removed by Redis if a restore dies before its swap. */
const STAGING_TTL_MS = 3_600_000;
/** Entries per staging HSET, and the most bytes in one. */
const STAGE_BATCH = 1000;
const STAGE_BYTES = 1024 * 1024;
/** The BullMQ queue of execution `number`'s queue shard. */
export type QueueOf = (number: number) => Queue;

/** Executions queued per round trip. */
const QUEUE_BATCH = 500;

/**
 * Restores the file `request.body` carries. Throws ConflictError (409) when a backup or restore
 * runs, BackupInvalidError (400) for a file it refuses, PAYLOAD_TOO_LARGE (413).
 */
export async function restoreBackup(
  backups: BackupService,
  queueOf: QueueOf,
  request: RestoreRequest,
): Promise<RestoreSummary> {
  const { settings: s } = backups.host;
  const log = backups.host.log.child({ part: 'restore' });
  const options: ReadOptions = {
    key: backups.key,
    allowUnsigned: request.allowUnsigned,
    limits: { maxEntryBytes: s.storageMaxEntryBytes, maxParamsBytes: s.bodyLimit },
  };
  const started = Date.now();
  const file = uploadFile(s.backupDir, s.prefix);
  const progress: UploadProgress = { bytes: 0, inflatedBytes: 0 };
  const events = new RestoreProgress(backups.host.publish, backups.host.name);
  let running = false;
  try {
    return await backups.exclusive(async (signal) => {
      running = true;
      log.info({ allowUnsigned: request.allowUnsigned }, 'restore started');
      events.started(new Date(started).toISOString());
      events.report('check', 0, 0, true);
      const upload = await receiveUpload(
        request.body,
        file,
        s.restoreMaxBytes,
        options,
        signal,
        progress,
        (n) => events.report('check', n),
      );
      const fields = { from: upload.header, signature: upload.trust, bytes: upload.bytes };
      if (upload.trust !== 'verified') {
        log.warn(
          fields,
          `restoring a backup whose signature is not verified (${upload.trust}): allowUnsigned was given`,
        );
      }
      log.info({ ...fields, entries: upload.entries, executions: upload.executions }, 'restore file checked');
      const summary = await apply(backups, queueOf, upload, options, signal, events);
      log.info({ ...summary, durationMs: Date.now() - started }, 'restore done');
      events.finished({ summary }, Date.now() - started);
      return summary;
    });
  } catch (err) {
    if (running) {
      const { code, name, message } = describeError(err);
      events.finished({ error: { code: code ?? name, message } }, Date.now() - started);
    }
    logFailure(log, err, {
      ...progress,
      allowUnsigned: request.allowUnsigned,
      durationMs: Date.now() - started,
    });
    throw err;
  } finally {
    await fsp.rm(file, { force: true }).catch(() => undefined);
  }
}

function logFailure(log: Logger, err: unknown, fields: object): void {
  if (err instanceof BackupInvalidError) {
    const { reason } = err.details as { reason: string };
    log.warn({ ...fields, reason }, 'restore refused: the file is not restorable');
  } else if (err instanceof ConflictError) {
    log.warn(
      { ...fields, running: (err.details as { running?: unknown }).running },
      'restore refused: a backup or restore is running',
    );
  } else if (err instanceof SprocdError) {
    log.warn({ ...fields, code: err.code, reason: err.message }, 'restore refused');
  } else {
    log.error({ ...fields, err }, 'restore failed');
  }
}

/** The second pass: stage, swap, queue again. */
async function apply(
  backups: BackupService,
  queueOf: QueueOf,
  upload: CheckedUpload,
  options: ReadOptions,
  signal: AbortSignal,
  events: RestoreProgress,
): Promise<RestoreSummary> {
  const { redis, keys } = backups.host;
  const lines = upload.entries + upload.executions;
  let read = 0;
  const stagingToken = randomBytes(8).toString('hex');
  const staged = keys.backup.staged(stagingToken);
  // SPROCD_STORAGE_SLOTS > 1: the entries are staged and swapped in slot by slot (restore-slots.ts).
  const k = backups.host.settings.storageSlots ?? 1;
  const slots = k > 1 ? new SlotStaging(redis, keys, stagingToken, k, STAGING_TTL_MS) : undefined;
  let session: Record<string, string> | undefined;
  let floor = 0;
  const executions: ExecutionLine[] = [];
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length > 0) {
      signal.throwIfAborted();
      if (slots !== undefined) {
        await slots.stage(batch);
      } else {
        await redis
          .multi()
          .hset(staged, ...batch)
          .pexpire(staged, STAGING_TTL_MS)
          .exec();
      }
      batch = [];
      batchBytes = 0;
    }
  };
  let sequence: number;
  try {
    // Read again from the private copy: any byte that differs from the first pass is refused here.
    events.report('stage', 0, lines, true);
    for await (const item of readBackup(fs.createReadStream(upload.file), options)) {
      events.report('stage', read, lines);
      switch (item.t) {
        case 'session':
          session = item.fields;
          break;
        case 'sequence':
          floor = Math.max(floor, item.value);
          break;
        case 'entry':
          read++;
          batch.push(item.name, item.json);
          batchBytes += item.name.length + item.json.length;
          if (batch.length >= STAGE_BATCH * 2 || batchBytes >= STAGE_BYTES) {
            await flush();
          }
          break;
        case 'execution':
          read++;
          executions.push(item.line);
          floor = Math.max(floor, item.line.n);
          break;
        default:
          break;
      }
    }
    await flush();
    if (!session) {
      throw new BackupInvalidError('it holds no session identity');
    }
    const distinct =
      upload.entries === 0 ? 0 : slots !== undefined ? await slots.count() : await redis.hlen(staged);
    if (distinct !== upload.entries) {
      throw new BackupInvalidError(`it holds ${upload.entries} entry lines but ${distinct} distinct keys`);
    }
    signal.throwIfAborted();
    await swapIn(redis, keys, {
      staged: upload.entries > 0 && slots === undefined ? staged : undefined,
      sequenceFloor: floor,
      identity: session,
    });
    await slots?.swap();
    sequence = Number((await redis.get(keys.sequence)) ?? 0);
  } catch (err) {
    await redis.unlink(staged).catch(() => undefined);
    await slots?.discard();
    throw err;
  }
  events.report('stage', read, lines, true);
  const { queued, skipped } = await requeue(backups, queueOf, executions, signal, events);
  const h = upload.header;
  return {
    session: session.id as string,
    entries: upload.entries,
    executions: queued,
    skipped,
    sequence,
    signature: upload.trust,
    from: { prefix: h.prefix, node: h.node, number: h.number, createdAt: h.createdAt },
  };
}

/**
 * Runs the swap script on a connection of its own without the command time-out: the script's work
 * grows with the storage (about a second for 250,000 entries), and a time-out on the node's command
 * connection would report a failure for a swap that Redis goes on to make.
 */
async function swapIn(redis: RedisConnection, keys: Keys, swap: RestoreSwap): Promise<void> {
  const connection = duplicateConnection(redis, {
    commandTimeout: undefined,
    connectionName: `${serverOptions(redis).connectionName ?? 'sprocd'}:restore`,
  });
  try {
    await restoreSwap(connection, keys, swap);
  } finally {
    await connection.quit().catch(() => connection.disconnect());
  }
}

/** Queues the executions again, oldest number first; skips those whose job exists. */
async function requeue(
  backups: BackupService,
  queueOf: QueueOf,
  executions: ExecutionLine[],
  signal: AbortSignal,
  events: RestoreProgress,
): Promise<{ queued: number; skipped: number }> {
  const { redis, keys } = backups.host;
  const sorted = executions.sort((a, b) => a.n - b.n);
  let queued = 0;
  let skipped = 0;
  events.report('queue', 0, sorted.length, true);
  for (let i = 0; i < sorted.length; i += QUEUE_BATCH) {
    signal.throwIfAborted();
    events.report('queue', i, sorted.length);
    const batch = sorted.slice(i, i + QUEUE_BATCH);
    const exists = await jobsExist(redis, keys, batch);
    const fresh = batch.filter((_, j) => !exists[j]);
    skipped += batch.length - fresh.length;
    if (fresh.length === 0) {
      continue;
    }
    // Not the id asked for: its unique name is live again (BullMQ's deduplication kept the live one).
    const added = (await addByShard(keys, queueOf, fresh)).filter((x) => x.added);
    // Indexed by procedure and name; one whose job holds another execution was not queued (a node
    // still holding numbers from before the swap took that one meanwhile).
    const owned = await indexExecutions(redis, keys, added.map(addedExecution));
    const done = owned.filter(Boolean).length;
    queued += done;
    skipped += fresh.length - done;
  }
  events.report('queue', sorted.length, sorted.length, true);
  return { queued, skipped };
}

/** Whether each line's job exists: one pipeline per queue shard (a Cluster's pipeline keeps to one slot). */
function jobsExist(redis: RedisConnection, keys: Keys, lines: readonly ExecutionLine[]): Promise<boolean[]> {
  return keys.queues.mapByShard(
    lines,
    (x) => x.n,
    async (group) => {
      const pipe = redis.pipeline();
      for (const x of group) {
        pipe.exists(executionJobKey(keys, x.n));
      }
      const replies = (await pipe.exec()) ?? [];
      return group.map((_, i) => replies[i]?.[1] === 1);
    },
  );
}

/**
 * Adds `lines` (in ascending order) to their queue shards (execution n to shard n mod S), one addBulk
 * per shard; each line comes back, in the order given, with whether its job is the one added (false:
 * deduplication answered a live one).
 */
function addByShard(
  keys: Keys,
  queueOf: QueueOf,
  lines: readonly ExecutionLine[],
): Promise<(ExecutionLine & { added: boolean })[]> {
  return keys.queues.mapByShard(
    lines,
    (x) => x.n,
    async (group) => {
      const jobs = await queueOf(group[0]!.n).addBulk(
        group.map((x) => ({ name: x.name, data: x.data, opts: jobOptions(x) })),
      );
      return group.map((x, j) => ({ ...x, added: jobs[j]?.id === jobIdOf(x.n) }));
    },
  );
}

function addedExecution(x: ExecutionLine): AddedExecution {
  const data = x.data as { id?: unknown; name?: unknown };
  return {
    number: x.n,
    id: typeof data.id === 'string' ? data.id : '',
    procedure: x.name,
    name: typeof data.name === 'string' ? data.name : '',
    createdAt: x.timestamp,
  };
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
