/**
 * The rules of the automatic-backup policy, without Redis: when a tick is missed, when a failure
 * stops automatic backups (1401), and when a failed backup is retried.
 */
import { describe, expect, it } from 'vitest';
import { countedFailure, isMissedTick, retryAttempt } from '../../src/lifecycle/automatic-backups.js';
import type { BackupRecord } from '../../src/lifecycle/backup-history.js';
import { BACKUP_STATUS, type Verdict } from '../../src/lifecycle/backup-status.js';

const tick = Date.parse('2026-03-01T02:00:00Z');

describe('isMissedTick', () => {
  it('is missed when taken late and every live node started after the tick', () => {
    expect(isMissedTick(tick, tick + 5000, [tick + 1000, tick + 3000])).toBe(true);
    expect(isMissedTick(tick, tick + 5000, [])).toBe(true);
  });

  it('is not missed when a live node ran at the tick, however late', () => {
    expect(isMissedTick(tick, tick + 60_000, [tick - 1, tick + 3000])).toBe(false);
  });

  it('is not missed when taken within the grace of 2 s', () => {
    expect(isMissedTick(tick, tick + 2000, [tick + 1000])).toBe(false);
    expect(isMissedTick(tick, tick + 2001, [tick + 1000])).toBe(true);
  });
});

describe('countedFailure', () => {
  const failed: Verdict = { status: BACKUP_STATUS.writeFailed, outcome: 'failed', message: 'disk full' };

  it('keeps the failure as it is below the limit', () => {
    expect(countedFailure(failed, 2, 3)).toBe(failed);
  });

  it('stops automatic backups (1401) at the limit, with the failure as the cause', () => {
    const stopped = countedFailure(failed, 3, 3);
    expect(stopped).toMatchObject({
      status: BACKUP_STATUS.automaticStopped,
      outcome: 'failed',
      cause: BACKUP_STATUS.writeFailed,
    });
    expect(stopped.message).toBe(
      'automatic backups stopped after 3 consecutive failures (SPROCD_BACKUP_MAX_FAILURES=3) until a manual backup succeeds or a node restarts; last failure: disk full',
    );
    expect(countedFailure({ status: 1411, outcome: 'failed' }, 4, 3).message).toMatch(/last failure: 1411$/);
  });
});

describe('retryAttempt', () => {
  const record = (status: number, outcome: BackupRecord['outcome']): BackupRecord => ({
    number: 1,
    trigger: 'schedule',
    node: 'n',
    startedAt: '',
    finishedAt: '',
    durationMs: 0,
    status,
    outcome,
  });

  it('retries a failed backup while retries are left', () => {
    expect(retryAttempt(record(1410, 'failed'), 0, 2)).toBe(1);
    expect(retryAttempt(record(1410, 'failed'), 1, 2)).toBe(2);
    expect(retryAttempt(record(1410, 'failed'), 2, 2)).toBeUndefined();
    expect(retryAttempt(record(1410, 'failed'), 0, 0)).toBeUndefined();
  });

  it('does not retry a backup that did not fail, nor the one that stopped automatic backups', () => {
    expect(retryAttempt(record(0, 'done'), 0, 2)).toBeUndefined();
    expect(retryAttempt(record(9, 'cancelled'), 0, 2)).toBeUndefined();
    expect(retryAttempt(record(1412, 'skipped'), 0, 2)).toBeUndefined();
    expect(retryAttempt(record(1401, 'failed'), 0, 2)).toBeUndefined();
  });
});
