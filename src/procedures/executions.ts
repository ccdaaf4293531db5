/**
 * The queue side of executions: Execute on server (number, unique name, delay, priority, attempts),
 * reading executions back, abort, wake, pause and resume (./pauses.ts), and waiting for an execution
 * to finish. It is long because it is the one place that maps an execution onto a BullMQ job.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue, type JobsOptions, type Telemetry } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  AbortedError,
  ExecutionFinishedError,
  ExecutionNotFoundError,
  SprocdError,
  UnknownProcedureError,
  ValidationError,
} from '../errors.js';
import { JOB_EVENTS_MAX_LEN } from '../redis/bullmq-internals.js';
import { acknowledged, settleWithin, type WriteAcks } from '../redis/connections.js';
import { QUEUE_NAME, jobIdOf, numberOfJobId, type Keys } from '../redis/keys.js';
import { abortWaiting } from '../redis/scripts.js';
import type { ExecuteOptions, ExecutionState, ExecutionView, JsonValue } from '../types.js';
import { ExecutionCounts } from './counts.js';
import { ExecutionIndexWriter } from './execution-index.js';
import { NumberAllotment } from './execution-numbers.js';
import { isPaused, pause, resume, type PauseHost } from './pauses.js';
import { listPage, type ExecutionPage, type PageQuery } from './execution-pages.js';
import { FinishWatch } from './execution-waits.js';
import { listIndexedPage, usesIndex } from './indexed-pages.js';
import { WaitingCap } from './waiting-cap.js';
import { toBullBackoff } from './define.js';
import { capStack, decodeFailure, encodeFailure, failureHasStack } from './failure.js';
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

/** A control message sent to every node over pub/sub. */
export interface ControlMessage {
  op: 'abort' | 'wake' | 'delay' | 'pause' | 'resume' | 'restored';
  number: number;
  /** For `delay`: the sleep ends this many ms after the message arrives. */
  ms?: number;
}

/** Settings the executions need. */
export interface ExecutionSettings {
  keepFinished: number;
  keepFinishedSeconds: number;
  /** SPROCD_MAX_WAITING (./waiting-cap.ts); 0 or absent: no cap. */
  maxWaiting?: number;
}

/** Longest wait for BullMQ's queue to close (it waits on Redis). */
const CLOSE_WAIT_MS = 2000;

/** Numbers an execution tries before giving up when each turns out to be taken (./execution-numbers.ts). */
const NUMBER_TRIES = 5;
/** Most executions one list call returns. */
export const MAX_LIST_LIMIT = 1000;

/** The result of Execute on server. */
export interface ExecuteResult {
  execution: ExecutionView;
  /** True when `unique` found a live execution of that name and started nothing. */
  existing: boolean;
}

/** Filters of GET /v1/executions. */
export type ListFilter = PageQuery;

