/**
 * lifecycle/onError, 4D's ON ERR CALL at the server level: called once for each execution that
 * failed for good on this node (its last attempt failed, or it failed unrecoverably), after BullMQ
 * filed it as failed, so the view it gets shows `failed`. It runs off the worker's path (the slot is
 * free again), and what it throws is logged and changes nothing. A stopping node waits for the calls
 * still running a bounded time ({@link OnErrorCalls.settle}).
 */
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { viewOf, type ExecutionData } from '../procedures/executions.js';
import { settleWithin } from '../redis/connections.js';
import type { ExecutionView, JsonValue } from '../types.js';

/** The error onError gets: the execution's stored error, and how many attempts it had. */
export interface OnErrorError {
  name: string;
  message: string;
  /** The error's code, when it has one (`BOOM`, `EXECUTION_TIMEOUT`, `UNKNOWN_PROCEDURE`...). */
  code?: string;
  /** The procedure's stack (none for sprocd's own errors: time-out, params mismatch...). */
  stack?: string;
  /** Attempts started, the last one included (`execution.attempt`). */
  attempts: number;
}

/** onError's second argument. */
export interface OnErrorInfo {
  /** The execution as GET /v1/executions/:number shows it (`state: "failed"`). */
  execution: ExecutionView;
  error: OnErrorError;
}

/** What the calls need of the node. */
export interface OnErrorHost {
  readonly log: Logger;
  /** Whether lifecycle/onError exists (read at each failure: a reload may add or remove it). */
  hasHook(): boolean;
  /** Runs the hook; `log` names the execution, and the hook runner logs a throw on it. */
  runHook(log: Logger, info: OnErrorInfo): Promise<unknown>;
  /** The execution's view, read back from Redis. */
  find(number: number): Promise<ExecutionView | undefined>;
}

/** The onError calls of one node. */
export class OnErrorCalls {
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly host: OnErrorHost) {}

  /** onError calls running now. */
  get size(): number {
    return this.running.size;
  }

  /** Calls onError, if there is one, for execution `number`, whose `job` BullMQ just filed as failed. */
  failed(number: number, job: Job<ExecutionData, JsonValue>): void {
    if (!this.host.hasHook()) {
      return;
    }
    const call: Promise<void> = this.call(number, job).finally(() => this.running.delete(call));
    this.running.add(call);
  }

  /** Waits up to `ms` for the calls running now (a stopping node, before it closes Redis). */
  async settle(ms: number): Promise<void> {
    if (this.running.size > 0) {
      await settleWithin(Promise.allSettled([...this.running]), ms);
    }
  }

  private async call(number: number, job: Job<ExecutionData, JsonValue>): Promise<void> {
    const log = this.host.log.child({ execution: number });
    let info: OnErrorInfo;
    try {
      // Retention may already have dropped it (SPROCD_KEEP_FINISHED=0): then the job as it ended here.
      const execution =
        (await this.host.find(number).catch(() => undefined)) ?? viewOf(job, 'failed', number);
      const stored = execution.error ?? { name: 'Error', message: job.failedReason ?? '' };
      info = { execution, error: { ...stored, attempts: execution.attempt } };
    } catch (err) {
      log.warn({ err }, 'onError not called: the failed execution could not be read');
      return;
    }
    // A throw is logged by the hook runner ('hook threw', with the execution): the execution stays failed.
    await this.host.runHook(log, info).catch(() => undefined);
  }
}
