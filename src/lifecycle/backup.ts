/**
 * Backups: one at a time in the whole cluster, through onBackupStartup / onBackupShutdown, written
 * to SPROCD_BACKUP_DIR as one self-checking file (backup-format.ts), with a bounded history and the
 * automatic-backup failure policy in Redis (docs/BACKUPS.md).
 *
 * Consistency without a long pause: one MULTI takes the session identity, the execution counter
 * and server-side COPYs of the storage entries hash and of BullMQ's unfinished-job lists. That MULTI
 * is the only moment storage commits wait (4D holds writes during a backup the same way); the file
 * is then written from the private copies, in batches, while everything else runs on.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { ConflictError, StoppingError, describeError } from '../errors.js';
import { QUEUE_NAME, numberOfJobId, type Keys } from '../redis/keys.js';
import { isRedisError } from '../redis/errors.js';
import { storageLayout } from '../session/layout.js';
import type { HookContext } from '../types.js';
import type { HookName } from './hooks.js';
import {
  BACKUP_EXTENSION,
  BACKUP_FORMAT,
  BACKUP_VERSION,
  BackupEncoder,
  GZIP_LEVEL,
  type BackupHeader,
  type ExecutionLine,
  type SourceList,
} from './backup-format.js';

/** The status codes a backup ends with (given to onBackupShutdown and kept in the history). */
export const BACKUP_STATUS = {
  /** The backup was written. */
  done: 0,
  /** Automatic backups stopped after SPROCD_BACKUP_MAX_FAILURES consecutive failures. */
  automaticStopped: 1401,
  /** A scheduled tick passed while no node was running. */
  missed: 1402,
  /** The node stopped while the backup ran. */
  interrupted: 1406,
  /** Redis failed (or the backup lock was lost) while the backup read its content. */
  redisFailed: 1407,
  /** The file could not be written (folder missing or not writable, disk full, ...). */
  writeFailed: 1410,
  /** onBackupStartup threw (or returned something that is not a number). */
  hookThrew: 1411,
  /** An automatic backup found another backup running and did nothing (not a failure). */
  busy: 1412,
} as const;

/** What started a backup. */
export type BackupTrigger = 'manual' | 'schedule' | 'retry' | 'missed';

/** How a backup ended. */
export type BackupOutcome = 'done' | 'cancelled' | 'failed' | 'skipped';

/** One line of the backup history (also the answer of POST /v1/backups). */
export interface BackupRecord {
  /** Backup number, from a cluster-wide counter. */
  number: number;
  trigger: BackupTrigger;
  node: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** 0, the number onBackupStartup returned, or an error code ({@link BACKUP_STATUS}). */
  status: number;
  outcome: BackupOutcome;
  message?: string;
  /** Full path of the file on the node that wrote it. */
  file?: string;
  /** File size in bytes. */
  size?: number;
  /** Storage entries in the file. */
  entries?: number;
  /** Unfinished executions in the file. */
  executions?: number;
  /** How long the snapshot transaction took (ms): the only moment storage commits waited. */
  snapshotMs?: number;
  /** Scheduled backups: the tick's time. */
  scheduledAt?: string;
  /** Scheduled backups: 0 for the tick itself, then 1, 2, ... for its retries. */
  attempt?: number;
  /** With status 1401: the code of the failure that stopped automatic backups. */
  cause?: number;
  /** When onBackupShutdown threw (the status is kept). */
  shutdownHookError?: string;
}

/** What onBackupStartup and onBackupShutdown find in `ctx.backup`. */
export interface BackupHookInfo {
  number: number;
  trigger: BackupTrigger;
  scheduledAt?: string;
  attempt?: number;
}

/** The context of the backup hooks: the usual hook context plus `backup`. */
export type BackupHookContext = HookContext & { backup: BackupHookInfo };

/** What GET /v1/backups shows (without the schedule, which schedule.ts adds). */
export interface BackupStatus {
  items: BackupRecord[];
  running?: RunningBackup;
  automaticStopped: boolean;
  consecutiveFailures: number;
}

/** The backup (or restore) holding the cluster's lock. */
export interface RunningBackup {
  number: number;
  node: string;
  trigger: BackupTrigger | 'restore';
  startedAt: string;
}

