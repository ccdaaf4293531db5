/** How a running execution can end other than by its procedure's own outcome (./execution-run.ts). */
import { SprocdError } from '../errors.js';

/** Raised into a running execution's signal when its node stops. */
export class NodeStoppingError extends SprocdError {
  constructor() {
    super(
      'NODE_STOPPING',
      'The node is stopping; the execution goes back to the queue unless it ends in time.',
    );
  }
}

/** An at-most-once execution whose node died mid-run: failed rather than run again. */
export class NodeLostError extends SprocdError {
  constructor() {
    super(
      'NODE_LOST',
      'The node running this at-most-once execution died before it ended; it may have done part or all of its work, and is not run again.',
    );
  }
}

/** Raised when an execution runs past its procedure's timeoutMs. */
export class ExecutionTimeoutError extends SprocdError {
  constructor(ms: number) {
    super('EXECUTION_TIMEOUT', `The execution ran longer than its timeoutMs (${ms} ms).`);
  }
}

/** Why an execution's outcome was decided without waiting for its procedure. */
export class Interruption {
  constructor(readonly kind: 'abort' | 'giveback' | 'timeout') {}
}
