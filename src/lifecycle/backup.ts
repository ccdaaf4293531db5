/**
 * Backups: one at a time in the whole cluster (backup-lock.ts), through onBackupStartup /
 * onBackupShutdown, read from a consistent snapshot (backup-snapshot.ts) into one self-checking
 * file (backup-format.ts, backup-file.ts), ended with a status (backup-status.ts) that the
 * automatic-backup policy may change (automatic-backups.ts), and kept in the history
 * (backup-history.ts). See docs/ARCHITECTURE.md#backups-and-restore.
 */
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import { ConflictError, StoppingError, describeError } from '../errors.js';
import { BackupProgress, type PublishEvent } from '../events/backup-progress.js';
import type { HookContext } from '../types.js';
import { AutomaticBackupPolicy, type PolicyHost, type RunOptions } from './automatic-backups.js';
import { backupFileName, pruneBackups, writeBackupFile } from './backup-file.js';
import { BACKUP_FORMAT, BACKUP_VERSION, BackupEncoder, type BackupHeader } from './backup-format.js';
import { backupKey, type BackupKey } from './backup-signature.js';
import {
  backupRecord,
  pushHistory,
  readHistory,
  type BackupRecord,
  type WrittenFile,
} from './backup-history.js';
import { BackupLock, runningBackup, type RunningBackup } from './backup-lock.js';
import { BackupSnapshot, type SnapshotAcks } from './backup-snapshot.js';
import {
  BACKUP_STATUS,
  failureVerdict,
  interruptedVerdict,
  startupVerdict,
  type BackupTrigger,
  type StartupResult,
  type Verdict,
} from './backup-status.js';
import type { HookName } from './hooks.js';

/** What onBackupStartup and onBackupShutdown find in `ctx.backup`. */
interface BackupHookInfo {
  number: number;
  trigger: BackupTrigger;
  scheduledAt?: string;
  attempt?: number;
}

/** The context of the backup hooks: the usual hook context plus `backup`. */
export type BackupHookContext = HookContext & { backup: BackupHookInfo };

/** What GET /v1/backups shows, but the next scheduled time (Schedules.nextBackupAt has it). */
interface BackupStatus {
  items: BackupRecord[];
  running?: RunningBackup;
  automaticStopped: boolean;
  consecutiveFailures: number;
}

/** What the backup service needs of its node (the lifecycle host fits; the benchmark builds a small one). */
export interface BackupHost extends PolicyHost {
  readonly name: string;
  readonly settings: PolicyHost['settings'] &
    Pick<
      Settings,
      | 'prefix'
      | 'backupDir'
      | 'backupKeep'
      | 'backupKey'
      | 'restoreMaxBytes'
      | 'storageMaxEntryBytes'
      | 'bodyLimit'
    > &
    /** SPROCD_STORAGE_SLOTS (absent: 1). */
    Partial<Pick<Settings, 'storageSlots'>>;
  /**
   * Runs lifecycle hook `name` in the session with the usual hook context plus `extra`, logging
   * under `log`; undefined when the hook does not exist; rethrows what the hook throws.
   */
  runHook(name: HookName, log: Logger, extra: object, ...args: unknown[]): Promise<unknown>;
  /** Emits a system event to this node's onSystemEvent hook. */
  emitSystemEvent(event: { type: string } & Record<string, unknown>): void;
  /** Sends an event to GET /v1/events (backup.started, backup.progress, backup.finished). */
  readonly publish?: PublishEvent;
  /**
   * SPROCD_REPLICA_ACKS: the snapshot waits for replicas (src/redis/replica-acks.ts); each queue
   * shard's part for those of its own master when `routed` is there.
   */
  readonly acks?: SnapshotAcks;
}

/** The backups of one node. */
export class BackupService {
  private current: { controller: AbortController; task: Promise<BackupRecord> } | undefined;
  private closed = false;
  /** SPROCD_BACKUP_KEY: signs the files written here, verifies the files restored here. */
  readonly key: BackupKey | undefined;

  /** `policy` defaults to one of its own on `host` (the lifecycle shares one with the schedules). */
  constructor(
    readonly host: BackupHost,
    private readonly policy = new AutomaticBackupPolicy(host),
  ) {
    this.key = backupKey(host.settings.backupKey);
  }