/** What the backup service needs of its node (a SprocdNode fits; the benchmark builds a small one). */
export interface BackupHost {
  readonly name: string;
  readonly settings: Settings;
  readonly keys: Keys;
  readonly redis: Redis;
  readonly log: Logger;
  readonly hooks: {
    has(name: HookName): boolean;
    run(name: HookName, ctx: HookContext, ...args: unknown[]): Promise<unknown>;
  };
  hookContext(log: Logger): HookContext;
  emitSystemEvent(event: { type: string } & Record<string, unknown>): void;
}

/** Options of one backup run. */
export interface RunOptions {
  /** The tick time of a scheduled backup (ms). */
  scheduledAt?: number;
  /** 0 for the tick, then the retry number. */
  attempt?: number;
  /**
   * Record a failed attempt with this status instead of running a backup (a missed tick, 1402; a
   * tick whose node died, 1406). onBackupShutdown still hears it; onBackupStartup is not called.
   */
  failWith?: { status: number; message: string };
}

/** How long the backup lock lives without renewal; renewed every third of it. */
export const BACKUP_LOCK_LEASE_MS = 15_000;
/** History lines kept in Redis. */
export const HISTORY_LIMIT = 200;
/** Job ids read per Redis round trip. */
const READ_BATCH = 500;
/** Storage entries asked per HSCAN call. */
const SCAN_BATCH = 100;
/** The snapshot copies vanish by themselves after this if a node dies mid-backup. */
const SNAPSHOT_TTL_MS = 3_600_000;
/** Left-over temporary files older than this are removed by the next backup. */
const STALE_TEMP_MS = 3_600_000;
/** BullMQ's delayed score is `due ms * 0x1000 + a counter`. */
const DELAYED_SCORE_FACTOR = 0x1000;
/** Job options a restore puts back (the others are set again from the line itself). */
const KEPT_OPTIONS = ['attempts', 'backoff', 'removeOnComplete', 'removeOnFail', 'deduplication'] as const;

const LOCK_SCRIPT = fs.readFileSync(fileURLToPath(new URL('./backup-lock.lua', import.meta.url)), 'utf8');

/** The Redis keys of backups, all under `keys.backupPrefix`. */
export function backupKeys(keys: Keys) {
  const p = keys.backupPrefix;
  return {
    /** String with a PX lease: the running backup or restore (JSON {@link RunningBackup} + token). */
    lock: `${p}:lock`,
    /** List of history records (JSON), newest first, at most {@link HISTORY_LIMIT}. */
    history: `${p}:history`,
    /** Counter giving backup numbers. */
    number: `${p}:number`,
    /** Consecutive failed automatic backups. */
    failures: `${p}:failures`,
    /** Present (JSON) while automatic backups are stopped (1401). */
    stopped: `${p}:stopped`,
    /** Time (ms) of the last backup that ended with 0. */
    lastSuccess: `${p}:last-success`,
    /** Counts restores; raised by each one. */
    restores: `${p}:restores`,
    /** The snapshot copies of backup `n`. */
    snapshot: (n: number, part: string) => `${p}:snap:${n}:${part}`,
    /** Staged storage entries of a restore. */
    staged: (token: string) => `${p}:restore:${token}`,
    /** Marks a schedule tick as taken (so that it fires once). */
    tick: (scheduler: string, millis: number) => `${p}:tick:${scheduler}:${millis}`,
    /** Short lock serializing the schedule set-up of nodes starting together. */
    scheduleSync: `${p}:schedule-sync`,
  };
}

/** The file could not be written. */
class BackupWriteError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'BackupWriteError';
  }
}

/** Redis failed while the content was read. */
class BackupReadError extends Error {
  constructor(cause: unknown) {
    super(`reading the content from Redis failed: ${(cause as Error).message ?? String(cause)}`, { cause });
    this.name = 'BackupReadError';
  }
}

/** The cluster-wide lock held by the running backup or restore, its lease renewed while held. */
class BackupLock {
  private timer: NodeJS.Timeout | undefined;
  private released = false;

