/**
 * The queue side of executions: Execute on server (number, unique name, delay, priority, attempts),
 * reading executions back, abort, wake, and waiting for an execution to finish.
 */
import { randomUUID } from 'node:crypto';
import { Job, Queue, QueueEvents, type JobsOptions, type Telemetry } from 'bullmq';
import type { Redis } from 'ioredis';
import {
  AbortedError,
  ExecutionFinishedError,
  ExecutionNotFoundError,
  UnknownProcedureError,
} from '../errors.js';
import { JOB_EVENTS_MAX_LEN } from '../events/retention.js';
import { settleWithin } from '../redis/connections.js';
import { QUEUE_NAME, jobIdOf, numberOfJobId, type Keys } from '../redis/keys.js';
import { abortWaiting } from '../redis/scripts.js';
import type { ExecuteOptions, ExecutionState, ExecutionView, JsonValue } from '../types.js';
import { ExecutionCounts } from './counts.js';
import { listPage, type ExecutionPage, type PageQuery } from './execution-pages.js';
import type { Backoff } from './define.js';
import { decodeFailure, encodeFailure } from './failure.js';
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
  op: 'abort' | 'wake' | 'restored';
  number: number;
}

/** Settings the executions need. */
export interface ExecutionSettings {
  keepFinished: number;
  keepFinishedSeconds: number;
}

/** Longest wait for BullMQ's queue and event reader to close (they wait on Redis). */
const CLOSE_WAIT_MS = 2000;

