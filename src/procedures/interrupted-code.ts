/**
 * An execution whose outcome an abort or a time-out decided while its code still runs (an inline
 * procedure that ignores its signal): BullMQ files it at once, so the API, the waiters and onError
 * see its end, but its processor, and with it the worker's slot, stays taken until the code settles.
 * A node so never runs more code at once than its concurrency; code that never settles holds its slot
 * (`isolation: 'thread'` is for that code: its thread is terminated instead).
 */
import { DelayedError, WaitingError, type Job, type Worker } from 'bullmq';
import type { Logger } from 'pino';
import { stopLockRenewal } from '../redis/bullmq-internals.js';
import type { JsonValue } from '../types.js';
import type { ExecutionRun } from './execution-run.js';
import type { ExecutionData } from './executions.js';

/**
 * Files the interrupted attempt of `running` in BullMQ now; `decided` is what the attempt threw for
 * BullMQ (a give-back moved its job itself). Answers what the processor throws once the code settled:
 * WaitingError, BullMQ's word for "moved already".
 */
export async function fileEarly(
  running: ExecutionRun,
  decided: unknown,
  how: {
    /** The BullMQ job it runs (the run itself sees only what a procedure reads of it). */
    job: Job<ExecutionData, JsonValue>;
    worker: Worker<ExecutionData, JsonValue> | undefined;
    logger: Logger;
    /** BullMQ's worker emits `failed` only for what it moved itself. */
    onFiled: (err: Error) => void;
  },
): Promise<unknown> {
  const { job } = how;
  if (decided instanceof WaitingError || decided instanceof DelayedError) {
    return decided;
  }
  const err = decided instanceof Error ? decided : new Error(String(decided));
  try {
    await job.moveToFailed(err, running.token, false);
    stopLockRenewal(how.worker, job.id);
    how.onFiled(err);
  } catch (moveErr) {
    // Its lock expires instead and BullMQ's stalled check recovers it; an abort's flag then aborts
    // the next attempt at once.
    how.logger.warn(
      { err: moveErr, execution: running.number },
      'interrupted execution not filed; it is recovered after its lease',
    );
  }
  how.logger.info(
    { execution: running.number, procedure: job.data.procedure },
    'execution ended while its code still runs; its slot stays taken until that code settles',
  );
  return new WaitingError();
}

/** Waits until the code of `running` settled (or a stopping node gave up on it: {@link ExecutionRun.release}). */
export async function holdSlot(running: ExecutionRun, logger: Logger): Promise<void> {
  if (running.codeDone) {
    return;
  }
  await running.codeSettled();
  logger.info(
    { execution: running.number, procedure: running.job.data.procedure },
    running.codeDone
      ? 'code of an ended execution settled; its slot is free'
      : 'code of an ended execution still running; its slot is given up as the node stops',
  );
}

/**
 * A stopping node at the end of its grace: the executions still running here are given back (or, when
 * their outcome was decided already, only let go), a thread procedure's thread is terminated, and
 * the node says which executions' code it did not wait for.
 */
export function giveUpOn(runs: readonly ExecutionRun[], logger: Logger): void {
  const stillRunning = runs.filter((r) => !r.codeDone).map((r) => r.number);
  if (stillRunning.length > 0) {
    logger.warn({ executions: stillRunning }, 'code still running after the shutdown grace; not waited for');
  }
  for (const running of runs) {
    running.interrupt('giveback');
    running.release();
  }
}
