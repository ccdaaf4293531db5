/** The one place where error codes become HTTP statuses, and errors become the JSON error shape. */
import { SprocdError } from '../errors.js';
import { isRedisError } from '../redis/errors.js';

/** HTTP status of each error code; anything unknown is a 500. */
const STATUS: Record<string, number> = {
  VALIDATION_FAILED: 400,
  INVALID_NAME: 400,
  BAD_JSON: 400,
  BAD_REQUEST: 400,
  BACKUP_INVALID: 400,
  UNAUTHORIZED: 401,
  UNKNOWN_PROCEDURE: 404,
  EXECUTION_NOT_FOUND: 404,
  NOT_FOUND: 404,
  STORAGE_ENTRY_NOT_FOUND: 404,
  EXECUTION_FINISHED: 409,
  BACKUP_RUNNING: 409,
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_READY: 503,
  STOPPING: 503,
  REDIS_UNAVAILABLE: 503,
};

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Turns anything thrown in a route (or by fastify itself) into a status and the error shape. */
export function toHttpError(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof SprocdError) {
    const body: ErrorBody = { error: { code: err.code, message: err.message } };
    if (err.details !== undefined) {
      body.error.details = err.details;
    }
    return { status: STATUS[err.code] ?? 500, body };
  }
  if (isRedisError(err)) {
    return {
      status: 503,
      body: {
        error: {
          code: 'REDIS_UNAVAILABLE',
          message: 'Redis is unreachable or did not answer in time; retry when it is back.',
        },
      },
    };
  }
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return fail(413, 'PAYLOAD_TOO_LARGE', `${e.message ?? 'Body too large'} (SPROCD_BODY_LIMIT).`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return fail(415, 'UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return fail(400, 'BAD_JSON', 'The body is empty but Content-Type says application/json.');
    default:
      break;
  }
  if (err instanceof SyntaxError || (e.statusCode === 400 && /JSON/i.test(e.message ?? ''))) {
    return fail(400, 'BAD_JSON', `The body is not valid JSON: ${e.message ?? ''}`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return fail(e.statusCode, 'BAD_REQUEST', e.message ?? 'Bad request');
  }
  return fail(500, 'INTERNAL', 'Internal error; the node log has the details.');
}

function fail(status: number, code: string, message: string): { status: number; body: ErrorBody } {
  return { status, body: { error: { code, message } } };
}
