/**
 * How a backup's end is encoded, without Redis: what onBackupStartup returned or threw, an error
 * while writing, an interruption, each to its status code and outcome.
 */
import { describe, expect, it } from 'vitest';
import { StoppingError } from '../../src/errors.js';
import {
  BACKUP_STATUS,
  BackupReadError,
  BackupWriteError,
  failureVerdict,
  interruptedVerdict,
  startupVerdict,
} from '../../src/lifecycle/backup-status.js';

const notAborted = new AbortController().signal;

describe('startupVerdict', () => {
  it.each([undefined, null, 0])('runs the backup when onBackupStartup returns %s', (returned) => {
    expect(startupVerdict({ returned })).toEqual({ status: 0, outcome: 'done' });
  });

  it('cancels with the number onBackupStartup returned', () => {
    expect(startupVerdict({ returned: 9 })).toEqual({
      status: 9,
      outcome: 'cancelled',
      message: 'cancelled: onBackupStartup returned 9',
    });
    expect(startupVerdict({ returned: -1 })).toMatchObject({ status: -1, outcome: 'cancelled' });
  });

  it('fails with 1411 when onBackupStartup throws', () => {
    expect(startupVerdict({ threw: new Error('no disk') })).toEqual({
      status: BACKUP_STATUS.hookThrew,
      outcome: 'failed',
      message: 'onBackupStartup threw: no disk',
    });
  });

  it.each([['yes'], [{ go: true }], [Number.NaN], [Infinity], [true]])(
    'fails with 1411 when onBackupStartup returns %s, not a number',
    (returned) => {
      const verdict = startupVerdict({ returned });
      expect(verdict).toMatchObject({ status: 1411, outcome: 'failed' });
      expect(verdict.message).toMatch(/return 0 \(or nothing\) to run the backup/);
    },
  );
});

describe('interruptedVerdict', () => {
  it('is 1406 when the node stopped', () => {
    expect(interruptedVerdict(new StoppingError())).toEqual({
      status: BACKUP_STATUS.interrupted,
      outcome: 'failed',
      message: 'interrupted: the node stopped during the backup',
    });
  });

  it('is 1407 when the lock was lost, with the reason', () => {
    expect(interruptedVerdict(new Error('lost the backup lock (its lease ran out)'))).toEqual({
      status: BACKUP_STATUS.redisFailed,
      outcome: 'failed',
      message: 'interrupted: lost the backup lock (its lease ran out)',
    });
    expect(interruptedVerdict(undefined)).toMatchObject({ status: 1407, message: 'interrupted: aborted' });
  });
});

describe('failureVerdict', () => {
  it('is the interruption when the backup was aborted, whatever the error', () => {
    const controller = new AbortController();
    controller.abort(new StoppingError());
    expect(failureVerdict(new Error('stream closed'), controller.signal)).toMatchObject({ status: 1406 });
  });

  it('is 1407 when reading Redis failed', () => {
    const verdict = failureVerdict(new BackupReadError(new Error('Connection is closed.')), notAborted);
    expect(verdict).toEqual({
      status: BACKUP_STATUS.redisFailed,
      outcome: 'failed',
      message: 'reading the content from Redis failed: Connection is closed.',
    });
    expect(failureVerdict(new Error('Connection is closed.'), notAborted)).toEqual({
      status: BACKUP_STATUS.redisFailed,
      outcome: 'failed',
      message: 'Connection is closed.',
    });
  });

  it('is 1410 when the file could not be written', () => {
    const cause = new Error('EACCES: permission denied');
    expect(failureVerdict(new BackupWriteError('cannot write to /x: EACCES', { cause }), notAborted)).toEqual(
      {
        status: BACKUP_STATUS.writeFailed,
        outcome: 'failed',
        message: 'the backup file could not be written: cannot write to /x: EACCES',
      },
    );
    expect(failureVerdict(new Error('ENOSPC: no space left on device'), notAborted)).toMatchObject({
      status: 1410,
    });
  });
});