  private constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly value: string,
    onLost: () => void,
  ) {
    this.timer = setInterval(() => {
      this.call('renew').then(
        (ok) => {
          if (!ok && !this.released) {
            clearInterval(this.timer);
            onLost();
          }
        },
        () => undefined, // Redis away: the next renewal tries again; the lease covers two misses
      );
    }, BACKUP_LOCK_LEASE_MS / 3);
    this.timer.unref();
  }

  /** Takes the lock, or returns undefined when another backup or restore holds it. */
  static async acquire(
    redis: Redis,
    key: string,
    info: RunningBackup,
    onLost: () => void,
  ): Promise<BackupLock | undefined> {
    const value = JSON.stringify({ ...info, token: randomBytes(8).toString('hex') });
    const ok = await redis.set(key, value, 'PX', BACKUP_LOCK_LEASE_MS, 'NX');
    return ok === 'OK' ? new BackupLock(redis, key, value, onLost) : undefined;
  }

  async release(): Promise<void> {
    this.released = true;
    clearInterval(this.timer);
    await this.call('release');
  }

  private async call(op: 'renew' | 'release'): Promise<boolean> {
    const r = await this.redis.eval(LOCK_SCRIPT, 1, this.key, op, this.value, BACKUP_LOCK_LEASE_MS);
    return r === 1;
  }
}

/** The result of writing a backup file. */
interface Written {
  file: string;
  size: number;
  entries: number;
  executions: number;
  snapshotMs: number;
}

interface Verdict {
  status: number;
  outcome: BackupOutcome;
  message?: string;
  cause?: number;
}

/** The names of the snapshot parts: the storage entries and BullMQ's lists of unfinished jobs. */
const JOB_LISTS: readonly { part: SourceList; kind: 'list' | 'zset' }[] = [
  { part: 'active', kind: 'list' },
  { part: 'wait', kind: 'list' },
  { part: 'paused', kind: 'list' },
  { part: 'prioritized', kind: 'zset' },
  { part: 'delayed', kind: 'zset' },
];

/** The backups of one node. */
export class BackupService {
  private readonly bk: ReturnType<typeof backupKeys>;
  private current: { controller: AbortController; task: Promise<BackupRecord> } | undefined;
  private closed = false;

  constructor(readonly host: BackupHost) {
    this.bk = backupKeys(host.keys);
  }

  /** A node start clears the automatic-backup stop (4D: "until a restart"). */
  async start(): Promise<void> {
    const stopped = await this.host.redis.get(this.bk.stopped);
    if (stopped !== null) {
      await this.host.redis.del(this.bk.stopped, this.bk.failures);
      this.host.log.info('automatic backups resume: a node started since they were stopped');
    }
  }

  /** Whether automatic backups are stopped (1401). */
  async automaticStopped(): Promise<boolean> {
    return (await this.host.redis.exists(this.bk.stopped)) === 1;
  }

  /** Time (ms) of the last successful backup, or 0. */
  async lastSuccessAt(): Promise<number> {
    return Number((await this.host.redis.get(this.bk.lastSuccess)) ?? 0);
  }

  /** The history, newest first, with the running backup and the failure policy's state. */
  async status(limit = 50): Promise<BackupStatus> {
    const res = await this.host.redis
      .multi()
      .lrange(this.bk.history, 0, limit - 1)
      .get(this.bk.lock)
      .exists(this.bk.stopped)
      .get(this.bk.failures)
      .exec();
    const [history, lock, stopped, failures] = (res ?? []).map(([err, value]) => {
      if (err) {
        throw err;
      }
      return value;
    }) as [string[], string | null, number, string | null];
    const out: BackupStatus = {
      items: history.map((line) => JSON.parse(line) as BackupRecord),
      automaticStopped: stopped === 1,
      consecutiveFailures: Number(failures ?? 0),
    };
    const running = parseRunning(lock);
    if (running) {
      out.running = running;
    }
    return out;
  }

  /** The backup or restore running now in the cluster, if any. */
  async running(): Promise<RunningBackup | undefined> {
    return parseRunning(await this.host.redis.get(this.bk.lock));
  }

