/** Schemas of /v1/executions: Execute on server's body, the list's query, the execution as shown. */
import { z } from 'zod';
import { ExecuteOptionsSchema } from '../../procedures/execute.js';
import { MAX_BATCH_EXECUTIONS, MAX_LIST_LIMIT } from '../../procedures/executions.js';
import type { ExecutionView } from '../../types.js';
import { IsoTime, JsonValueSchema } from './common.js';

/** Longest `wait` a request may ask for. */
export const MAX_WAIT_MS = 10 * 60 * 1000;

/** The states an execution moves through. */
export const ExecutionStateSchema = z
  .enum(['waiting', 'delayed', 'active', 'completed', 'failed', 'aborted'])
  .meta({ id: 'ExecutionState' });

/** Fields of POST /v1/executions besides the procedure and its params: Execute on server's options and `wait`. */
export const ExecuteFields = ExecuteOptionsSchema.extend({
  wait: z
    .number()
    .int()
    .min(0)
    .max(MAX_WAIT_MS)
    .optional()
    .describe('Wait up to this many ms for the end, and answer 200 with the result when it came.'),
});

// The error of a missing body says what to send, not just "expected object".
const EMPTY_BODY = 'Send a JSON body such as {"procedure":"hello","params":{"who":"world"}}.';

/**
 * The body of POST /v1/executions. /openapi.json replaces it by one variant per loaded procedure,
 * with that procedure's params schema.
 */
export const ExecuteBodySchema = z
  .strictObject(
    {
      procedure: z.string().describe('The procedure: its path under jobs/ without the extension.'),
      params: JsonValueSchema.optional().describe("The procedure's params (JSON); checked by its schema."),
      ...ExecuteFields.shape,
    },
    { error: (issue) => (issue.input === undefined || issue.input === null ? EMPTY_BODY : undefined) },
  )
  .meta({ id: 'ExecuteRequest' });

/** One execution of a batch: as a single request, without `wait`. */
export const ExecuteBatchItemSchema = z
  .strictObject({
    procedure: z.string().describe('The procedure: its path under jobs/ without the extension.'),
    params: JsonValueSchema.optional().describe("The procedure's params (JSON); checked by its schema."),
    ...ExecuteOptionsSchema.shape,
  })
  .meta({ id: 'ExecuteBatchItem' });

/**
 * The batch form of POST /v1/executions: up to MAX_BATCH_EXECUTIONS executions, all queued or none.
 * /openapi.json gives its items the same variants per procedure as the single form.
 */
export const ExecuteBatchBodySchema = z
  .strictObject({
    executions: z
      .array(ExecuteBatchItemSchema)
      .min(1)
      .max(MAX_BATCH_EXECUTIONS)
      .describe(
        `1 to ${MAX_BATCH_EXECUTIONS} executions, each checked as a single request is; one bad item refuses the batch and nothing is queued.`,
      ),
  })
  .meta({ id: 'ExecuteBatchRequest' });

/** POST /v1/executions takes one execution, or a batch of them under `executions`. */
export const ExecuteAnyBodySchema = z.union([ExecuteBodySchema, ExecuteBatchBodySchema]);

/** Whether a POST /v1/executions body is the batch form. */
export function isBatchBody(body: unknown): body is { executions: unknown[] } {
  return (
    body !== null && typeof body === 'object' && Array.isArray((body as { executions?: unknown }).executions)
  );
}

/** The query of GET /v1/executions. */
export const ExecutionListQuerySchema = z.strictObject({
  state: ExecutionStateSchema.optional(),
  name: z.string().optional().describe('Only executions with this process name.'),
  procedure: z.string().optional().describe('Only executions of this procedure.'),
  from: z.string().optional().describe('Only executions created at or after this (ISO time or epoch ms).'),
  to: z.string().optional().describe('Only executions created at or before this (ISO time or epoch ms).'),
  parent: z.coerce
    .number()
    .int()
    .positive()
    .optional()
    .describe('Only the executions this one started with executeOnServer.'),
  cursor: z.string().optional().describe("The previous page's nextCursor (same filters)."),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_LIST_LIMIT)
    .optional()
    .describe(`How many at most (default 50, at most ${MAX_LIST_LIMIT}).`),
});

/** The execution number in a URL: a positive integer that fits in a double exactly. */
export const ExecutionNumberParams = z.strictObject({
  number: z
    .string()
    .regex(/^[1-9]\d{0,15}$/, {
      error: (issue) => `Execution numbers are positive integers; got ${JSON.stringify(issue.input)}.`,
    })
    .refine((raw) => Number.isSafeInteger(Number(raw)), {
      error: (issue) => `Execution numbers are positive integers; got ${JSON.stringify(issue.input)}.`,
    })
    .transform(Number)
    .describe('The execution number.'),
});

/** An execution as the API shows it. */
export const ExecutionViewSchema = z
  .object({
    number: z.number().int().positive().describe('The execution number (4D process number), cluster-wide.'),
    id: z.string(),
    procedure: z.string(),
    name: z.string().describe('The process name ("" when none was given).'),
    state: ExecutionStateSchema,
    params: JsonValueSchema,
    result: JsonValueSchema.optional().describe("The procedure's result, once completed."),
    error: z
      .object({
        name: z.string(),
        message: z.string(),
        code: z.string().optional(),
        stack: z
          .string()
          .optional()
          .describe(
            "The stack of the error the procedure threw in its last attempt (at most 8 KiB, from the top); never for sprocd's own errors (time-out, abort, params mismatch, recovery limit).",
          ),
      })
      .optional()
      .describe('Why it failed or was aborted.'),
    progress: JsonValueSchema.optional().describe('The last ctx.progress: a number 0-100 or an object.'),
    attempt: z.number().int().min(0).describe('Starts so far.'),
    attempts: z.number().int().min(1).optional().describe('Starts allowed.'),
    createdAt: IsoTime,
    startedAt: IsoTime.optional(),
    finishedAt: IsoTime.optional(),
    delayedUntil: IsoTime.optional(),
    node: z.string().optional().describe('The node that runs or ran the last attempt.'),
    parent: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('The execution that started it (executeOnServer).'),
    retryOf: z.number().int().positive().optional(),
    retriedBy: z.number().int().positive().optional(),
  })
  .meta({ id: 'Execution' }) satisfies z.ZodType<ExecutionView, unknown>;

/** The answer of POST /v1/executions: the execution, with `existing` when `unique` found a live one. */
export const ExecuteResponseSchema = ExecutionViewSchema.extend({
  existing: z.literal(true).optional().describe('Set when `unique` found a live execution of that name.'),
}).meta({ id: 'ExecuteResponse' });

/** The answer of a batch: the executions in the order asked. */
export const ExecuteBatchResponseSchema = z
  .object({
    executions: z
      .array(ExecuteResponseSchema)
      .describe('In the order asked; `existing: true` where `unique` found a live execution of that name.'),
  })
  .meta({ id: 'ExecuteBatchResponse' });

/** The answer of GET /v1/executions: newest first. */
export const ExecutionListSchema = z
  .object({
    items: z.array(ExecutionViewSchema),
    nextCursor: z.string().nullable().optional().describe('The next page, when there is one.'),
  })
  .meta({ id: 'ExecutionList' });

/** DELAY PROCESS over HTTP: when the execution's current sleep (or delayed start) ends. */
export const DelayBodySchema = z.strictObject({
  ms: z
    .number()
    .int()
    .min(0)
    .max(2_147_483_647)
    .describe('The sleep (or the delayed start) ends this many ms from now; 0: now.'),
});
