/**
 * The backup history: one record per backup (also what POST /v1/backups answers), newest first, at
 * most {@link HISTORY_LIMIT} of them in a Redis list (docs/ARCHITECTURE.md#backups-and-restore).
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { BackupOutcome, BackupTrigger, Verdict } from './backup-status.js';

/** History lines kept in Redis. */
export const HISTORY_LIMIT = 200;

/** One line of the backup history (also the answer of POST /v1/backups). */
export interface BackupRecord {
  /** Backup number, from a cluster-wide counter. */
  number: number;
  trigger: BackupTrigger;
  node: string;
  startedAt: string;
  finishedAt: string;
  durationMs: number;
  /** 0, the number onBackupStartup returned, or an error code (BACKUP_STATUS). */
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

/** What a written backup file adds to its record. */
export interface WrittenFile {
  file: string;
  size: number;
  entries: number;
  executions: number;
  snapshotMs: number;
}

/** The facts of one backup run that its record is made of. */
interface RunFacts {
  number: number;
  trigger: BackupTrigger;
  node: string;
  /** When it started (ms). */
  started: number;
  /** The tick time of a scheduled backup (ms). */
  scheduledAt?: number;
  /** 0 for the tick, then the retry number. */
  attempt?: number;
}

/** The history record of a run that ends now with `verdict` (and `written`, when a file was). */
export function backupRecord(run: RunFacts, verdict: Verdict, written?: WrittenFile): BackupRecord {
  const finished = Date.now();
  const record: BackupRecord = {
    number: run.number,
    trigger: run.trigger,
    node: run.node,
    startedAt: new Date(run.started).toISOString(),
    finishedAt: new Date(finished).toISOString(),
    durationMs: finished - run.started,
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
  if (run.scheduledAt !== undefined) {
    record.scheduledAt = new Date(run.scheduledAt).toISOString();
  }
  if (run.attempt !== undefined) {
    record.attempt = run.attempt;
  }
  return record;
}

/** Adds `record` to the history list at `key`, dropping the oldest beyond {@link HISTORY_LIMIT}. */
export async function pushHistory(redis: RedisConnection, key: string, record: BackupRecord): Promise<void> {
  await redis
    .multi()
    .lpush(key, JSON.stringify(record))
    .ltrim(key, 0, HISTORY_LIMIT - 1)
    .exec();
}

/** The newest `limit` records of the history list at `key`, newest first. */
export async function readHistory(
  redis: RedisConnection,
  key: string,
  limit: number,
): Promise<BackupRecord[]> {
  const lines = await redis.lrange(key, 0, limit - 1);
  return lines.map((line) => JSON.parse(line) as BackupRecord);
}
