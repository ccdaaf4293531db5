/**
 * Execute on server's request rules, shared by every way in: the options schema that both
 * POST /v1/executions and `ctx.executeOnServer` check, and the one `executeOnServer` function that
 * procedures and hooks get.
 */
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { ExecuteOptions, ExecuteRequest, ExecutionView } from '../types.js';
import { assertProcessName } from './names.js';

/** Largest `delayMs` accepted (about 10 years); beyond that it is surely a mistake. */
export const MAX_DELAY_MS = 10 * 365 * 24 * 3600 * 1000;
/** BullMQ's priority range. */
export const MAX_PRIORITY = 2_097_152;
/** Most attempts one execution may ask for. */
export const MAX_ATTEMPTS = 1000;

/**
 * The options of Execute on server ({@link ExecuteOptions}). A plain object schema, so the API can
 * extend it with its own fields; "unique needs a name" and the process-name rules are checked by
 * {@link parseExecuteOptions}, which gives a bad name its own code (INVALID_NAME).
 */
export const ExecuteOptionsSchema = z.strictObject({
  name: z.string().optional(),
  unique: z.boolean().optional(),
  delayMs: z.number().int().min(0).max(MAX_DELAY_MS).optional(),
  priority: z.number().int().min(0).max(MAX_PRIORITY).optional(),
  attempts: z.number().int().min(1).max(MAX_ATTEMPTS).optional(),
}) satisfies z.ZodType<ExecuteOptions>;

/**
 * Checks Execute on server's options: ValidationError for a bad shape or `unique` without `name`,
 * InvalidNameError for a bad process name.
 */
export function parseExecuteOptions(options: unknown): ExecuteOptions {
  const parsed = ExecuteOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw ValidationError.fromZod('Bad options', parsed.error);
  }
  const checked = parsed.data;
  if (checked.name !== undefined) {
    assertProcessName(checked.name);
  }
  if (checked.unique && checked.name === undefined) {
    throw new ValidationError('"unique" needs a "name": uniqueness is by process name.');
  }
  return checked;
}

/** What executeOnServer needs: Execute on server on the queue. */
export interface Executor {
  execute(
    procedure: unknown,
    params: unknown,
    options?: ExecuteOptions,
    links?: ExecutionLinks,
  ): Promise<{ execution: ExecutionView; existing: boolean }>;
  executeBatch(
    requests: readonly unknown[],
    links?: ExecutionLinks,
  ): Promise<{ execution: ExecutionView; existing: boolean }[]>;
}

/** How a new execution relates to others, kept with it (the console shows children and retries). */
export interface ExecutionLinks {
  /** The execution whose procedure started it with executeOnServer. */
  parent?: number;
  /** The failed or aborted execution it retries. */
  retryOf?: number;
}

/** `ctx.executeOnServer` of procedures and hooks: Execute on server, answering the view with `existing`. */
export function executeOnServerWith(
  executor: () => Executor,
  links?: ExecutionLinks,
): (
  procedure: string,
  params?: unknown,
  options?: ExecuteOptions,
) => Promise<ExecutionView & { existing?: boolean }> {
  return async (procedure, params, options) => {
    const { execution, existing } = await executor().execute(procedure, params, options, links);
    return { ...execution, existing };
  };
}

/** `ctx.executeOnServerBatch` of procedures and hooks: a batch, answering each view with `existing`. */
export function executeOnServerBatchWith(
  executor: () => Executor,
  links?: ExecutionLinks,
): (executions: readonly ExecuteRequest[]) => Promise<(ExecutionView & { existing?: boolean })[]> {
  return async (executions) => {
    const results = await executor().executeBatch(executions, links);
    return results.map(({ execution, existing }) => ({ ...execution, existing }));
  };
}
