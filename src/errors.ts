/**
 * Every error sprocd raises on purpose. Each class means one thing and carries a stable `code`
 * that clients can switch on; the API layer maps codes to HTTP statuses in one place
 * (src/api/errors.ts), so nothing else in the code base knows about HTTP.
 */
import { z } from 'zod';

/**
 * Every code sprocd's own errors carry. A closed list: src/api/errors.ts maps it with a
 * `Record<ErrorCode, number>`, so a new code does not compile until it has an HTTP status.
 */
export const ERROR_CODES = [
  // requests
  'VALIDATION_FAILED',
  'INVALID_NAME',
  'BAD_JSON',
  'BAD_REQUEST',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'HOST_NOT_ALLOWED',
  'CROSS_SITE_REQUEST',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'INTERNAL',
  // the node and Redis
  'NOT_READY',
  'STOPPING',
  'REDIS_UNAVAILABLE',
  'NOT_REPLICATED',
  'CONFIG_INVALID',
  'MODULE_LOAD_FAILED',
  'REDIS_SERVER_MISSING',
  'REDIS_SERVER_FAILED',
  'REDIS_DIR_IN_USE',
  // bounded resources (src/api/limits.ts, src/procedures/execution-numbers.ts)
  'RATE_LIMITED',
  'TOO_MANY_WAITS',
  'QUEUE_FULL',
  'EXECUTION_NUMBERS_EXHAUSTED',
  'EXECUTION_NUMBER_TAKEN',
  // executions
  'UNKNOWN_PROCEDURE',
  'EXECUTION_NOT_FOUND',
  'EXECUTION_FINISHED',
  'EXECUTION_NOT_FINISHED',
  'EXECUTION_NOT_RETRYABLE',
  'EXECUTION_TIMEOUT',
  'NODE_STOPPING',
  'NODE_LOST',
  'ABORTED',
  'PARAMS_MISMATCH',
  // isolation: 'thread' procedures (src/procedures/thread/)
  'UNSUPPORTED_IN_THREAD',
  'THREAD_EXITED',
  // signals and semaphores (ctx.newSignal, ctx.semaphore)
  'SIGNAL_NOT_FOUND',
  // workers (ctx.callWorker, ctx.killWorker)
  'WORKER_NOT_FOUND',
  // the session and its storage
  'STORAGE_ENTRY_NOT_FOUND',
  'STORAGE_ENTRY_CHANGED',
  'STORAGE_KEY_INVALID',
  'STORAGE_VALUE_INVALID',
  'STORAGE_ENTRY_TOO_LARGE',
  'STORAGE_READ_ONLY',
  'STORAGE_KEY_NOT_HELD',
  'DRAFT_EXPIRED',
  'LOCK_TIMEOUT',
  'LOCK_LOST',
  'EXECUTION_LEASE_LOST',
  'SESSION_CLOSED',
  'STORAGE_SLOTS_MISMATCH',
  // backups
  'BACKUP_INVALID',
  'BACKUP_RUNNING',
  'BACKUP_NOT_FOUND',
] as const;

/** One of {@link ERROR_CODES}. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/**
 * Base of all sprocd errors: a stable machine-readable `code`, a message for people, optional details.
 * sprocd's own errors use an {@link ErrorCode}; `Code` is wider only for errors that carry a code
 * from elsewhere (the client's ApiError: an answer of another version, a procedure's own code).
 */
export class SprocdError<Code extends string = ErrorCode> extends Error {
  readonly code: Code;
  readonly details?: unknown;

  // NoInfer: `new SprocdError('X', ...)` is checked against ErrorCode instead of inferring Code = 'X';
  // a wider code is asked for by name (`SprocdError<string>`).
  constructor(code: NoInfer<Code>, message: string, options?: { details?: unknown; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    if (options?.details !== undefined) {
      this.details = options.details;
    }
  }
}

/** A request or argument that does not have the right shape; `details` lists the issues. */
export class ValidationError extends SprocdError {
  constructor(message: string, details?: unknown) {
    super('VALIDATION_FAILED', message, { details });
  }

