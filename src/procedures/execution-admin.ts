/**
 * What the console does to executions besides abort and wake: retry a failed or aborted one (a new
 * execution with the same procedure, params and name, linked to the old one both ways), remove a
 * finished one, do either (or abort) to every execution a filter matches, and tell one execution's
 * story (its timeline), read from BullMQ's event stream while it still holds it.
 */
import { Job, type Queue } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import { ExecutionNotFoundError, SprocdError } from '../errors.js';
import { RETRIED_BY_FIELD, bullQueueKeys, executionJobKey } from '../redis/bullmq-internals.js';
import { jobIdOf, type Keys } from '../redis/keys.js';
import { markRetried } from '../redis/scripts.js';
import type { ExecutionState, ExecutionView, JsonValue } from '../types.js';
import type { ExecutionLinks } from './execute.js';
import { listPage, type PageQuery } from './execution-pages.js';
import { decodeFailure } from './failure.js';

/** What the admin needs of the executions (executions.ts's Executions fits). */
export interface AdminExecutions {
  /** The BullMQ queue of execution `number`'s queue shard. */
  queueOf(number: number): Queue;
  execute(
    procedure: unknown,
    params: unknown,
    options?: { name?: string; attempts?: number; priority?: number },
    links?: ExecutionLinks,
  ): Promise<{ execution: ExecutionView }>;
  get(number: number): Promise<ExecutionView>;
  abort(number: number): Promise<ExecutionView>;
}

/** A bulk action. */
export type BulkAction = 'abort' | 'retry' | 'remove';

/** Which executions a bulk action is for. */
export type BulkFilter = Pick<PageQuery, 'state' | 'procedure' | 'name' | 'from' | 'to'>;

/** What a bulk action did (or, with dryRun, would do). */
export interface BulkResult {
  action: BulkAction;
  /** Executions that match the filter and that the action applies to. */
  matched: number;
  /** Done (not with dryRun). */
  done?: number;
  /** Matched, but their state changed before the action reached them. */
  skipped?: number;
  /** More than {@link BULK_MAX} matched: the action took the first ones; run it again for more. */
  truncated?: boolean;
}

/** One moment of an execution's life. */
export interface TimelineEntry {
  at: string;
  type:
    | 'queued'
    | 'delayed'
    | 'started'
    | 'woken'
    | 'retrying'
    | 'recovered'
    | 'completed'
    | 'failed'
    | 'aborted';
  node?: string;
  attempt?: number;
  message?: string;
}

/** Most executions one bulk action takes. */
export const BULK_MAX = 10_000;
/** Bulk actions run this many at a time. */
const BULK_CONCURRENCY = 16;
/** Most stream entries a timeline reads. */
const TIMELINE_SCAN = 20_000;

/** The states each action applies to. */
const APPLIES: Record<BulkAction, ExecutionState[]> = {
  abort: ['waiting', 'delayed', 'active'],
  retry: ['failed', 'aborted'],
  remove: ['completed', 'failed', 'aborted'],
};

