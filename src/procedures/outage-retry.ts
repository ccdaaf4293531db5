/**
 * An execution whose run ended on an error of Redis itself (unreachable, or a write its replicas did
 * not confirm) failed through no fault of its procedure: a fail-over or a restart of Redis does that
 * to whatever runs at the moment. Like a run whose node died, it runs again (at-least-once) a moment
 * later, without using up one of its procedure's attempts, up to SPROCD_MAX_RECOVERIES such re-runs
 * of one execution (docs/ARCHITECTURE.md, "Runs cut by Redis").
 */
import type { ErrorCode } from '../errors.js';

/** The codes of the errors that say Redis, not the procedure, ended the run. */
const OUTAGE_CODES: ReadonlySet<string> = new Set(['REDIS_UNAVAILABLE', 'NOT_REPLICATED']);

/** The first re-run's delay; each later one waits twice as long, up to {@link MAX_DELAY_MS}. */
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 8000;

/**
 * The code of what a run threw: a SprocdError's, or that of a copy of one, which is what comes back
 * from an `isolation: 'thread'` run (thread/protocol.ts reviveError keeps the code on a plain Error).
 */
function codeOf(err: unknown): unknown {
  return err instanceof Error ? (err as { code?: unknown }).code : undefined;
}

/** Whether `err` (what the run threw) is Redis's doing rather than the procedure's. */
export function isRedisOutage(err: unknown): boolean {
  const code = codeOf(err);
  return typeof code === 'string' && OUTAGE_CODES.has(code);
}

/**
 * Whether the run's storage commit found its job lock gone where it landed (session/errors.ts,
 * RunFencedError): the job is not the run's any more, and whoever holds it runs it again.
 */
export function isRunFenced(err: unknown): boolean {
  return codeOf(err) === ('EXECUTION_LEASE_LOST' satisfies ErrorCode);
}

/**
 * How many times the execution was started again without its procedure failing (its node died, it
 * was handed back at a stop, or Redis cut it): starts not counted as attempts. BullMQ counts every
 * start (`attemptsStarted`, this one included) and every attempt that failed (`attemptsMade`).
 */
export function recoveriesSoFar(job: { attemptsStarted: number; attemptsMade: number }): number {
  return Math.max(0, job.attemptsStarted - 1 - job.attemptsMade);
}

/** How long the `recoveries`-th such re-run waits: long enough for a fail-over to finish. */
export function outageDelayMs(recoveries: number): number {
  return Math.min(FIRST_DELAY_MS * 2 ** recoveries, MAX_DELAY_MS);
}