  /**
   * Runs a backup on this node: onBackupStartup, the file, onBackupShutdown, the history. A manual
   * backup that finds another one running throws ConflictError (BACKUP_RUNNING); an automatic one
   * records that it was skipped (1412). Whatever else happens it resolves with the record.
   */
  async run(trigger: BackupTrigger, options: RunOptions = {}): Promise<BackupRecord> {
    if (this.closed) {
      throw new StoppingError();
    }
    const redis = this.host.redis;
    const number = await redis.incr(this.bk.number);
    const started = Date.now();
    const controller = new AbortController();
    const lock = await BackupLock.acquire(
      redis,
      this.bk.lock,
      { number, node: this.host.name, trigger, startedAt: new Date(started).toISOString() },
      () => controller.abort(new Error('lost the backup lock (its lease ran out)')),
    );
    if (!lock) {
      const running = await this.running();
      const who = running
        ? `${running.trigger === 'restore' ? 'a restore' : `backup ${running.number}`} is running on node ${running.node} since ${running.startedAt}`
        : 'another backup is running';
      if (trigger === 'manual') {
        throw new ConflictError(
          'BACKUP_RUNNING',
          `${who}; one backup or restore at a time in the cluster. Retry when it has ended.`,
          { running },
        );
      }
      const record = this.record(number, trigger, started, options, {
        status: BACKUP_STATUS.busy,
        outcome: 'skipped',
        message: `skipped: ${who}`,
      });
      await this.pushHistory(record);
      this.host.log.info({ backup: number, trigger }, `backup skipped: ${who}`);
      return record;
    }
    const task = this.perform(number, trigger, started, options, lock, controller.signal);
    this.current = { controller, task };
    try {
      return await task;
    } finally {
      this.current = undefined;
    }
  }