/** The console's actions on executions. */
export class ExecutionAdmin {
  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly executions: AdminExecutions,
  ) {}

  /**
   * Starts a new execution with the procedure, params, name, attempts and priority of failed or
   * aborted execution `number`; throws EXECUTION_NOT_RETRYABLE for any other state.
   */
  async retry(number: number): Promise<ExecutionView> {
    const view = await this.executions.get(number);
    if (view.state !== 'failed' && view.state !== 'aborted') {
      throw new SprocdError(
        'EXECUTION_NOT_RETRYABLE',
        `Execution ${number} is ${view.state}; only a failed or aborted execution can be retried.`,
        { details: { number, state: view.state } },
      );
    }
    const job = await Job.fromId(this.executions.queueOf(number), jobIdOf(number));
    const { execution } = await this.executions.execute(
      view.procedure,
      view.params,
      {
        ...(view.name ? { name: view.name } : {}),
        ...(job?.opts.attempts ? { attempts: job.opts.attempts } : {}),
        ...(job?.opts.priority ? { priority: job.opts.priority } : {}),
      },
      { retryOf: number },
    );
    await markRetried(this.redis, this.keys, number, execution.number);
    return execution;
  }

  /** Removes finished execution `number`; throws EXECUTION_NOT_FINISHED while it is not. */
  async remove(number: number): Promise<void> {
    const view = await this.executions.get(number);
    if (!APPLIES.remove.includes(view.state)) {
      throw new SprocdError(
        'EXECUTION_NOT_FINISHED',
        `Execution ${number} is ${view.state}; only a finished execution can be removed (abort it first).`,
        { details: { number, state: view.state } },
      );
    }
    // BullMQ refuses (0) while a worker holds the job: it did not really finish then.
    if ((await this.executions.queueOf(number).remove(jobIdOf(number))) !== 1) {
      throw new SprocdError('EXECUTION_NOT_FINISHED', `Execution ${number} is held by a worker.`, {
        details: { number },
      });
    }
    // Its kept log lines go with it (they would expire anyway: src/procedures/execution-logs.ts);
    // BullMQ took it out of the wait list if it was aborted there, so it leaves the dropped set too.
    // Two calls: with queue shards the dropped set lives in another slot than the log lines.
    await Promise.all([
      this.redis.del(this.keys.executionLogs(number)),
      this.redis.srem(this.keys.queues.ofNumber(number).executionIndex.dropped, jobIdOf(number)),
    ]);
  }

  /** Applies `action` to the executions `filter` matches (counts them only with `dryRun`). */
  async bulk(action: BulkAction, filter: BulkFilter, dryRun = false): Promise<BulkResult> {
    const states = filter.state ? APPLIES[action].filter((s) => s === filter.state) : APPLIES[action];
    const numbers: number[] = [];
    let truncated = false;
    for (const state of states) {
      let cursor: string | undefined;
      do {
        const page = await listPage(
          this.redis,
          this.keys,
          async (_jobId, bullState, number) => ({ number, state: bullState }) as unknown as ExecutionView,
          { ...filter, state, cursor, limit: 1000 },
        );
        numbers.push(...page.items.map((v) => v.number));
        cursor = page.nextCursor;
      } while (cursor && numbers.length < BULK_MAX);
      if (numbers.length >= BULK_MAX) {
        truncated = numbers.length > BULK_MAX || cursor !== undefined || state !== states.at(-1);
        numbers.length = Math.min(numbers.length, BULK_MAX);
        break;
      }
    }
    const result: BulkResult = { action, matched: numbers.length, ...(truncated ? { truncated } : {}) };
    if (dryRun) {
      return result;
    }
    let done = 0;
    let next = 0;
    const one = async (n: number): Promise<boolean> => {
      try {
        if (action === 'abort') {
          await this.executions.abort(n);
        } else if (action === 'retry') {
          await this.retry(n);
        } else {
          await this.remove(n);
        }
        return true;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (
          err instanceof ExecutionNotFoundError ||
          code === 'EXECUTION_FINISHED' ||
          code === 'EXECUTION_NOT_RETRYABLE' ||
          code === 'EXECUTION_NOT_FINISHED'
        ) {
          return false;
        }
        throw err;
      }
    };
    await Promise.all(
      Array.from({ length: Math.min(BULK_CONCURRENCY, numbers.length) }, async () => {
        while (next < numbers.length) {
          if (await one(numbers[next++] as number)) {
            done++;
          }
        }
      }),
    );
    return { ...result, done, skipped: numbers.length - done };
  }

  /**
   * The life of execution `number`, oldest first, from BullMQ's event stream (as long as it holds the
   * execution's entries) completed by what its job keeps; and the execution that retried it, if any.
   */
  async timeline(number: number): Promise<{ items: TimelineEntry[]; retriedBy?: number }> {
    const jobId = jobIdOf(number);
    const job = await Job.fromId<unknown, JsonValue>(this.executions.queueOf(number), jobId);
    if (!job) {
      throw new ExecutionNotFoundError(number);
    }
    const [view, retriedByRaw] = await Promise.all([
      this.executions.get(number),
      this.redis.hget(executionJobKey(this.keys, number), RETRIED_BY_FIELD),
    ]);
    const retriedBy = Number(retriedByRaw);
    const end = job.finishedOn ? job.finishedOn + 1000 : '+';
    const rows = (await this.redis.xrange(
      bullQueueKeys(this.keys.queues.ofNumber(number)).events,
      String(Math.max(0, job.timestamp - 1000)),
      String(end),
      'COUNT',
      TIMELINE_SCAN,
    )) as [string, string[]][];
    const items = fromStream(rows, jobId);
    const final = finalEntry(job, view.state);
    if (!items.some((e) => e.type === 'queued')) {
      items.unshift({ at: new Date(job.timestamp).toISOString(), type: 'queued' });
    }
    const started = items.filter((e) => e.type === 'started');
    if (job.processedOn && !started.some((e) => Date.parse(e.at) >= (job.processedOn ?? 0) - 5)) {
      items.push({
        at: new Date(job.processedOn).toISOString(),
        type: 'started',
        attempt: job.attemptsStarted,
      });
    }
    if (final && !items.some((e) => e.type === final.type)) {
      items.push(final);
    }
    items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
    // The job keeps the node of its last attempt: the last start and the end ran there.
    if (job.processedBy) {
      const lastStart = items.filter((e) => e.type === 'started').at(-1);
      for (const e of items) {
        if (e === lastStart || e.type === 'completed' || e.type === 'failed' || e.type === 'aborted') {
          e.node = job.processedBy;
        }
      }
    }
    return Number.isInteger(retriedBy) && retriedBy > 0 ? { items, retriedBy } : { items };
  }
}

