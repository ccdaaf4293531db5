/**
 * The CLI's exit codes, one per kind of outcome a script may branch on, and the error that carries
 * one. The README's "CLI" section lists them; keep the two in step.
 */
import { ApiError, SprocdApiError } from '../client/errors.js';

/** Exit codes of `sprocd`. */
export const EXIT = {
  /** Done. */
  ok: 0,
  /** Anything else: the node answered 500, or a bug. */
  error: 1,
  /** A bad command line: unknown command or option, a value that is not a number or not JSON, a file that cannot be read. */
  usage: 2,
  /** No such execution, procedure, storage entry or route (404). */
  notFound: 3,
  /** The node refused the request (400, 401, 403, 409, 413, 415), or the CLI did (restore not confirmed). */
  refused: 4,
  /** The execution ended failed or aborted, or the backup did not end with status 0. */
  failed: 5,
  /** `exec --wait` ran out before the execution ended. */
  timeout: 6,
  /** No answer from the node, or not now: 503 (starting, stopping, Redis unavailable), 429 (rate limit). */
  unavailable: 7,
} as const;

/** An outcome the CLI itself decides, with its exit code. */
export class CliError extends ApiError {
  constructor(
    code: string,
    message: string,
    readonly exitCode: number,
  ) {
    super(code, message, 0);
  }
}

/** A usage error (exit 2). */
export const usageError = (message: string): CliError => new CliError('BAD_ARGUMENT', message, EXIT.usage);

/** The exit code for what a command threw. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) {
    return err.exitCode;
  }
  if (err instanceof SprocdApiError) {
    if (err.code === 'UNREACHABLE' || err.status === 503 || err.status === 429) {
      return EXIT.unavailable;
    }
    if (err.status === 404) {
      return EXIT.notFound;
    }
    return err.status >= 400 && err.status < 500 ? EXIT.refused : EXIT.error;
  }
  if (err instanceof ApiError && err.status === 0) {
    // Raised by the CLI's live views (cli-events.ts): a bad option value, or a followed execution
    // that failed (its code is the execution's).
    return err.code === 'BAD_ARGUMENT' ? EXIT.usage : EXIT.failed;
  }
  return EXIT.error;
}