  /** The history, newest first, with the running backup and the failure policy's state. */
  async status(limit = 50): Promise<BackupStatus> {
    const { redis, keys } = this.host;
    const [items, running, state] = await Promise.all([
      readHistory(redis, keys.backup.history, limit),
      runningBackup(redis, keys),
      this.policy.state(),
    ]);
    return running ? { items, running, ...state } : { items, ...state };
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
    const { redis, keys, name } = this.host;
    const number = await redis.incr(keys.backup.number);
    const started = Date.now();
    const controller = new AbortController();
    const lock = await BackupLock.acquire(
      redis,
      keys,
      { number, node: name, trigger, startedAt: new Date(started).toISOString() },
      () => controller.abort(new Error('lost the backup lock (its lease ran out)')),
    );
    if (!lock) {
      const running = await runningBackup(redis, keys);
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
      const record = backupRecord(
        { number, trigger, node: name, started, ...options },
        { status: BACKUP_STATUS.busy, outcome: 'skipped', message: `skipped: ${who}` },
      );
      await pushHistory(redis, keys.backup.history, record);
      this.host.log.info({ backup: number, trigger }, `backup skipped: ${who}`);
      return record;
    }
    const task = this.perform({ number, trigger, started, options }, lock, controller.signal);
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
    const { redis, keys, name } = this.host;
    const controller = new AbortController();
    const lock = await BackupLock.acquire(
      redis,
      keys,
      { number: 0, node: name, trigger: 'restore', startedAt: new Date().toISOString() },
      () => controller.abort(new Error('lost the backup lock (its lease ran out)')),
    );
    if (!lock) {
      const running = await runningBackup(redis, keys);
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
    run: { number: number; trigger: BackupTrigger; started: number; options: RunOptions },
    lock: BackupLock,
    signal: AbortSignal,
  ): Promise<BackupRecord> {
    const { number, trigger, options } = run;
    const log = this.host.log.child({ backup: number });
    const info: BackupHookInfo = { number, trigger };
    if (options.scheduledAt !== undefined) {
      info.scheduledAt = new Date(options.scheduledAt).toISOString();
    }
    if (options.attempt !== undefined) {
      info.attempt = options.attempt;
    }
    log.info({ trigger, scheduledAt: info.scheduledAt, attempt: options.attempt }, 'backup started');
    const progress = new BackupProgress(this.host.publish, { number, node: this.host.name });
    progress.started({ trigger, startedAt: new Date(run.started).toISOString() });
    let verdict: Verdict;
    let written: WrittenFile | undefined;
    if (options.failWith) {
      verdict = { status: options.failWith.status, outcome: 'failed', message: options.failWith.message };
    } else {
      progress.report('hook');
      verdict = startupVerdict(await this.startupHook(info, log));
      if (verdict.outcome === 'done') {
        if (signal.aborted) {
          verdict = interruptedVerdict(signal.reason);
        } else {
          try {
            written = await this.write(number, trigger, signal, log, progress);
          } catch (err) {
            verdict = failureVerdict(err, signal);
          }
        }
      }
    }
    verdict = await this.policy.settle(trigger, verdict, log);
    const record = backupRecord(
      { number, trigger, node: this.host.name, started: run.started, ...options },
      verdict,
      written,
    );
    try {
      await this.host.runHook('onBackupShutdown', log, { backup: { ...info } }, verdict.status);
    } catch (err) {
      record.shutdownHookError = describeError(err).message;
    }
    await lock
      .release()
      .catch((err: unknown) => log.warn({ err }, 'could not release the backup lock; it expires'));
    await pushHistory(this.host.redis, this.host.keys.backup.history, record).catch((err: unknown) =>
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
    progress.finished(record);
    return record;
  }

  private async startupHook(info: BackupHookInfo, log: Logger): Promise<StartupResult> {
    try {
      return { returned: await this.host.runHook('onBackupStartup', log, { backup: { ...info } }) };
    } catch (err) {
      return { threw: err };
    }
  }

  /** Writes the file from a snapshot taken once the file is open, then applies the retention. */
  private async write(
    number: number,
    trigger: BackupTrigger,
    signal: AbortSignal,
    log: Logger,
    progress: BackupProgress,
  ): Promise<WrittenFile> {
    const { settings: s, redis, keys, name } = this.host;
    const now = new Date();
    const snapshot = new BackupSnapshot(redis, keys, number, this.host.acks, s.storageSlots ?? 1);
    const encoder = new BackupEncoder(this.key);
    let snapshotMs = 0;
    const header: BackupHeader = {
      format: BACKUP_FORMAT,
      version: BACKUP_VERSION,
      createdAt: now.toISOString(),
      prefix: s.prefix,
      node: name,
      number,
      trigger,
      ...encoder.signature(),
    };
    let written: { file: string; size: number };
    try {
      written = await writeBackupFile(
        s.backupDir,
        backupFileName(s.prefix, now, number),
        async () => {
          const snapshotStarted = performance.now();
          progress.report('snapshot', 0, 0, true);
          await snapshot.take();
          snapshotMs = Math.round((performance.now() - snapshotStarted) * 10) / 10;
          return progress.track(
            snapshot.lines(header, encoder, signal),
            () => encoder.entries + encoder.executions,
            await snapshot.size(),
          );
        },
        signal,
      );
    } finally {
      await snapshot.discard();
    }
    await pruneBackups(s.backupDir, s.prefix, s.backupKeep, log);
    return { ...written, entries: encoder.entries, executions: encoder.executions, snapshotMs };
  }
}