/** Execution numbers a node takes from the cluster's counter at once. */
export const NUMBER_BLOCK = 20;
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
  private events: QueueEvents | undefined;
  private readonly finishWaiters = new Map<string, Set<() => void>>();
  private closed = false;
  private nextNumber = 0;
  private blockEnd = 0;
  private refill: Promise<void> | undefined;
  private readonly counter: ExecutionCounts;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly registry: ProcedureRegistry,
    private readonly settings: ExecutionSettings,
    private readonly openEventsConnection: () => Redis,
    /** BullMQ's tracing (src/tracing): each job carries the trace of the request that queued it. */
    telemetry?: Telemetry,
  ) {
    this.queue = new Queue(QUEUE_NAME, {
      connection: redis,
      prefix: keys.bullPrefix,
      streams: { events: { maxLen: JOB_EVENTS_MAX_LEN } },
      ...(telemetry ? { telemetry } : {}),
    });
    this.queue.on('error', () => undefined);
    this.counter = new ExecutionCounts(redis, keys, this.queue);
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
    const number = await this.allotNumber();
    const jobId = jobIdOf(number);
    const attempts = options.attempts ?? definition.attempts ?? 1;
    const opts: JobsOptions = {
      jobId,
      attempts,
      removeOnComplete: { count: this.settings.keepFinished, age: this.settings.keepFinishedSeconds },
      removeOnFail: { count: this.settings.keepFinished, age: this.settings.keepFinishedSeconds },
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
    const job = await this.queue.add(procedure, data, opts);
    if (job.id !== jobId) {
      const existing = await this.find(numberOfJobId(job.id) ?? -1);
      if (existing) {
        return { execution: existing, existing: true };
      }
      // The live one finished between the add and this read: its view is gone or final; report it anyway.
      return { execution: await this.get(numberOfJobId(job.id) ?? -1), existing: true };
    }
    return {
      execution: viewOf(job, options.delayMs ? 'delayed' : 'waiting', number),
      existing: false,
    };
  }

  /**
   * Allots an execution number. Numbers come from one Redis counter in blocks of NUMBER_BLOCK per node,
   * so most executions need no extra round trip; unique across the cluster and never reused (a block
   * cut short by a stop leaves a gap).
   */
  private allotNumber(): Promise<number> | number {
    if (this.nextNumber < this.blockEnd) {
      return this.nextNumber++;
    }
    this.refill ??= this.redis
      .incrby(this.keys.sequence, NUMBER_BLOCK)
      .then((last) => {
        this.nextNumber = last - NUMBER_BLOCK + 1;
        this.blockEnd = last + 1;
      })
      .finally(() => {
        this.refill = undefined;
      });
    return this.refill.then(() => this.allotNumber());
  }

  /** Drops this node's reserved numbers; the next execution takes a fresh block. */
  forgetNumbers(): void {
    this.blockEnd = 0;
    this.nextNumber = 0;
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

  /** A page of executions, filtered (see ./execution-pages.ts). */
  list(query: ListFilter = {}): Promise<ExecutionPage> {
    return listPage(
      this.redis,
      this.keys,
      async (jobId, state, number) => {
        const job = await Job.fromId<ExecutionData, JsonValue>(this.queue, jobId);
        return job && viewOf(job, state, number);
      },
      query,
    );
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

  /** DELAY PROCESS with 0: ends the execution's current ctx.delay early. */
  async wake(number: number): Promise<ExecutionView> {
    const view = await this.get(number);
    if (view.state === 'completed' || view.state === 'failed' || view.state === 'aborted') {
      throw new ExecutionFinishedError(number, view.state);
    }
    await this.publish({ op: 'wake', number });
    return view;
  }

  /**
   * Waits up to `ms` for the execution to finish; returns its view either way (check `state`).
   * Events come from one QueueEvents per node, opened on first use; the state is also re-read
   * every second, so an event missed while that reader connects costs at most a second.
   */
  async waitFor(number: number, ms: number): Promise<ExecutionView> {
    const deadline = Date.now() + ms;
    const jobId = jobIdOf(number);
    await this.queueEvents();
    let view = await this.get(number);
    while (!isFinal(view.state) && Date.now() < deadline && !this.closed) {
      const remaining = deadline - Date.now();
      await new Promise<void>((resolve) => {
        const finish = () => {
          clearTimeout(timer);
          this.removeFinishWaiter(jobId, finish);
          resolve();
        };
        const timer = setTimeout(finish, Math.min(remaining, 1000));
        this.addFinishWaiter(jobId, finish);
      });
      if (this.closed) {
        break; // the node is stopping: answer with what is known now rather than hold the stop
      }
      const next = await this.find(number);
      if (!next) {
        break; // retention dropped it the moment it finished (SPROCD_KEEP_FINISHED=0)
      }
      view = next;
    }
    return view;
  }

  /** Closes what this object opened (not the shared connection). */
  async close(): Promise<void> {
    this.closed = true;
    for (const waiters of this.finishWaiters.values()) {
      waiters.forEach((wake) => wake());
    }
    await settleWithin(this.events?.close(), CLOSE_WAIT_MS);
    await settleWithin(this.queue.close(), CLOSE_WAIT_MS);
  }

  /** Opens the node's one QueueEvents reader on first use; it wakes the waiters of finished jobs. */
  private async queueEvents(): Promise<QueueEvents> {
    if (!this.events) {
      this.events = new QueueEvents(QUEUE_NAME, {
        connection: this.openEventsConnection(),
        prefix: this.keys.bullPrefix,
      });
      this.events.on('error', () => undefined);
      const wake = ({ jobId }: { jobId: string }) => this.finishWaiters.get(jobId)?.forEach((w) => w());
      this.events.on('completed', wake);
      this.events.on('failed', wake);
    }
    return this.events;
  }

  private addFinishWaiter(jobId: string, waiter: () => void): void {
    let set = this.finishWaiters.get(jobId);
    if (!set) {
      set = new Set();
      this.finishWaiters.set(jobId, set);
    }
    set.add(waiter);
  }

  private removeFinishWaiter(jobId: string, waiter: () => void): void {
    const set = this.finishWaiters.get(jobId);
    set?.delete(waiter);
    if (set?.size === 0) {
      this.finishWaiters.delete(jobId);
    }
  }

  private async publish(message: ControlMessage): Promise<void> {
    await this.redis.publish(this.keys.controlChannel, JSON.stringify(message));
  }
}

/** Whether an execution in `state` has finished for good. */
export function isFinal(state: ExecutionState): boolean {
  return state === 'completed' || state === 'failed' || state === 'aborted';
}

function toBullBackoff(backoff: Backoff | undefined): JobsOptions['backoff'] {
  if (backoff === undefined) {
    return { type: 'exponential', delay: 1000 };
  }
  if (typeof backoff === 'number') {
    return { type: 'fixed', delay: backoff };
  }
  return { type: backoff.type, delay: backoff.delayMs };
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
