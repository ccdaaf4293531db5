/** defineProcedure: the typed way to write a procedure module's default export. */
import type { JobsOptions } from 'bullmq';
import type { z } from 'zod';
import type { JsonValue, ProcedureContext } from '../types.js';

/** Marks objects made by defineProcedure; a global symbol so that two copies of sprocd agree. */
export const PROCEDURE_MARK = Symbol.for('sprocd.procedure');

/** How long to wait between attempts. A number is a fixed delay in ms. */
export type Backoff = number | { type: 'fixed' | 'exponential'; delayMs: number };

/** A procedure's backoff as BullMQ's job option (default: exponential from 1 s). */
export function toBullBackoff(backoff: Backoff | undefined): JobsOptions['backoff'] {
  if (backoff === undefined) {
    return { type: 'exponential', delay: 1000 };
  }
  if (typeof backoff === 'number') {
    return { type: 'fixed', delay: backoff };
  }
  return { type: backoff.type, delay: backoff.delayMs };
}

/**
 * What a procedure module declares. `P` is what `run` gets (the schema's output), `I` what a request
 * gives (its input: a field with a default may be left out); the typed client reads `I`.
 */
export interface ProcedureDefinition<P = unknown, R = unknown, I = P> {
  /**
   * Checked when the execution is requested; a bad request is refused and nothing is queued. The
   * execution keeps what the schema produced (defaults filled in; no params at all run a schema whose
   * fields have defaults), and `run` gets the stored params through the schema again when it starts:
   * params that no longer fit (a deploy changed the schema) fail it at once with PARAMS_MISMATCH. So
   * the schema must give back its own output unchanged: defaults, coercions and refinements do; a
   * transform that changes the value is refused when an execution is requested.
   */
  params?: z.ZodType<P, I>;
  /** The work. Its result must be JSON; it is kept with the execution. */
  run: (params: P, ctx: ProcedureContext) => R | Promise<R>;
  /** How many starts at most when it throws. @defaultValue 1 (no retry) */
  attempts?: number;
  /** Delay between attempts. @defaultValue exponential from 1000 ms */
  backoff?: Backoff;
  /** The execution fails (and may retry) when it runs longer than this. @defaultValue none */
  timeoutMs?: number;
  /**
   * `at-least-once`: an execution whose node dies mid-run, or stops before it ends, runs again on
   * another node (its code may then run twice). `at-most-once`: it never runs twice: a node that died
   * mid-run leaves it failed with code NODE_LOST, a stop aborts it instead of handing it back, and it
   * takes no retries (`attempts` is 1). @defaultValue 'at-least-once'
   */
  delivery?: Delivery;
  /** One line shown by GET /v1/procedures. */
  description?: string;
  /**
   * `'inline'`: `run` runs on the node's event loop, with every other execution; an abort ends the
   * execution at once but its code goes on (keeping its worker slot) until it settles. `'thread'`:
   * each execution runs the module's `run` in a worker thread of its own, with its `ctx` passed over
   * to the node; an abort, a time-out or the node stopping terminates the thread, so even code that
   * never yields is stopped. Costs a thread start per execution (idle threads are reused), and
   * params, results and what crosses `ctx` must be JSON. @defaultValue 'inline'
   */
  isolation?: Isolation;
  /**
   * Run on a cron schedule (cron-parser syntax, seconds allowed), once per tick in the whole cluster,
   * as an execution named `schedule:<procedure>` (docs/BACKUPS.md). @defaultValue none
   */
  schedule?: ProcedureScheduleOption<P>;
}

/** Where a procedure's code runs: see {@link ProcedureDefinition.isolation}. */
export type Isolation = 'inline' | 'thread';

/** How often an execution of a procedure may run: see {@link ProcedureDefinition.delivery}. */
export type Delivery = 'at-least-once' | 'at-most-once';

/** A procedure's schedule: a cron expression, or one with its time zone and the params to run with. */
export type ProcedureScheduleOption<P = unknown> = string | { cron: string; tz?: string; params?: P };

/** A procedure as defineProcedure returns it. */
export type Procedure<P = unknown, R = unknown, I = P> = ProcedureDefinition<P, R, I> & {
  readonly [PROCEDURE_MARK]: true;
};

/**
 * Declares a procedure: `export default defineProcedure({ params: z.object({...}), run: async (p, ctx) => ... })`.
 * Validates the options now, so a mistake stops the start with the file's path.
 */
export function defineProcedure<P = JsonValue, R = unknown, I = P>(
  definition: ProcedureDefinition<P, R, I>,
): Procedure<P, R, I> {
  if (typeof definition !== 'object' || definition === null || typeof definition.run !== 'function') {
    throw new TypeError('defineProcedure needs an object with a run(params, ctx) function.');
  }
  if (
    definition.attempts !== undefined &&
    !(Number.isInteger(definition.attempts) && definition.attempts >= 1)
  ) {
    throw new TypeError('defineProcedure: attempts must be a whole number of 1 or more.');
  }
  if (
    definition.timeoutMs !== undefined &&
    !(Number.isFinite(definition.timeoutMs) && definition.timeoutMs > 0)
  ) {
    throw new TypeError('defineProcedure: timeoutMs must be a positive number of milliseconds.');
  }
  if (
    definition.delivery !== undefined &&
    definition.delivery !== 'at-least-once' &&
    definition.delivery !== 'at-most-once'
  ) {
    throw new TypeError("defineProcedure: delivery must be 'at-least-once' or 'at-most-once'.");
  }
  if (
    definition.isolation !== undefined &&
    definition.isolation !== 'inline' &&
    definition.isolation !== 'thread'
  ) {
    throw new TypeError("defineProcedure: isolation must be 'inline' or 'thread'.");
  }
  if (definition.delivery === 'at-most-once' && (definition.attempts ?? 1) > 1) {
    throw new TypeError(
      "defineProcedure: an 'at-most-once' procedure never runs twice, so it takes no retries (attempts 1).",
    );
  }
  const backoff = definition.backoff;
  if (
    backoff !== undefined &&
    !(typeof backoff === 'number'
      ? backoff >= 0
      : backoff && typeof backoff.delayMs === 'number' && backoff.delayMs >= 0)
  ) {
    throw new TypeError(
      'defineProcedure: backoff must be a delay in ms or { type: "fixed" | "exponential", delayMs }.',
    );
  }
  if (
    definition.params !== undefined &&
    typeof (definition.params as { safeParse?: unknown }).safeParse !== 'function'
  ) {
    throw new TypeError('defineProcedure: params must be a zod schema (import { z } from "sprocd").');
  }
  return Object.freeze({ ...definition, [PROCEDURE_MARK]: true as const });
}
