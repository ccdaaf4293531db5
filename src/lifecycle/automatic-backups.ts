/**
 * The automatic-backup policy, all of it (docs/ARCHITECTURE.md#schedules, docs/BACKUPS.md):
 * - a backup that ends with 0 resets the count of consecutive failures; a manual one also resumes
 *   stopped automatic backups, and so does a node start;
 * - a failed automatic backup counts; the one that reaches SPROCD_BACKUP_MAX_FAILURES stops
 *   automatic backups (they are then ignored) and ends with 1401 instead of its own code;
 * - a backup tick taken more than {@link MISSED_GRACE_MS} late while every live node started after
 *   its time is "missed": recorded as failed (1402), then the backup runs at once;
 * - a tick whose node died during its backup is recorded as interrupted (1406);
 * - a failed automatic backup is retried after SPROCD_BACKUP_RETRY_DELAY_MS, up to
 *   SPROCD_BACKUP_RETRIES times, unless automatic backups stopped or a backup succeeded since.
 * Which node takes a tick, and that it fires once, is schedule.ts's part.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import type { Settings } from '../config.js';
import type { Keys } from '../redis/keys.js';
import type { BackupRecord } from './backup-history.js';
import { BACKUP_STATUS, type BackupTrigger, type Verdict } from './backup-status.js';
import { liveNodes } from './heartbeat.js';

/** A backup tick later than this, with no node running at its time, is missed (1402). */
const MISSED_GRACE_MS = 2000;

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

/** A retry of a failed automatic backup, as the lifecycle queue carries it. */
export interface BackupRetry {
  /** The time of the tick whose backup failed (ms). */
  scheduledAt: number;
  /** 1 for the first retry, then 2, ... */
  attempt: number;
  /** When the failure happened (ms): a success after it makes the retry pointless. */
  failedAt: number;
}

/** What the policy asks of the backups and the schedules to act. */
export interface PolicyActions {
  /** Runs a backup on this node (BackupService.run). */
  run(trigger: BackupTrigger, options: RunOptions): Promise<BackupRecord>;
  /** Queues `retry` to run in `delayMs`, on whichever node takes it. */
  queueRetry(retry: BackupRetry, delayMs: number): Promise<void>;
}

/** What the policy needs of its node. */
export interface PolicyHost {
  readonly keys: Keys;
  readonly redis: RedisConnection;
  readonly log: Logger;
  readonly settings: Pick<
    Settings,
    'backupMaxFailures' | 'backupRetries' | 'backupRetryDelayMs' | 'nodeTimeoutMs'
  >;
}

/** What a tick or retry handler returns to the lifecycle job (kept as the job's result). */
type TickResult = BackupRecord | { ignored: string };

/** True when a tick taken at `now` is late and every live node started after it (nobody could take it on time). */
export function isMissedTick(tickAt: number, now: number, nodesStartedAt: readonly number[]): boolean {
  return now - tickAt > MISSED_GRACE_MS && nodesStartedAt.every((startedAt) => startedAt > tickAt);
}

/**
 * The verdict of a failed automatic backup that is the `failures`-th in a row: its own, or 1401
 * (with its code as the cause) once `failures` reaches `max`.
 */
export function countedFailure(verdict: Verdict, failures: number, max: number): Verdict {
  if (failures < max) {
    return verdict;
  }
  return {
    status: BACKUP_STATUS.automaticStopped,
    outcome: 'failed',
    cause: verdict.status,
    message: `automatic backups stopped after ${failures} consecutive failures (SPROCD_BACKUP_MAX_FAILURES=${max}) until a manual backup succeeds or a node restarts; last failure: ${verdict.message ?? verdict.status}`,
  };
}

/** The attempt number of the retry `record` (attempt `attempt`) calls for, if any. */
export function retryAttempt(record: BackupRecord, attempt: number, retries: number): number | undefined {
  if (record.outcome !== 'failed' || record.status === BACKUP_STATUS.automaticStopped || attempt >= retries) {
    return undefined;
  }
  return attempt + 1;
}

/** The automatic-backup policy of one node, its state in Redis (failure count, stop, last success). */
export class AutomaticBackupPolicy {
  constructor(private readonly host: PolicyHost) {}

  /** A node start clears the automatic-backup stop (4D: "until a restart"). */
  async resume(): Promise<void> {
    const bk = this.host.keys.backup;
    if ((await this.host.redis.get(bk.stopped)) !== null) {
      await this.host.redis.del(bk.stopped, bk.failures);
      this.host.log.info('automatic backups resume: a node started since they were stopped');
    }
  }

  /** Whether automatic backups are stopped, and how many failed in a row. */
  async state(): Promise<{ automaticStopped: boolean; consecutiveFailures: number }> {
    const bk = this.host.keys.backup;
    const [stopped, failures] = await Promise.all([
      this.host.redis.exists(bk.stopped),
      this.host.redis.get(bk.failures),
    ]);
    return { automaticStopped: stopped === 1, consecutiveFailures: Number(failures ?? 0) };
  }

