/** The one place where error codes become HTTP statuses, and errors become the JSON error shape. */
import { SprocdError, type ErrorCode } from '../errors.js';
import { isRedisError } from '../redis/errors.js';

/**
 * HTTP status of each error code. A `Record` over the closed {@link ErrorCode} union: a new code does
 * not compile until it has its status here. Codes that no route can meet (a setting, a module, the
 * embedded Redis, a lock inside a procedure) are 500: reaching a route would be a bug.
 */
export const STATUS: Readonly<Record<ErrorCode, number>> = {
  VALIDATION_FAILED: 400,
  INVALID_NAME: 400,
  BAD_JSON: 400,
  BAD_REQUEST: 400,
  BACKUP_INVALID: 400,
  STORAGE_KEY_INVALID: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  HOST_NOT_ALLOWED: 403,
  CROSS_SITE_REQUEST: 403,
  NOT_FOUND: 404,
  UNKNOWN_PROCEDURE: 404,
  EXECUTION_NOT_FOUND: 404,
  STORAGE_ENTRY_NOT_FOUND: 404,
  BACKUP_NOT_FOUND: 404,
  WORKER_NOT_FOUND: 404,
  EXECUTION_FINISHED: 409,
  EXECUTION_NOT_FINISHED: 409,
  EXECUTION_NOT_RETRYABLE: 409,
  STORAGE_ENTRY_CHANGED: 409,
  BACKUP_RUNNING: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_READY: 503,
  STOPPING: 503,
  REDIS_UNAVAILABLE: 503,
  NOT_REPLICATED: 503,
  RATE_LIMITED: 429,
  TOO_MANY_WAITS: 503,
  QUEUE_FULL: 503,
  EXECUTION_NUMBERS_EXHAUSTED: 503,
  EXECUTION_NUMBER_TAKEN: 503,
  INTERNAL: 500,
  CONFIG_INVALID: 500,
  MODULE_LOAD_FAILED: 500,
  REDIS_SERVER_MISSING: 500,
  REDIS_SERVER_FAILED: 500,
  REDIS_DIR_IN_USE: 500,
  EXECUTION_TIMEOUT: 500,
  NODE_STOPPING: 500,
  NODE_LOST: 500,
  ABORTED: 500,
  PARAMS_MISMATCH: 500,
  UNSUPPORTED_IN_THREAD: 500,
  THREAD_EXITED: 500,
  SIGNAL_NOT_FOUND: 404,
  STORAGE_VALUE_INVALID: 500,
  STORAGE_ENTRY_TOO_LARGE: 500,
  STORAGE_READ_ONLY: 500,
  STORAGE_KEY_NOT_HELD: 500,
  DRAFT_EXPIRED: 500,
  LOCK_TIMEOUT: 500,
  LOCK_LOST: 500,
  EXECUTION_LEASE_LOST: 500,
  SESSION_CLOSED: 500,
  STORAGE_SLOTS_MISMATCH: 500,
};

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** An error answer: its status and body. */
export interface HttpError {
  status: number;
  body: ErrorBody;
}

/** Turns anything thrown in a route (or by fastify itself) into a status and the error shape. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof SprocdError) {
    const code: string = err.code;
    const status = Object.hasOwn(STATUS, code) ? STATUS[code as ErrorCode] : 500;
    const body: ErrorBody = { error: { code, message: err.message } };
    if (err.details !== undefined) {
      body.error.details = err.details;
    }
    return { status, body };
  }
  if (isRedisError(err)) {
    return fail(
      'REDIS_UNAVAILABLE',
      'Redis is unreachable or did not answer in time; what the request wrote may still be made. Retry when it is back (a `unique` name makes an execution request safe to retry).',
    );
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fail('PAYLOAD_TOO_LARGE', `${e.message ?? 'Body too large'} (SPROCD_BODY_LIMIT).`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return fail('UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return fail('BAD_JSON', 'The body is empty but Content-Type says application/json.');
    default:
      break;
  }
  if (err instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message ?? ''))) {
    return fail('BAD_JSON', `The body is not valid JSON: ${e.message ?? ''}`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    // A 4xx fastify raises itself keeps its status (405, 414, ...), with our shape.
    return {
      status: e.statusCode,
      body: { error: { code: 'BAD_REQUEST', message: e.message ?? 'Bad request' } },
    };
  }
  return fail('INTERNAL', 'Internal error; the node log has the details.');
}

/** The answer for `code`, with the status the table gives it. */
export function fail(code: ErrorCode, message: string): HttpError {
  return { status: STATUS[code], body: { error: { code, message } } };
}
