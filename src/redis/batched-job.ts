/**
 * The jobs of a BatchedWorker (./batched-worker.ts, which makes them through the Worker's `Job` getter).
 * A job's completion goes straight to its worker's next call: BullMQ's Job.moveToCompleted wraps the
 * same filing in a telemetry span and two more async steps (about a tenth of what a no-op execution
 * allocates), for what is, without telemetry, the same few fields set around the backend's
 * moveToCompleted. With telemetry configured, or a queue that is not a batched worker, BullMQ's own
 * method runs, span and all.
 */
import { Job, type WorkerOptions } from 'bullmq';

/** What a BatchedWorker offers its jobs. */
interface CompletionFiler {
  readonly opts: WorkerOptions;
  fileCompleted(
    job: Job,
    returnValue: unknown,
    token: string,
    fetchNext: boolean,
  ): Promise<{ result: unknown; finishedOn: number }>;
}

function isFiler(queue: unknown): queue is CompletionFiler {
  return typeof (queue as Partial<CompletionFiler> | undefined)?.fileCompleted === 'function';
}

export class BatchedJob<D = unknown, R = unknown, N extends string = string> extends Job<D, R, N> {
  override async moveToCompleted(returnValue: R, token: string, fetchNext = true): Promise<void | unknown[]> {
    const worker: unknown = this.queue;
    if (!isFiler(worker) || worker.opts.telemetry) {
      return super.moveToCompleted(returnValue, token, fetchNext);
    }
    // As BullMQ's: the value is kept on the job (a falsy one as undefined), a value JSON cannot hold
    // fails the filing (the worker's JSON.stringify throws), then the filing's time and one more attempt.
    this.returnvalue = (returnValue || undefined) as R;
    const { result, finishedOn } = await worker.fileCompleted(this, returnValue, token, fetchNext);
    this.finishedOn = finishedOn;
    this.attemptsMade += 1;
    return result as unknown[] | undefined;
  }
}
