/**
 * One worker message running on its worker's node: an {@link ExecutionRun} and its `ctx` over a job
 * made for the message (a message is not a BullMQ job), with `ctx.worker` set. Its outcome is the
 * procedure's, or the node stopping (given back: the next owner runs it again), or its time-out.
 */
import type { RunJob, RunServices } from '../execution-run.js';
import { ExecutionRun, ExecutionTimeoutError, Interruption } from '../execution-run.js';
import { ExecutionContext } from '../execution-context.js';
import type { ProcedureDefinition } from '../define.js';
import type { WorkerScope } from '../../types.js';
import type { StoredMessage } from './workers.js';

/** What a message needs of its worker. */
export interface MessageWorker {
  readonly name: string;
  readonly token: string;
  /** ctx.worker. */
  readonly scope: WorkerScope;
  readonly services: RunServices;
}

/** How a message ended. */
export interface MessageEnd {
  outcome: 'completed' | 'failed' | 'given back';
  /** What it failed with. */
  error?: unknown;
}

/** ctx.progress of a message: checked by ctx, kept nowhere (a message has no view to show it in). */
const NO_PROGRESS: RunJob['updateProgress'] = () => Promise.resolve();

/**
 * Runs `message` as `attempt` on `worker`; `onStart` gets the run (the stop fires its signal and
 * interrupts it). The process number of a message is 0: it is not an execution.
 */
export async function runMessage(
  worker: MessageWorker,
  definition: ProcedureDefinition<unknown, unknown>,
  message: StoredMessage,
  attempt: number,
  onStart: (run: ExecutionRun) => void,
): Promise<MessageEnd> {
  const job: RunJob = {
    data: { procedure: message.p, params: message.a, id: message.i, name: worker.name },
    attemptsStarted: attempt,
    processedOn: Date.now(),
    updateProgress: NO_PROGRESS,
  };
  const run = new ExecutionRun(0, job, worker.token);
  run.worker = worker.scope;
  onStart(run);
  const ctx = new ExecutionContext(run, worker.services);
  try {
    run.start(definition, ctx);
    await run.outcome;
    return { outcome: 'completed' };
  } catch (err) {
    if (run.interruption === 'shutdown' || (err instanceof Interruption && err.kind === 'giveback')) {
      return { outcome: 'given back' };
    }
    return {
      outcome: 'failed',
      error: err instanceof Interruption ? new ExecutionTimeoutError(definition.timeoutMs ?? 0) : err,
    };
  } finally {
    run.finish();
    // Its semaphores are freed and its signal waits end before the next message starts.
    await ctx.endSync()?.catch(() => undefined);
  }
}
