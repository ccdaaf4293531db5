/**
 * How a backup ends, as a status code and an outcome: the codes (4D's backup error numbers) and the
 * rules that turn what happened (what onBackupStartup returned, an error, an interruption) into
 * them. Pure: no Redis, no files (docs/ARCHITECTURE.md#backups-and-restore).
 */
import { StoppingError, describeError } from '../errors.js';
import { isRedisError } from '../redis/errors.js';

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

/** How a backup ended, before it is written down in the history. */
export interface Verdict {
  status: number;
  outcome: BackupOutcome;
  message?: string;
  /** With status 1401: the code of the failure that stopped automatic backups. */
  cause?: number;
}

/** The backup file could not be written (ends with 1410). */
export class BackupWriteError extends Error {
  constructor(message: string, options: { cause: unknown }) {
    super(message, options);
    this.name = 'BackupWriteError';
  }
}

/** Redis failed while the content was read (ends with 1407). */
export class BackupReadError extends Error {
  constructor(cause: unknown) {
    super(`reading the content from Redis failed: ${(cause as Error).message ?? String(cause)}`, { cause });
    this.name = 'BackupReadError';
  }
}

/** What onBackupStartup did: returned a value, or threw. */
export type StartupResult = { returned: unknown } | { threw: unknown };

/** onBackupStartup: 0 or nothing runs the backup; another number cancels; a throw is 1411. */
export function startupVerdict(result: StartupResult): Verdict {
  if ('threw' in result) {
    return {
      status: BACKUP_STATUS.hookThrew,
      outcome: 'failed',
      message: `onBackupStartup threw: ${describeError(result.threw).message}`,
    };
  }
  const returned = result.returned;
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

/** A backup cut short: by its node's stop (1406), or by the loss of its lock (1407). */
export function interruptedVerdict(reason: unknown): Verdict {
  if (reason instanceof StoppingError) {
    return {
      status: BACKUP_STATUS.interrupted,
      outcome: 'failed',
      message: 'interrupted: the node stopped during the backup',
    };
  }
  return {
    status: BACKUP_STATUS.redisFailed,
    outcome: 'failed',
    message: `interrupted: ${(reason as Error | undefined)?.message ?? 'aborted'}`,
  };
}

/** The verdict of a backup whose writing threw `err`: interrupted, Redis (1407), or the file (1410). */
export function failureVerdict(err: unknown, signal: AbortSignal): Verdict {
  if (signal.aborted) {
    return interruptedVerdict(signal.reason);
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