/** The timeline entries of job `jobId` among stream `rows`. */
function fromStream(rows: [string, string[]][], jobId: string): TimelineEntry[] {
  const out: TimelineEntry[] = [];
  let attempt = 0;
  let started = false;
  let dueAt: number | undefined;
  let recovered = false;
  for (const [id, raw] of rows) {
    const f: Record<string, string> = {};
    for (let i = 0; i + 1 < raw.length; i += 2) {
      f[raw[i] as string] = raw[i + 1] as string;
    }
    if (f.jobId !== jobId) {
      continue;
    }
    const ms = Number(id.slice(0, id.indexOf('-')));
    const at = new Date(ms).toISOString();
    switch (f.event) {
      case 'added':
        out.push({ at, type: 'queued' });
        break;
      case 'delayed': {
        dueAt = Number(f.delay) || undefined;
        const message = dueAt ? `until ${new Date(dueAt).toISOString()}` : undefined;
        out.push({ at, type: started ? 'retrying' : 'delayed', ...(message ? { message } : {}) });
        break;
      }
      case 'waiting':
        if (f.prev === 'delayed' && dueAt !== undefined && ms < dueAt - 50) {
          out.push({ at, type: 'woken' });
        } else if (f.prev === 'active' && !recovered) {
          out.push({ at, type: 'retrying' });
        }
        recovered = false;
        break;
      case 'stalled':
        out.push({ at, type: 'recovered', message: 'its node stopped answering; queued again' });
        recovered = true;
        break;
      case 'active':
        started = true;
        out.push({ at, type: 'started', attempt: ++attempt });
        break;
      case 'completed':
        out.push({ at, type: 'completed' });
        break;
      case 'failed': {
        const error = decodeFailure(f.failedReason);
        out.push({
          at,
          type: error?.code === 'ABORTED' ? 'aborted' : 'failed',
          ...(error ? { message: error.message } : {}),
        });
        break;
      }
      default:
        break;
    }
  }
  return out;
}

/** The end of an execution that finished in `state`, from its job. */
function finalEntry(job: Job<unknown, JsonValue>, state: ExecutionState): TimelineEntry | undefined {
  if (!job.finishedOn || (state !== 'completed' && state !== 'failed' && state !== 'aborted')) {
    return undefined;
  }
  const at = new Date(job.finishedOn).toISOString();
  const error = state === 'completed' ? undefined : decodeFailure(job.failedReason);
  return { at, type: state, ...(error ? { message: error.message } : {}) };
}
