/**
 * How an execution's error is kept. BullMQ keeps only a `failedReason` string, so sprocd stores the
 * error as JSON there; reasons that BullMQ writes itself (a job stalled too often) stay plain text.
 */
import { SprocdError, describeError } from '../errors.js';

/** An execution's error as the API shows it. */
export interface StoredError {
  name: string;
  message: string;
  code?: string;
}

/** Most characters of a stack kept (its head: the message and the innermost frames). */
export const MAX_STACK_CHARS = 8192;

/**
 * The stack of an error a procedure threw, cut to {@link MAX_STACK_CHARS}; none for sprocd's own
 * errors (time-out, abort, params mismatch...): their frames are sprocd's, not the procedure's.
 */
export function procedureStack(err: unknown): string | undefined {
  if (!(err instanceof Error) || err instanceof SprocdError || typeof err.stack !== 'string' || !err.stack) {
    return undefined;
  }
  return capStack(err.stack);
}

/** `stack` cut to {@link MAX_STACK_CHARS}. */
export function capStack(stack: string): string {
  return stack.length <= MAX_STACK_CHARS ? stack : `${stack.slice(0, MAX_STACK_CHARS)}\n    … (cut)`;
}

/**
 * The `failedReason` that stores `err`. `stack: true` says that the job's last stack trace is this
 * error's (see {@link failureError}); BullMQ keeps stack traces apart, so the reason stays short.
 */
export function encodeFailure(err: unknown): string {
  return JSON.stringify(procedureStack(err) ? { ...describeError(err), stack: true } : describeError(err));
}

/**
 * The error a worker throws to fail an execution with `cause`: its message is the encoded failure,
 * and its stack the procedure's stack, which BullMQ adds to the job's stack traces.
 */
export function failureError<E extends Error>(cause: unknown, Kind: new (message: string) => E): E {
  const err = new Kind(encodeFailure(cause));
  const stack = procedureStack(cause);
  if (stack) {
    err.stack = stack;
  }
  return err;
}

/** Whether a `failedReason` says that the job's last stack trace belongs to its error. */
export function failureHasStack(reason: string | undefined): boolean {
  if (!reason?.startsWith('{')) {
    return false;
  }
  try {
    return (JSON.parse(reason) as { stack?: unknown }).stack === true;
  } catch {
    return false;
  }
}

/** The error stored in a `failedReason`. */
export function decodeFailure(reason: string | undefined): StoredError | undefined {
  if (reason === undefined || reason === '') {
    return undefined;
  }
  if (reason.startsWith('{')) {
    try {
      const parsed = JSON.parse(reason) as Partial<StoredError>;
      if (typeof parsed.message === 'string') {
        return {
          name: parsed.name ?? 'Error',
          message: parsed.message,
          ...(parsed.code ? { code: parsed.code } : {}),
        };
      }
    } catch {
      // plain text after all
    }
  }
  if (/stalled more than allowable limit/.test(reason)) {
    return {
      name: 'RecoveryLimitError',
      message: `Its node died more often than SPROCD_MAX_RECOVERIES allows (${reason}).`,
      code: 'RECOVERY_LIMIT',
    };
  }
  return { name: 'Error', message: reason };
}