/** Executions on the queue: the one place that knows how an execution maps onto a BullMQ job. */
export class Executions {
  readonly queue: Queue<ExecutionData, JsonValue>;
  private readonly counter: ExecutionCounts;
  private readonly numbers: NumberAllotment;
  private readonly index: ExecutionIndexWriter;
  private readonly watch: FinishWatch;
  private readonly waitingCap: WaitingCap | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: ProcedureRegistry,
    private readonly settings: ExecutionSettings,
    private readonly openEventsConnection: () => Redis,
    /** BullMQ's tracing (src/tracing): each job carries the trace of the request that queued it. */
    telemetry?: Telemetry,
    private readonly acks?: WriteAcks, // SPROCD_REPLICA_ACKS: returns once replicas have it
  ) {
    this.queue = new Queue(QUEUE_NAME, {
      connection: redis,
      prefix: keys.bullPrefix,
      streams: { events: { maxLen: JOB_EVENTS_MAX_LEN } },
      ...(telemetry ? { telemetry } : {}),
    });
    this.queue.on('error', () => undefined);
    this.counter = new ExecutionCounts(redis, keys, this.queue);
    this.numbers = new NumberAllotment(redis, keys);
    this.index = new ExecutionIndexWriter(redis, keys);
    this.watch = new FinishWatch(redis, keys, openEventsConnection);
    this.waitingCap = settings.maxWaiting ? new WaitingCap(redis, keys, settings.maxWaiting) : undefined;
  }

  /**
   * Execute on server: checks the request, allots the execution number and queues it. Nothing is
   * queued when anything is wrong with the request.
   */
  async execute(
    procedure: unknown,
    params: unknown,
    requested?: ExecuteOptions,
    links?: ExecutionLinks,
  ): Promise<ExecuteResult> {
    assertProcedureName(procedure);
    const definition = this.registry.get(procedure);
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
    await this.waitingCap?.admit();
    const opts: JobsOptions = {
      attempts,
      removeOnComplete: { count: this.settings.keepFinished, age: this.settings.keepFinishedSeconds },
      removeOnFail: { count: this.settings.keepFinished, age: this.settings.keepFinishedSeconds },
      // The view shows the last attempt's stack only (./failure.ts).
      stackTraceLimit: 1,
    };
    if (attempts > 1) {
      opts.backoff = toBullBackoff(definition.backoff);
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
    return acknowledged(this.acks, this.add(data, opts, options.delayMs ? 'delayed' : 'waiting'));
  }

  /**
   * Queues `data` under a fresh number (./execution-numbers.ts) and indexes it (./execution-index.ts).
   * A number whose job turns out to hold another execution (BullMQ keeps the job it has) is dropped
   * with the rest of this node's block, and a fresh one is taken.
   */
  private async add(data: ExecutionData, opts: JobsOptions, state: string): Promise<ExecuteResult> {
    for (let tries = 1; ; tries++) {
      const { number, restores } = await this.numbers.take();
      const jobId = jobIdOf(number);
      const job = await this.queue.add(data.procedure, data, { ...opts, jobId });
      if (job.id !== jobId) {
        const existing = await this.find(numberOfJobId(job.id) ?? -1);
        if (existing) {
          return { execution: existing, existing: true };
        }
        // The live one finished between the add and this read: its view is gone or final; report it anyway.
        return { execution: await this.get(numberOfJobId(job.id) ?? -1), existing: true };
      }
      const { procedure, name, id } = data;
      if (await this.index.record({ number, id, procedure, name, createdAt: job.timestamp, restores })) {
        return { execution: viewOf(job, state, number), existing: false };
      }
      this.numbers.forget();
      if (tries === NUMBER_TRIES) {
        throw new SprocdError(
          'EXECUTION_NUMBER_TAKEN',
          `Execution numbers up to ${number} are held by other executions (a restore put them back?); nothing was queued. Retry.`,
          { details: { number, retryAfterSeconds: 1 } },
        );
      }
    }
  }

  /** Drops this node's reserved numbers; the next execution takes a fresh block. */
  forgetNumbers(): void {
    this.numbers.forget();
  }

  /**
   * After a restore raised the counter past restored numbers: every node drops its reserved block,
   * so none hands out a number that a restored execution now has.
   */
  async forgetNumbersEverywhere(): Promise<void> {
    this.forgetNumbers();
    await this.publish({ op: 'restored', number: 0 });
  }

  /** The execution with that number; throws ExecutionNotFoundError. */
  async get(number: number): Promise<ExecutionView> {
    const view = await this.find(number);
    if (!view) {
      throw new ExecutionNotFoundError(number);
    }
    return view;
  }

  /** The execution with that number, or undefined. */
  async find(number: number): Promise<ExecutionView | undefined> {
    if (!Number.isSafeInteger(number) || number <= 0) {
      return undefined;
    }
    // State first, then the job: a job that finishes in between shows its new data with the old
    // state (and the state is read again), never a final state without its result.
    const jobId = jobIdOf(number);
    let state: string = await this.queue.getJobState(jobId);
    const job = await Job.fromId<ExecutionData, JsonValue>(this.queue, jobId);
    if (!job) {
      return undefined;
    }
    if (job.finishedOn && state !== 'completed' && state !== 'failed') {
      state = await this.queue.getJobState(jobId);
    }
    return viewOf(job, state, number);
  }

  /**
   * A page of executions, filtered: by procedure or process name from the indexes
   * (./indexed-pages.ts), else from BullMQ's lists (./execution-pages.ts).
   */
  list(query: ListFilter = {}): Promise<ExecutionPage> {
    const view = async (jobId: string, state: string, number: number) => {
      const job = await Job.fromId<ExecutionData, JsonValue>(this.queue, jobId);
      return job && viewOf(job, state, number);
    };
    return (usesIndex(query) ? listIndexedPage : listPage)(this.redis, this.keys, view, query);
  }

  /** How many executions the queue holds in each state (see ./counts.ts). */
  counts(): Promise<Record<ExecutionState, number>> {
    return this.counter.counts();
  }

  /**
   * Aborts an execution wherever it is: one that has not started is filed as aborted at once; an
   * active one is flagged and its node is told to fire `ctx.signal`.
   */
  async abort(number: number): Promise<ExecutionView> {
    const outcome = await abortWaiting(
      this.redis,
      this.keys,
      number,
      encodeFailure(new AbortedError('The execution was aborted before it started.')),
      Date.now(),
    );
    if (outcome === 'missing') {
      throw new ExecutionNotFoundError(number);
    }
    if (outcome === 'finished') {
      const view = await this.get(number);
      throw new ExecutionFinishedError(number, view.state);
    }
    if (outcome === 'active') {
      await this.publish({ op: 'abort', number });
    }
    return this.get(number);
  }

  /** DELAY PROCESS with 0: ends the execution's current ctx.delay, or its delayed start, now. */
  wake(number: number): Promise<ExecutionView> {
    return this.delay(number, 0);
  }

  /**
   * DELAY PROCESS: the execution's current ctx.delay ends `ms` from now (0: now); a delayed start
   * (or a retry's back-off) is moved to `ms` from now (0: it joins the queue). Nothing for one that
   * is neither.
   */
  async delay(number: number, ms: number): Promise<ExecutionView> {
    const view = await this.get(number);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'aborted') {
      throw new ExecutionFinishedError(number, view.state);
    }
    if (view.state === 'delayed') {
      if (await isPaused(this.redis, this.keys, number)) {
        return view; // parked by a pause, which holds it until resumed
      }
      await moveDelayedStart(this.queue, jobIdOf(number), ms);
      return (await this.find(number)) ?? view;
    }
    await this.publish(ms === 0 ? { op: 'wake', number } : { op: 'delay', number, ms });
    return view;
  }

  /** PAUSE PROCESS (./pauses.ts). */
  pause(number: number): Promise<ExecutionView> {
    return pause(this.pauseHost(), number);
  }

  /** RESUME PROCESS (./pauses.ts). */
  resume(number: number): Promise<ExecutionView> {
    return resume(this.pauseHost(), number);
  }

  private pauseHost(): PauseHost {
    return {
      redis: this.redis,
      keys: this.keys,
      queue: this.queue,
      get: (n) => this.get(n),
      find: (n) => this.find(n),
      publish: (op, number) => this.publish({ op, number }),
      wake: (n) => this.wake(n),
    };
  }

  /**
   * Waits up to `ms` for the execution to finish, asking Redis only for its state
   * (./execution-waits.ts), then reads it once: its view, final or not (check `state`). Undefined
   * when `signal` aborted first (nobody is left to answer: nothing more is read), or when retention
   * dropped it the moment it finished (SPROCD_KEEP_FINISHED=0).
   */
  async waitFor(number: number, ms: number, signal?: AbortSignal): Promise<ExecutionView | undefined> {
    await this.watch.until(number, ms, signal);
    return signal?.aborted ? undefined : this.find(number);
  }

  /** Requests of this node waiting for an execution to end now. */
  get waits(): number {
    return this.watch.size;
  }

  /** Closes what this object opened (not the shared connection); waits answer with what is known. */
  async close(): Promise<void> {
    await this.watch.close();
    await settleWithin(this.queue.close(), CLOSE_WAIT_MS);
  }

  private async publish(message: ControlMessage): Promise<void> {
    await this.redis.publish(this.keys.controlChannel, JSON.stringify(message));
  }
}