  /**
   * Runs `work` while holding the backup lock (a restore); throws ConflictError when a backup or
   * restore runs.
   */
  async exclusive<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    if (this.closed) {
      throw new StoppingError();
    }
    const controller = new AbortController();
    const lock = await BackupLock.acquire(
      this.host.redis,
      this.bk.lock,
      { number: 0, node: this.host.name, trigger: 'restore', startedAt: new Date().toISOString() },
      () => controller.abort(new Error('lost the backup lock (its lease ran out)')),
    );
    if (!lock) {
      const running = await this.running();
      throw new ConflictError(
        'BACKUP_RUNNING',
        running
          ? `${running.trigger === 'restore' ? 'A restore' : `Backup ${running.number}`} is running on node ${running.node} since ${running.startedAt}; retry when it has ended.`
          : 'A backup or restore is running; retry when it has ended.',
        { running },
      );
    }
    try {
      return await work(controller.signal);
    } finally {
      await lock.release().catch(() => undefined);
    }
  }

  /** Interrupts the running backup (it ends with 1406) and waits for it to end; refuses new ones. */
  async close(): Promise<void> {
    this.closed = true;
    const current = this.current;
    if (current) {
      current.controller.abort(new StoppingError());
      await current.task.catch(() => undefined);
    }
  }

  private async perform(
    number: number,
    trigger: BackupTrigger,
    started: number,
    options: RunOptions,
    lock: BackupLock,
    signal: AbortSignal,
  ): Promise<BackupRecord> {
    const log = this.host.log.child({ backup: number });
    const info: BackupHookInfo = { number, trigger };
    if (options.scheduledAt !== undefined) {
      info.scheduledAt = new Date(options.scheduledAt).toISOString();
    }
    if (options.attempt !== undefined) {
      info.attempt = options.attempt;
    }
    log.info({ trigger, scheduledAt: info.scheduledAt, attempt: options.attempt }, 'backup started');
    let verdict: Verdict;
    let written: Written | undefined;
    if (options.failWith) {
      verdict = { status: options.failWith.status, outcome: 'failed', message: options.failWith.message };
    } else {
      verdict = await this.startup(info, log);
      if (verdict.outcome === 'done') {
        if (signal.aborted) {
          verdict = interruptedVerdict(signal);
        } else {
          try {
            written = await this.write(number, trigger, signal, log);
          } catch (err) {
            verdict = classify(err, signal);
          }
        }
      }
    }
    verdict = await this.applyPolicy(trigger, verdict, log);
    const record = this.record(number, trigger, started, options, verdict, written);
    try {
      await this.callHook('onBackupShutdown', info, log, verdict.status);
    } catch (err) {
      record.shutdownHookError = describeError(err).message;
    }
    await lock
      .release()
      .catch((err: unknown) => log.warn({ err }, 'could not release the backup lock; it expires'));
    await this.pushHistory(record).catch((err: unknown) =>
      log.warn({ err }, 'could not write the backup history'),
    );
    if (record.outcome === 'failed') {
      log.warn({ status: record.status, message: record.message }, 'backup failed');
      this.host.emitSystemEvent({
        type: 'backup.failed',
        number,
        trigger,
        status: record.status,
        message: record.message,
        ...(record.cause === undefined ? {} : { cause: record.cause }),
        ...(record.scheduledAt === undefined ? {} : { scheduledAt: record.scheduledAt }),
      });
    } else {
      log.info(
        {
          status: record.status,
          outcome: record.outcome,
          file: record.file,
          size: record.size,
          durationMs: record.durationMs,
        },
        `backup ${record.outcome}`,
      );
    }
    return record;
  }

  /** onBackupStartup: 0 or nothing runs the backup; another number cancels; a throw is 1411. */
  private async startup(info: BackupHookInfo, log: Logger): Promise<Verdict> {
    let returned: unknown;
    try {
      returned = await this.callHook('onBackupStartup', info, log);
    } catch (err) {
      return {
        status: BACKUP_STATUS.hookThrew,
        outcome: 'failed',
        message: `onBackupStartup threw: ${describeError(err).message}`,
      };
    }
    if (returned === undefined || returned === null || returned === 0) {
      return { status: BACKUP_STATUS.done, outcome: 'done' };
    }
    if (typeof returned === 'number' && Number.isFinite(returned)) {
      return {
        status: returned,
        outcome: 'cancelled',
        message: `cancelled: onBackupStartup returned ${returned}`,
      };
    }
    return {
      status: BACKUP_STATUS.hookThrew,
      outcome: 'failed',
      message: `onBackupStartup returned ${JSON.stringify(returned) ?? typeof returned}; return 0 (or nothing) to run the backup, another number to cancel it`,
    };
  }

  /**
   * The failure policy: a success resets the count of consecutive failures (a manual one also
   * resumes stopped automatic backups); a failed automatic backup counts, and the one that reaches
   * SPROCD_BACKUP_MAX_FAILURES stops automatic backups and ends with 1401.
   */
  private async applyPolicy(trigger: BackupTrigger, verdict: Verdict, log: Logger): Promise<Verdict> {
    const redis = this.host.redis;
    try {
      if (verdict.outcome === 'done') {
        const m = redis.multi().del(this.bk.failures).set(this.bk.lastSuccess, String(Date.now()));
        if (trigger === 'manual') {
          m.del(this.bk.stopped);
        }
        await m.exec();
        return verdict;
      }
      if (verdict.outcome !== 'failed' || trigger === 'manual') {
        return verdict;
      }
      const failures = await redis.incr(this.bk.failures);
      const max = this.host.settings.backupMaxFailures;
      if (failures < max) {
        return verdict;
      }
      await redis.set(
        this.bk.stopped,
        JSON.stringify({ at: new Date().toISOString(), failures, cause: verdict.status }),
      );
      log.error({ failures, cause: verdict.status }, 'automatic backups stopped after too many failures');
      return {
        status: BACKUP_STATUS.automaticStopped,
        outcome: 'failed',
        cause: verdict.status,
        message: `automatic backups stopped after ${failures} consecutive failures (SPROCD_BACKUP_MAX_FAILURES=${max}) until a manual backup succeeds or a node restarts; last failure: ${verdict.message ?? verdict.status}`,
      };
    } catch (err) {
      log.warn({ err }, 'could not update the backup failure count');
      return verdict;
    }
  }

  private record(
    number: number,
    trigger: BackupTrigger,
    started: number,
    options: RunOptions,
    verdict: Verdict,
    written?: Written,
  ): BackupRecord {
    const finished = Date.now();
    const record: BackupRecord = {
      number,
      trigger,
      node: this.host.name,
      startedAt: new Date(started).toISOString(),
      finishedAt: new Date(finished).toISOString(),
      durationMs: finished - started,
      status: verdict.status,
      outcome: verdict.outcome,
    };
    if (verdict.message !== undefined) {
      record.message = verdict.message;
    }
    if (verdict.cause !== undefined) {
      record.cause = verdict.cause;
    }
    if (written) {
      Object.assign(record, written);
    }
    if (options.scheduledAt !== undefined) {
      record.scheduledAt = new Date(options.scheduledAt).toISOString();
    }
    if (options.attempt !== undefined) {
      record.attempt = options.attempt;
    }
    return record;
  }

  private async pushHistory(record: BackupRecord): Promise<void> {
    await this.host.redis
      .multi()
      .lpush(this.bk.history, JSON.stringify(record))
      .ltrim(this.bk.history, 0, HISTORY_LIMIT - 1)
      .exec();
  }

  /** Runs a backup hook in the session with `ctx.backup`; a missing hook returns undefined. */
  private async callHook(
    name: HookName,
    info: BackupHookInfo,
    log: Logger,
    ...args: unknown[]
  ): Promise<unknown> {
    if (!this.host.hooks.has(name)) {
      return undefined;
    }
    const hookLog = log.child({ hook: name });
    const ctx: BackupHookContext = { ...this.host.hookContext(hookLog), backup: { ...info } };
    const started = Date.now();
    try {
      const result = await this.host.hooks.run(name, ctx, ...args);
      hookLog.info({ durationMs: Date.now() - started }, 'hook done');
      return result;
    } catch (err) {
      hookLog.error({ err, durationMs: Date.now() - started }, 'hook threw');
      throw err;
    }
  }

  // ---- the file -------------------------------------------------------------------------------

  /**
   * Writes the backup file: a temporary name in the folder (opened first, so an unwritable folder
   * fails before Redis is touched), the snapshot, the content, fsync, rename, fsync of the folder,
   * then the retention.
   */
  private async write(
    number: number,
    trigger: BackupTrigger,
    signal: AbortSignal,
    log: Logger,
  ): Promise<Written> {
    const s = this.host.settings;
    const dir = s.backupDir;
    const now = new Date();
    const name = backupFileName(s.prefix, now, number);
    const file = path.join(dir, name);
    const temp = path.join(dir, `.${name}.${randomBytes(4).toString('hex')}.tmp`);
    let handle: fsp.FileHandle;
    try {
      await fsp.mkdir(dir, { recursive: true });
      handle = await fsp.open(temp, 'wx');
    } catch (err) {
      throw new BackupWriteError(`cannot write to ${dir}: ${(err as Error).message}`, { cause: err });
    }
    const parts = ['data', ...JOB_LISTS.map((l) => l.part)];
    const snapshotKeys = parts.map((part) => this.bk.snapshot(number, part));
    const encoder = new BackupEncoder();
    let snapshotMs = 0;
    try {
      const snapshotStarted = performance.now();
      const snapshot = await this.snapshot(number);
      snapshotMs = Math.round((performance.now() - snapshotStarted) * 10) / 10;
      const header: BackupHeader = {
        format: BACKUP_FORMAT,
        version: BACKUP_VERSION,
        createdAt: now.toISOString(),
        prefix: s.prefix,
        node: this.host.name,
        number,
        trigger,
      };
      await pipeline(
        Readable.from(this.content(number, header, snapshot, encoder, signal)),
        zlib.createGzip({ level: GZIP_LEVEL }),
        handle.createWriteStream(),
        { signal },
      );
      const sync = await fsp.open(temp, 'r+');
      try {
        await sync.sync();
      } finally {
        await sync.close();
      }
      if (signal.aborted) {
        throw signal.reason;
      }
      await fsp.rename(temp, file);
      await syncDir(dir);
    } catch (err) {
      await handle.close().catch(() => undefined);
      await fsp.rm(temp, { force: true }).catch(() => undefined);
      throw err;
    } finally {
      await this.host.redis.unlink(...snapshotKeys).catch(() => undefined);
    }
    const { size } = await fsp.stat(file);
    await this.prune(dir, log);
    return { file, size, entries: encoder.entries, executions: encoder.executions, snapshotMs };
  }

  /**
   * The consistent moment: identity, counter and copies of the entries hash and of the job lists,
   * in one MULTI. Copies of keys that do not exist are simply absent.
   */
  private async snapshot(number: number): Promise<{ session: Record<string, string>; sequence: number }> {
    const keys = this.host.keys;
    const bull = (suffix: string) => `${keys.bullPrefix}:${QUEUE_NAME}:${suffix}`;
    const m = this.host.redis.multi().hgetall(keys.session).get(keys.sequence);
    const sources: [string, string][] = [
      [storageLayout(keys).data, this.bk.snapshot(number, 'data')],
      ...JOB_LISTS.map((l): [string, string] => [bull(l.part), this.bk.snapshot(number, l.part)]),
    ];
    for (const [source, copy] of sources) {
      m.copy(source, copy, 'REPLACE').pexpire(copy, SNAPSHOT_TTL_MS);
    }
    let res: [Error | null, unknown][] | null;
    try {
      res = await m.exec();
    } catch (err) {
      throw new BackupReadError(err);
    }
    if (!res) {
      throw new BackupReadError(new Error('the snapshot transaction was aborted'));
    }
    for (const [err] of res) {
      if (err) {
        throw new BackupReadError(err);
      }
    }
    return {
      session: (res[0]?.[1] ?? {}) as Record<string, string>,
      sequence: Number(res[1]?.[1] ?? 0),
    };
  }

  /** The lines of the file, read from the snapshot copies in batches. */
  private async *content(
    number: number,
    header: BackupHeader,
    snapshot: { session: Record<string, string>; sequence: number },
    encoder: BackupEncoder,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    const redis = this.host.redis;
    const read = async <T>(work: Promise<T>): Promise<T> => {
      try {
        return await work;
      } catch (err) {
        throw new BackupReadError(err);
      }
    };
    yield Buffer.concat([
      encoder.line(header),
      encoder.line({ t: 'session', fields: snapshot.session }),
      encoder.line({ t: 'sequence', value: snapshot.sequence }),
    ]);

    const dataCopy = this.bk.snapshot(number, 'data');
    const seenEntries = new Set<string>();
    let cursor = '0';
    do {
      signal.throwIfAborted();
      const [next, flat] = await read(redis.hscan(dataCopy, cursor, 'COUNT', SCAN_BATCH));
      cursor = next;
      const chunk: Buffer[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const key = flat[i] as string;
        const json = flat[i + 1] as string;
        if (seenEntries.has(key)) {
          continue; // HSCAN may return an element twice
        }
        seenEntries.add(key);
        try {
          JSON.parse(json);
        } catch {
          throw new BackupReadError(new Error(`storage entry "${key}" does not hold JSON`));
        }
        chunk.push(encoder.entry(key, json));
      }
      if (chunk.length > 0) {
        yield Buffer.concat(chunk);
      }
    } while (cursor !== '0');

    const seenJobs = new Set<number>();
    for (const { part, kind } of JOB_LISTS) {
      const copy = this.bk.snapshot(number, part);
      for (let start = 0; ; start += READ_BATCH) {
        signal.throwIfAborted();
        const stop = start + READ_BATCH - 1;
        let ids: string[];
        let scores: number[] | undefined;
        if (kind === 'list') {
          ids = await read(redis.lrange(copy, start, stop));
        } else {
          const flat = await read(redis.zrange(copy, start, stop, 'WITHSCORES'));
          ids = [];
          scores = [];
          for (let i = 0; i + 1 < flat.length; i += 2) {
            ids.push(flat[i] as string);
            scores.push(Number(flat[i + 1]));
          }
        }
        if (ids.length === 0) {
          break;
        }
        const lines = await read(this.readJobs(ids, scores, part, seenJobs));
        const chunk = lines.map((line) => encoder.execution(line));
        if (chunk.length > 0) {
          yield Buffer.concat(chunk);
        }
        if (ids.length < READ_BATCH) {
          break;
        }
      }
    }
    yield encoder.trailer();
  }

  /** Reads the job hashes of `ids` in one pipeline and turns them into execution lines. */
  private async readJobs(
    ids: string[],
    scores: number[] | undefined,
    from: SourceList,
    seen: Set<number>,
  ): Promise<ExecutionLine[]> {
    const keys = this.host.keys;
    const numbers = ids.map((id) => numberOfJobId(id));
    const pipe = this.host.redis.pipeline();
    for (const n of numbers) {
      if (n !== undefined) {
        pipe.hgetall(keys.job(n));
      }
    }
    const replies = (await pipe.exec()) ?? [];
    const lines: ExecutionLine[] = [];
    let r = 0;
    for (let i = 0; i < ids.length; i++) {
      const n = numbers[i];
      if (n === undefined) {
        continue; // not an execution (foreign job id)
      }
      const [err, raw] = replies[r++] ?? [null, null];
      if (err) {
        throw err;
      }
      const hash = raw as Record<string, string> | null;
      if (seen.has(n) || !hash || hash.data === undefined) {
        continue; // gone since the snapshot (its retention dropped it once it finished)
      }
      seen.add(n);
      const opts = Job.optsFromJSON(hash.opts) as Record<string, unknown>;
      const kept: Record<string, unknown> = {};
      for (const option of KEPT_OPTIONS) {
        if (opts[option] !== undefined) {
          kept[option] = opts[option];
        }
      }
      const line: ExecutionLine = {
        t: 'execution',
        n,
        state: from === 'delayed' ? 'delayed' : 'waiting',
        from,
        name: hash.name ?? '',
        data: JSON.parse(hash.data) as unknown,
        opts: kept,
        timestamp: Number(hash.timestamp ?? 0),
      };
      const score = scores?.[i];
      if (from === 'delayed' && score !== undefined) {
        line.dueAt = Math.floor(score / DELAYED_SCORE_FACTOR);
      }
      const priority = Number(hash.priority ?? 0);
      if (priority > 0) {
        line.priority = priority;
      }
      lines.push(line);
    }
    return lines;
  }

  /** Keeps the newest SPROCD_BACKUP_KEEP files of this deployment; removes stale temporary files. */
  private async prune(dir: string, log: Logger): Promise<void> {
    const prefix = this.host.settings.prefix;
    try {
      const names = await fsp.readdir(dir);
      const ours = names.filter((n) => isBackupFileOf(prefix, n)).sort();
      const excess = ours.slice(0, Math.max(0, ours.length - this.host.settings.backupKeep));
      for (const n of excess) {
        await fsp.rm(path.join(dir, n), { force: true });
      }
      const cutoff = Date.now() - STALE_TEMP_MS;
      for (const n of names) {
        if (n.startsWith(`.${prefix}-backup-`) && n.endsWith('.tmp')) {
          const st = await fsp.stat(path.join(dir, n)).catch(() => undefined);
          if (st && st.mtimeMs < cutoff) {
            await fsp.rm(path.join(dir, n), { force: true });
          }
        }
      }
      if (excess.length > 0) {
        log.info({ removed: excess }, 'old backups removed (SPROCD_BACKUP_KEEP)');
      }
    } catch (err) {
      log.warn({ err }, 'could not apply the backup retention');
    }
  }
}