  /**
   * Applies the policy to a backup that ended with `verdict`, before onBackupShutdown hears it:
   * counts failures, stops automatic backups, resets on success. Returns the verdict to keep.
   * Never throws: a Redis failure here keeps the backup's own verdict.
   */
  async settle(trigger: BackupTrigger, verdict: Verdict, log: Logger): Promise<Verdict> {
    const { redis, keys, settings } = this.host;
    const bk = keys.backup;
    try {
      if (verdict.outcome === 'done') {
        const m = redis.multi().del(bk.failures).set(bk.lastSuccess, String(Date.now()));
        if (trigger === 'manual') {
          m.del(bk.stopped);
        }
        await m.exec();
        return verdict;
      }
      if (verdict.outcome !== 'failed' || trigger === 'manual') {
        return verdict;
      }
      const failures = await redis.incr(bk.failures);
      const settled = countedFailure(verdict, failures, settings.backupMaxFailures);
      if (settled !== verdict) {
        await redis.set(
          bk.stopped,
          JSON.stringify({ at: new Date().toISOString(), failures, cause: verdict.status }),
        );
        log.error({ failures, cause: verdict.status }, 'automatic backups stopped after too many failures');
      }
      return settled;
    } catch (err) {
      log.warn({ err }, 'could not update the backup failure count');
      return verdict;
    }
  }

  /** A backup tick this node claimed: ignored while stopped, recorded as missed and run, or run. */
  async onTick(act: PolicyActions, millis: number): Promise<TickResult> {
    if (await this.stopped()) {
      this.host.log.info(
        { scheduledAt: new Date(millis).toISOString() },
        'backup tick ignored: automatic backups are stopped',
      );
      return { ignored: 'automatic backups stopped' };
    }
    if (await this.missed(millis)) {
      const missed = await act.run('schedule', {
        scheduledAt: millis,
        attempt: 0,
        failWith: {
          status: BACKUP_STATUS.missed,
          message: `missed: no node was running at ${new Date(millis).toISOString()}, the scheduled time`,
        },
      });
      if (missed.outcome === 'skipped' || missed.status === BACKUP_STATUS.automaticStopped) {
        return missed;
      }
      // 4D: a missed backup counts as failed and the "if backup fails" rules apply: run it now.
      return this.retryIfFailed(act, await act.run('missed', { scheduledAt: millis, attempt: 0 }), millis, 0);
    }
    return this.retryIfFailed(act, await act.run('schedule', { scheduledAt: millis, attempt: 0 }), millis, 0);
  }

  /** A backup tick whose node died during its backup: that attempt failed (1406). */
  async onOrphanedTick(act: PolicyActions, millis: number): Promise<TickResult> {
    const record = await act.run('schedule', {
      scheduledAt: millis,
      attempt: 0,
      failWith: {
        status: BACKUP_STATUS.interrupted,
        message: 'interrupted: the node running this scheduled backup died',
      },
    });
    return this.retryIfFailed(act, record, millis, 0);
  }

  /** A queued retry: runs unless automatic backups stopped or a backup succeeded since the failure. */
  async onRetry(act: PolicyActions, retry: BackupRetry): Promise<TickResult> {
    if (await this.stopped()) {
      return { ignored: 'automatic backups stopped' };
    }
    if (Number((await this.host.redis.get(this.host.keys.backup.lastSuccess)) ?? 0) > retry.failedAt) {
      return { ignored: 'a backup succeeded since the failure' };
    }
    const record = await act.run('retry', { scheduledAt: retry.scheduledAt, attempt: retry.attempt });
    return this.retryIfFailed(act, record, retry.scheduledAt, retry.attempt);
  }

  private async stopped(): Promise<boolean> {
    return (await this.host.redis.exists(this.host.keys.backup.stopped)) === 1;
  }

  private async missed(millis: number): Promise<boolean> {
    const { redis, keys, settings } = this.host;
    const nodes = await liveNodes(redis, keys, settings.nodeTimeoutMs);
    return isMissedTick(
      millis,
      Date.now(),
      nodes.map((n) => Date.parse(n.startedAt)),
    );
  }

  /** Queues the next retry of a failed automatic backup, while the policy allows one. */
  private async retryIfFailed(
    act: PolicyActions,
    record: BackupRecord,
    scheduledAt: number,
    attempt: number,
  ): Promise<BackupRecord> {
    const s = this.host.settings;
    const next = retryAttempt(record, attempt, s.backupRetries);
    if (next === undefined) {
      return record;
    }
    await act.queueRetry({ scheduledAt, attempt: next, failedAt: Date.now() }, s.backupRetryDelayMs);
    this.host.log.info(
      { backup: record.number, retry: next, of: s.backupRetries, delayMs: s.backupRetryDelayMs },
      'failed backup will be retried',
    );
    return record;
  }
}
