/**
 * A procedure's params through its zod schema, at both ends of the queue. When the execution is
 * requested, the schema's OUTPUT is what the execution stores (defaults filled in, coercions done),
 * so what an execution shows is what its procedure ran with. When it starts, the stored params are
 * checked again against the schema the node has now: a deploy may have changed it, and params that
 * no longer fit fail the execution at once with PARAMS_MISMATCH instead of failing every retry.
 */
import type { z } from 'zod';
import { SprocdError, ValidationError, formatZodError } from '../errors.js';
import type { JsonValue } from '../types.js';
import { assertJson } from './json.js';

/** The stored params of an execution no longer fit its procedure's schema (a deploy changed it). */
export class ParamsMismatchError extends SprocdError {
  constructor(procedure: string, error: z.core.$ZodError) {
    super(
      'PARAMS_MISMATCH',
      `The params stored with this execution no longer match procedure "${procedure}" (its params schema changed since it was queued): ${formatZodError(error)}`,
      { details: { procedure } },
    );
  }
}

/**
 * Parses `params` of a request with `schema`; `undefined` means "no params". No params run a schema
 * that fills in defaults: `undefined` is tried first (an optional or defaulted schema), then `{}` (an
 * object whose fields all have defaults).
 */
function parse(schema: z.ZodType, params: unknown): z.ZodSafeParseResult<unknown> {
  const parsed = schema.safeParse(params);
  if (parsed.success || params !== undefined) {
    return parsed;
  }
  const empty = schema.safeParse({});
  if (empty.success) {
    return empty;
  }
  // An object schema with required fields: its issues for {} name the missing fields, which says
  // more than "expected object, received undefined".
  const root = parsed.error.issues[0];
  const wantsObject =
    parsed.error.issues.length === 1 &&
    root?.path.length === 0 &&
    root.code === 'invalid_type' &&
    root.expected === 'object';
  return wantsObject ? empty : parsed;
}

/**
 * The params an execution of `procedure` stores: without a schema the request's params (null when
 * none); with one, what the schema produced. Throws ValidationError for params the schema refuses,
 * a schema output that is not JSON, or a schema that does not give back its own output unchanged
 * (a transform that changes the value): the output is checked again when the execution starts, so
 * it must pass the schema as it is.
 */
export function requestParams(procedure: string, schema: z.ZodType | undefined, params: unknown): JsonValue {
  if (params !== undefined) {
    assertJson(params, 'params');
  }
  if (!schema) {
    return (params === undefined ? null : params) as JsonValue;
  }
  const parsed = parse(schema, params);
  if (!parsed.success) {
    throw ValidationError.fromZod(`params do not match procedure "${procedure}"`, parsed.error);
  }
  const output = parsed.data === undefined ? null : parsed.data;
  assertJson(output, `params (as procedure "${procedure}"'s schema produced them)`);
  const again = parseStored(schema, output as JsonValue);
  if (!again.success || JSON.stringify(again.data ?? null) !== JSON.stringify(output)) {
    throw new ValidationError(
      `procedure "${procedure}"'s params schema does not accept its own output unchanged; sprocd stores the parsed params and checks them again when the execution starts, so declare the params as the procedure receives them (defaults, coercions and refinements work; a transform that changes the value does not)`,
    );
  }
  return output as JsonValue;
}

/**
 * The params a starting execution runs with: the stored ones through the procedure's schema of now.
 * Throws ParamsMismatchError when they no longer fit. Stored `null` also stands for "no params"
 * (executions queued without a schema, or before the schema's output was stored).
 */
export function runParams(procedure: string, schema: z.ZodType | undefined, stored: JsonValue): unknown {
  if (!schema) {
    return stored;
  }
  const parsed = parseStored(schema, stored);
  if (parsed.success) {
    return parsed.data;
  }
  throw new ParamsMismatchError(procedure, parsed.error);
}

/** Parses stored params; a stored null also stands for "no params" (see {@link runParams}). */
function parseStored(schema: z.ZodType, stored: JsonValue): z.ZodSafeParseResult<unknown> {
  const parsed = schema.safeParse(stored);
  if (parsed.success || stored !== null) {
    return parsed;
  }
  const none = parse(schema, undefined);
  return none.success ? none : parsed;
}