/** `<prefix>-backup-<UTC yyyymmddThhmmssSSS>Z-<number, 8 digits>.sprocd.gz`: sorts by time. */
export function backupFileName(prefix: string, at: Date, number: number): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('.', '');
  return `${prefix}-backup-${stamp}-${String(number).padStart(8, '0')}${BACKUP_EXTENSION}`;
}

/** Whether `name` is a backup file of the deployment `prefix` (retention touches nothing else). */
export function isBackupFileOf(prefix: string, name: string): boolean {
  return (
    name.startsWith(`${prefix}-backup-`) &&
    name.endsWith(BACKUP_EXTENSION) &&
    /^\d{8}T\d{9}Z-\d{8,}$/.test(name.slice(prefix.length + 8, -BACKUP_EXTENSION.length))
  );
}

function parseRunning(lock: string | null): RunningBackup | undefined {
  if (lock === null) {
    return undefined;
  }
  try {
    const { number, node, trigger, startedAt } = JSON.parse(lock) as RunningBackup;
    return { number, node, trigger, startedAt };
  } catch {
    return undefined;
  }
}

function interruptedVerdict(signal: AbortSignal): Verdict {
  if (signal.reason instanceof StoppingError) {
    return {
      status: BACKUP_STATUS.interrupted,
      outcome: 'failed',
      message: 'interrupted: the node stopped during the backup',
    };
  }
  return {
    status: BACKUP_STATUS.redisFailed,
    outcome: 'failed',
    message: `interrupted: ${(signal.reason as Error | undefined)?.message ?? 'aborted'}`,
  };
}

function classify(err: unknown, signal: AbortSignal): Verdict {
  if (signal.aborted) {
    return interruptedVerdict(signal);
  }
  if (err instanceof BackupReadError || isRedisError(err)) {
    return { status: BACKUP_STATUS.redisFailed, outcome: 'failed', message: (err as Error).message };
  }
  return {
    status: BACKUP_STATUS.writeFailed,
    outcome: 'failed',
    message: `the backup file could not be written: ${(err as Error).message ?? String(err)}`,
  };
}

async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a folder; the rename is then as durable as they make it.
  } finally {
    await handle?.close().catch(() => undefined);
  }
}
