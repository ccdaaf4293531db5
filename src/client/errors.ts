/** The errors of the client: an error answer of the API (its code typed), or no answer at all. */
import { SprocdError, type ErrorCode } from '../errors.js';

/** Codes the client raises itself: the node did not answer, or answered what is not the API. */
export type ClientErrorCode = 'UNREACHABLE' | 'BAD_RESPONSE';

/** The code of a {@link SprocdApiError}: one of the API's {@link ErrorCode}s, or the client's own. */
export type ApiErrorCode = ErrorCode | ClientErrorCode;

/**
 * An error with a code and an HTTP status (0: no answer). The base of {@link SprocdApiError}; its
 * code is any string, for errors that carry a code from elsewhere (the CLI's, a procedure's own).
 */
export class ApiError extends SprocdError<string> {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details?: unknown,
  ) {
    super(code, message, { details });
  }
}

/**
 * What a {@link SprocdClient} call throws: the node's error answer (`code` as the API documents it,
 * `status`, `details`), `UNREACHABLE` (status 0) when no answer came, or `BAD_RESPONSE` when the answer
 * is not the API's (a proxy's page, say). A node of a newer version may send a code this version
 * does not list: it is kept as sent.
 */
export class SprocdApiError extends ApiError {
  declare readonly code: ApiErrorCode;

  constructor(code: ApiErrorCode, message: string, status: number, details?: unknown) {
    super(code, message, status, details);
  }
}
