/**
 * One Execute-on-server request made into what BullMQ is given (the job data and options), after
 * every check: shared by a single request and each item of a batch, so both follow the same rules.
 * Nothing here touches Redis.
 */
import { randomUUID } from 'node:crypto';
import type { JobsOptions } from 'bullmq';
import { SprocdError, UnknownProcedureError, ValidationError } from '../errors.js';
import type { ExecuteOptions, JsonValue } from '../types.js';
import { toBullBackoff } from './define.js';
import { parseExecuteOptions, type ExecutionLinks } from './execute.js';
import { assertProcedureName } from './names.js';
import { requestParams } from './params.js';
import type { ProcedureRegistry } from './registry.js';

/** What travels in the BullMQ job. */
export interface ExecutionData {
  procedure: string;
  params: JsonValue;
  id: string;
  name: string;
  /** The execution that started this one with executeOnServer. */
  parent?: number;
  /** The execution this one retries (POST /v1/executions/:n/retry). */
  retryOf?: number;
}

/** Retention of finished executions, from the settings. */
export interface Retention {
  keepFinished: number;
  keepFinishedSeconds: number;
}

/** BullMQ's retention of finished executions, given to the worker that finishes them. */
export function retentionOf(retention: Retention): { count: number; age: number } {
  return { count: retention.keepFinished, age: retention.keepFinishedSeconds };
}

/** A checked request: the job to add and the state it starts in. */
export interface PreparedExecution {
  data: ExecutionData;
  opts: JobsOptions;
  state: 'waiting' | 'delayed';
}

/** Most executions one batch request may hold. */
export const MAX_BATCH_EXECUTIONS = 1000;

/**
 * Checks one request (procedure name, procedure loaded, options, params through the procedure's
 * schema) and makes its job. Throws InvalidNameError, UnknownProcedureError or ValidationError.
 */
export function prepareExecution(
  registry: ProcedureRegistry,
  procedure: unknown,
  params: unknown,
  requested?: ExecuteOptions,
  links?: ExecutionLinks,
): PreparedExecution {
  assertProcedureName(procedure);
  const definition = registry.get(procedure);
  if (!definition) {
    throw new UnknownProcedureError(procedure);
  }
  const options = parseExecuteOptions(requested);
  const jsonParams = requestParams(procedure, definition.params, params);
  const name = options.name ?? '';
  const attempts = options.attempts ?? definition.attempts ?? 1;
  if (definition.delivery === 'at-most-once' && attempts > 1) {
    throw new ValidationError(
      `Procedure "${procedure}" is at-most-once: an execution of it never runs twice, so it takes no retries (attempts 1).`,
    );
  }
  // Retention is the worker's (retentionOf above), not each job's: options in the job hash cost
  // every waiting execution their bytes, and a short hash stays in Redis's compact encoding.
  const opts: JobsOptions = { attempts };
  if (attempts > 1) {
    opts.backoff = toBullBackoff(definition.backoff);
    // The view shows the last attempt's stack only (./failure.ts); one attempt has one anyway.
    opts.stackTraceLimit = 1;
  }
  if (options.delayMs) {
    opts.delay = options.delayMs;
  }
  if (options.priority) {
    opts.priority = options.priority;
  }
  if (options.unique) {
    // BullMQ's deduplication key lives until the job completes or fails, which is exactly
    // "a live execution of that name"; its add script checks and sets it atomically, so two
    // nodes asked at once still start one.
    opts.deduplication = { id: `name:${name}` };
  }
  const data: ExecutionData = { procedure, params: jsonParams, id: randomUUID(), name };
  if (links?.parent !== undefined) {
    data.parent = links.parent;
  }
  if (links?.retryOf !== undefined) {
    data.retryOf = links.retryOf;
  }
  return { data, opts, state: options.delayMs ? 'delayed' : 'waiting' };
}

/**
 * Checks every item of a batch; the first bad one refuses the whole batch with a ValidationError
 * naming its index and why (its own code in `details.code`), so nothing is queued.
 */
export function prepareBatch(
  registry: ProcedureRegistry,
  requests: readonly unknown[],
  links?: ExecutionLinks,
): PreparedExecution[] {
  if (!Array.isArray(requests) || requests.length === 0 || requests.length > MAX_BATCH_EXECUTIONS) {
    throw new ValidationError(
      `A batch holds 1 to ${MAX_BATCH_EXECUTIONS} executions; got ${Array.isArray(requests) ? requests.length : typeof requests}.`,
    );
  }
  return requests.map((request, index) => {
    try {
      if (request === null || typeof request !== 'object' || Array.isArray(request)) {
        throw new ValidationError('Each execution of a batch is an object such as {"procedure":"hello"}.');
      }
      const { procedure, params, ...options } = request as Record<string, unknown>;
      return prepareExecution(registry, procedure, params, options as ExecuteOptions, links);
    } catch (err) {
      if (!(err instanceof SprocdError)) {
        throw err;
      }
      const details = err.details !== null && typeof err.details === 'object' ? err.details : {};
      throw new ValidationError(`executions[${index}]: ${err.message}`, {
        ...details,
        index,
        code: err.code,
      });
    }
  });
}