/** Whether an execution in `state` has finished for good. */
export function isFinal(state: ExecutionState): boolean {
  return state === 'completed' || state === 'failed' || state === 'aborted';
}

/** The API's view of a BullMQ job in BullMQ state `state`. */
export function viewOf(job: Job<ExecutionData, JsonValue>, state: string, number: number): ExecutionView {
  const error = decodeFailure(job.failedReason);
  let mapped: ExecutionState;
  switch (state) {
    case 'completed':
    case 'active':
    case 'delayed':
      mapped = state;
      break;
    case 'failed':
      mapped = error?.code === 'ABORTED' ? 'aborted' : 'failed';
      break;
    default:
      mapped = 'waiting';
  }
  const data = job.data;
  const view: ExecutionView = {
    number,
    id: data.id,
    procedure: data.procedure,
    name: data.name,
    state: mapped,
    params: data.params,
    attempt: job.attemptsStarted ?? 0,
    createdAt: new Date(job.timestamp).toISOString(),
  };
  if (mapped === 'completed') {
    view.result = (job.returnvalue ?? null) as JsonValue;
  }
  if (
    error &&
    (mapped === 'failed' || mapped === 'aborted' || mapped === 'delayed' || mapped === 'waiting')
  ) {
    view.error = error;
    const stack = failureHasStack(job.failedReason) ? job.stacktrace?.at(-1) : undefined;
    if (stack) {
      view.error.stack = capStack(stack);
    }
  }
  const progress = job.progress as unknown;
  if (progress !== undefined && progress !== 0 && progress !== null) {
    view.progress = progress as JsonValue;
  }
  if (job.processedOn) {
    view.startedAt = new Date(job.processedOn).toISOString();
  }
  if (job.finishedOn && isFinal(mapped)) {
    view.finishedAt = new Date(job.finishedOn).toISOString();
  }
  if (job.opts.attempts) {
    view.attempts = job.opts.attempts;
  }
  if (job.processedBy) {
    view.node = job.processedBy;
  }
  if (data.parent !== undefined) {
    view.parent = data.parent;
  }
  if (data.retryOf !== undefined) {
    view.retryOf = data.retryOf;
  }
  return view;
}

/** Moves a delayed job's start to `ms` from now (0: it joins the queue now); nothing once it left the delayed set. */
async function moveDelayedStart(queue: Queue, jobId: string, ms: number): Promise<void> {
  const job = await Job.fromId(queue, jobId);
  try {
    await (ms === 0 ? job?.promote() : job?.changeDelay(ms));
  } catch (err) {
    // It left the delayed set meanwhile (started, or aborted): nothing is left to move.
    if (!(err instanceof Error) || !/not in the delayed state|Missing key for job/.test(err.message)) {
      throw err;
    }
  }
}