  /** The error for a failed zod parse: `what` (e.g. "Bad body"), then zod's issues on one line. */
  static fromZod(what: string, error: z.core.$ZodError): ValidationError {
    return new ValidationError(`${what}: ${formatZodError(error)}`, {
      issues: error.issues.map((i) => ({ path: i.path.map(String), message: i.message, code: i.code })),
    });
  }
}

/**
 * A zod error on one line, for people: each issue as `path: message` with zod's own path notation
 * (`a.b[0]`, `["odd key"]`), the first five, separated by "; ". One line because the CLI prints an
 * error as one line, and a log line stays greppable.
 */
export function formatZodError(error: z.core.$ZodError): string {
  const shown = error.issues
    .slice(0, 5)
    .map((i) => (i.path.length > 0 ? `${z.core.toDotPath(i.path)}: ${i.message}` : i.message));
  const more = error.issues.length - shown.length;
  return more > 0 ? `${shown.join('; ')}; and ${more} more` : shown.join('; ');
}

/** A procedure or process name that breaks the naming rules. */
export class InvalidNameError extends SprocdError {
  constructor(message: string) {
    super('INVALID_NAME', message);
  }
}

/** No procedure of that name is loaded from jobs/. */
export class UnknownProcedureError extends SprocdError {
  constructor(name: string) {
    super('UNKNOWN_PROCEDURE', `No procedure "${name}" in jobs/ (GET /v1/procedures lists them).`, {
      details: { procedure: name },
    });
  }
}

/** No execution with that number (never created, or dropped by retention). */
export class ExecutionNotFoundError extends SprocdError {
  constructor(number: number) {
    super(
      'EXECUTION_NOT_FOUND',
      `No execution ${number}: it never existed or retention (SPROCD_KEEP_FINISHED, SPROCD_KEEP_FINISHED_S) dropped it.`,
      { details: { number } },
    );
  }
}

/** The execution already reached a final state, so it cannot be aborted or woken. */
export class ExecutionFinishedError extends SprocdError {
  constructor(number: number, state: string) {
    super('EXECUTION_FINISHED', `Execution ${number} has already finished (${state}).`, {
      details: { number, state },
    });
  }
}

/** ctx.openSignal or a signal's wait/trigger: no signal of that id (never made, or expired). */
export class SignalNotFoundError extends SprocdError {
  constructor(id: string) {
    super(
      'SIGNAL_NOT_FOUND',
      `No signal ${JSON.stringify(id)}: it was never made with ctx.newSignal, or it expired (10 min after its trigger, 24 h after its last use).`,
      { details: { id } },
    );
  }
}

/** KILL WORKER (over HTTP) of a worker that does not exist: never called, or already ended. */
export class WorkerNotFoundError extends SprocdError {
  constructor(name: string) {
    super('WORKER_NOT_FOUND', `No worker ${JSON.stringify(name)}: it was never called, or it ended.`, {
      details: { name },
    });
  }
}

/** Raised inside an execution whose abort was requested; the execution ends as `aborted`. */
export class AbortedError extends SprocdError {
  constructor(message = 'The execution was aborted.') {
    super('ABORTED', message);
  }
}

/** Missing or wrong bearer token. */
export class UnauthorizedError extends SprocdError {
  constructor(message: string) {
    super('UNAUTHORIZED', message);
  }
}

/** The node has not finished starting (onServerStartup still running). */
export class NotReadyError extends SprocdError {
  constructor() {
    super('NOT_READY', 'The node is starting (onServerStartup has not finished); retry shortly.');
  }
}

/** The node is stopping and takes no new work. */
export class StoppingError extends SprocdError {
  constructor() {
    super(
      'STOPPING',
      'The node is stopping and accepts no new executions; send the request to another node.',
    );
  }
}

/** Redis did not answer within SPROCD_REDIS_TIMEOUT_MS, or the connection is down. */
export class RedisUnavailableError extends SprocdError {
  constructor(cause?: unknown) {
    super(
      'REDIS_UNAVAILABLE',
      'Redis is unreachable or did not answer in time (SPROCD_REDIS_TIMEOUT_MS). A write sent before the time-out may still be made (a frozen Redis runs it when it wakes), so an execution request may have queued its execution: retry when Redis is back, and give executions a `unique` name so that a retry cannot queue one twice.',
      { cause },
    );
  }
}

/**
 * A write was made but fewer than SPROCD_REPLICA_ACKS replicas confirmed it in time, or the connection
 * changed (a fail-over) between the write and the confirmation: it may be lost in a fail-over, or it
 * may have happened. Retrying is safe for what is idempotent (an execution with a unique name).
 */
export class NotReplicatedError extends SprocdError {
  constructor(
    reason: 'timeout' | 'reconnected' | 'failed',
    details: { wanted: number; got?: number },
    cause?: unknown,
  ) {
    const why =
      reason === 'timeout'
        ? `only ${details.got ?? 0} of ${details.wanted} replicas confirmed it within SPROCD_REPLICA_ACK_TIMEOUT_MS`
        : reason === 'reconnected'
          ? 'the connection to Redis changed (a fail-over?) before replicas confirmed it'
          : 'Redis did not answer the replicas check';
    super(
      'NOT_REPLICATED',
      `The write was made but not acknowledged: ${why}. It may or may not survive a fail-over; retry.`,
      { details: { reason, ...details, retryAfterSeconds: 1 }, cause },
    );
  }
}

/** A setting in the environment has a bad value; the message names the variable. */
export class ConfigError extends SprocdError {
  constructor(message: string, details?: unknown) {
    super('CONFIG_INVALID', message, { details });
  }
}

/** A module under jobs/ or lifecycle/ could not be loaded. */
export class ModuleLoadError extends SprocdError {
  constructor(file: string, reason: string, cause?: unknown) {
    super('MODULE_LOAD_FAILED', `${file}: ${reason}`, { details: { file }, cause });
  }
}

/** A conflicting request, e.g. a second backup while one runs. */
export class ConflictError extends SprocdError {
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(code, message, { details });
  }
}

/** Turns anything thrown into a plain `{ name, message, code? }` that is safe to store as JSON. */
export function describeError(err: unknown): { name: string; message: string; code?: string } {
  if (err instanceof SprocdError) {
    return { name: err.name, message: err.message, code: err.code };
  }
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string'
      ? { name: err.name, message: err.message, code }
      : { name: err.name, message: err.message };
  }
  return { name: 'Error', message: String(err) };
}
