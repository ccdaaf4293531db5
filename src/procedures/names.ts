/** Naming rules for procedures and process names, with their limits as named constants. */
import { InvalidNameError } from '../errors.js';

/** Longest procedure name (its path under jobs/ without the extension). */
export const PROCEDURE_NAME_MAX = 200;
/** Longest process name (4D: the `name` of Execute on server). */
export const PROCESS_NAME_MAX = 255;
/** Longest worker name (4D: a worker is a process, named like one). */
export const WORKER_NAME_MAX = 255;
/** Longest semaphore name (4D: 255 characters). */
export const SEMAPHORE_NAME_MAX = 255;

const PROCEDURE_NAME = /^[A-Za-z0-9_-]+(?:\/[A-Za-z0-9_-]+)*$/;

/** Throws InvalidNameError unless `name` is a well-formed procedure name like "billing/sendInvoices". */
export function assertProcedureName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError(
      '"procedure" must be a non-empty string such as "hello" or "billing/sendInvoices".',
    );
  }
  if (name.length > PROCEDURE_NAME_MAX) {
    throw new InvalidNameError(
      `Procedure name is ${name.length} characters; at most ${PROCEDURE_NAME_MAX} are allowed.`,
    );
  }
  if (!PROCEDURE_NAME.test(name)) {
    throw new InvalidNameError(
      `Bad procedure name ${JSON.stringify(name)}: use segments of A-Z a-z 0-9 _ - joined by "/" (no "..", no leading or trailing "/").`,
    );
  }
}

/** Throws InvalidNameError unless `name` is a valid process name: 1-255 characters, not starting with "$". */
export function assertProcessName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError('"name" must be a non-empty string (1-255 characters).');
  }
  if (name.length > PROCESS_NAME_MAX) {
    throw new InvalidNameError(
      `"name" is ${name.length} characters; at most ${PROCESS_NAME_MAX} are allowed.`,
    );
  }
  if (name.startsWith('$')) {
    throw new InvalidNameError(
      `"name" must not start with "$": 4D refuses local process names on the server, and so does sprocd.`,
    );
  }
}

/**
 * Throws InvalidNameError unless `name` is a valid semaphore name: 1-255 characters, not starting with
 * "$" (4D's local semaphores; every sprocd semaphore is shared by the whole deployment).
 */
export function assertSemaphoreName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError('A semaphore name must be a non-empty string (1-255 characters).');
  }
  if (name.length > SEMAPHORE_NAME_MAX) {
    throw new InvalidNameError(
      `Semaphore name is ${name.length} characters; at most ${SEMAPHORE_NAME_MAX} are allowed.`,
    );
  }
  if (name.startsWith('$')) {
    throw new InvalidNameError(
      `Bad semaphore name ${JSON.stringify(name)}: "$" names are 4D's local semaphores; sprocd's are all shared by the deployment, so drop the "$".`,
    );
  }
}

/**
 * Throws InvalidNameError unless `name` is a valid worker name: 1-255 characters, not starting with "$"
 * (4D's local processes: every sprocd worker is shared by the cluster), without control characters.
 */
export function assertWorkerName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidNameError('A worker name must be a non-empty string (1-255 characters).');
  }
  if (name.length > WORKER_NAME_MAX) {
    throw new InvalidNameError(
      `Worker name is ${name.length} characters; at most ${WORKER_NAME_MAX} are allowed.`,
    );
  }
  if (name.startsWith('$')) {
    throw new InvalidNameError(
      `Bad worker name ${JSON.stringify(name)}: "$" names are 4D's local processes; every sprocd worker is shared by the cluster, so drop the "$".`,
    );
  }
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidNameError(`Bad worker name ${JSON.stringify(name)}: no control characters.`);
  }
}
