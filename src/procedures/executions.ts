/**
 * The queue side of executions: Execute on server (number, unique name, delay, priority, attempts),
 * reading executions back, abort, wake, pause and resume (./pauses.ts), and waiting for an execution
 * to finish. It is long because it is the one place that maps an execution onto a BullMQ job.
 */
import { Job, Queue, type JobsOptions, type Telemetry } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import { AbortedError, ExecutionFinishedError, ExecutionNotFoundError, SprocdError } from '../errors.js';
import { JOB_EVENTS_MAX_LEN, jobJsonOfHash, moveDelayedStart } from '../redis/bullmq-internals.js';
import { acknowledged, settleWithin, type WriteAcks } from '../redis/connections.js';
import { QUEUE_NAME, jobIdOf, numberOfJobId, type Keys } from '../redis/keys.js';
import { abortWaiting, executionFind } from '../redis/scripts.js';
import type { ExecuteOptions, ExecutionState, ExecutionView, JsonValue } from '../types.js';
import { ExecutionCounts } from './counts.js';
import { ExecutionIndexWriter } from './execution-index.js';
import { NumberAllotment, type TakenNumber } from './execution-numbers.js';
import { isPaused, pause, resume, type PauseHost } from './pauses.js';
import { listPage, type ExecutionPage, type PageQuery } from './execution-pages.js';
import { FinishWatch } from './execution-waits.js';
import { listIndexedPage, usesIndex } from './indexed-pages.js';
import { WaitingCap } from './waiting-cap.js';
import { capStack, decodeFailure, encodeFailure, failureHasStack } from './failure.js';
import type { ExecutionLinks } from './execute.js';
import { prepareBatch, prepareExecution, retentionOf, type ExecutionData } from './execution-requests.js';
import type { ProcedureRegistry } from './registry.js';

export type { ExecutionData } from './execution-requests.js';
export { MAX_BATCH_EXECUTIONS } from './execution-requests.js';

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
  /** The BullMQ queue of each queue shard, index = shard (redis/shards.ts); one with S = 1. */
  readonly queues: readonly Queue<ExecutionData, JsonValue>[];
  private readonly counter: ExecutionCounts;
  private readonly numbers: NumberAllotment;
  private readonly index: ExecutionIndexWriter;
  private readonly watch: FinishWatch;
  private readonly waitingCap: WaitingCap | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly registry: ProcedureRegistry,
    private readonly settings: ExecutionSettings,
    private readonly openEventsConnection: () => RedisConnection,
    /** BullMQ's tracing (src/tracing): each job carries the trace of the request that queued it. */
    telemetry?: Telemetry,
    private readonly acks?: WriteAcks, // SPROCD_REPLICA_ACKS: returns once replicas have it
  ) {
    this.queues = keys.queues.all.map((shard) => {
      const queue = new Queue<ExecutionData, JsonValue>(QUEUE_NAME, {
        connection: redis,
        prefix: shard.bullPrefix,
        streams: { events: { maxLen: JOB_EVENTS_MAX_LEN } },
        ...(telemetry ? { telemetry } : {}),
      });
      queue.on('error', () => undefined);
      return queue;
    });
    this.counter = new ExecutionCounts(redis, keys, this.queues);
    this.numbers = new NumberAllotment(redis, keys, undefined, undefined, undefined, keys.queues.count);
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
    const { data, opts, state } = prepareExecution(this.registry, procedure, params, requested, links);
    await this.waitingCap?.admit();
    return acknowledged(this.acks, this.add(data, opts, state));
  }

  /**
   * Execute on server for a batch (up to MAX_BATCH_EXECUTIONS, 1,000): every item is checked first
   * and one bad item refuses the batch (ValidationError naming it), nothing queued. Then the numbers
   * come in one refill at most, the jobs go to Redis in one pipeline (BullMQ's addBulk) and are
   * indexed in one call of the index script. Answers in the order asked; a `unique` name taken (by a
   * live execution, or by an earlier item of the same batch) answers that execution with `existing`,
   * as a single request does.
   */
  async executeBatch(requests: readonly unknown[], links?: ExecutionLinks): Promise<ExecuteResult[]> {
    const prepared = prepareBatch(this.registry, requests, links);
    await this.waitingCap?.admit(prepared.length);
    const taken = await this.takeNumbers(prepared);
    const jobs = await this.addByShard(
      prepared.map(({ data, opts }, i) => ({
        name: data.procedure,
        data,
        opts: { ...opts, jobId: jobIdOf((taken[i] as TakenNumber).number) },
      })),
      taken.map((t) => t.number),
    );
    const added = Promise.all(
      prepared.map(async ({ data, opts, state }, i) => {
        const job = jobs[i] as Job<ExecutionData, JsonValue>;
        const { number, restores } = taken[i] as TakenNumber;
        if (job.id !== jobIdOf(number)) {
          return this.existing(job.id);
        }
        const { procedure, name, id } = data;
        if (await this.index.record({ number, id, procedure, name, createdAt: job.timestamp, restores })) {
          return { execution: viewOf(job, state, number), existing: false };
        }
        // Its number was held by another execution (a restore): it goes the single way, fresh number.
        this.numbers.forget();
        return this.add(data, opts, state);
      }),
    );
    return acknowledged(this.acks, added);
  }

  /** The BullMQ queue that holds execution `number` (its queue shard's). */
  queueOf(number: number): Queue<ExecutionData, JsonValue> {
    return this.queues[this.keys.queues.ofNumber(number).shard]!;
  }

  /**
   * The numbers of a batch: a `unique` one's lives in its name's queue shard (BullMQ deduplicates
   * within one queue), the others are the next ones of the block.
   */
  private async takeNumbers(
    prepared: readonly { opts: JobsOptions; data: ExecutionData }[],
  ): Promise<TakenNumber[]> {
    if (this.keys.queues.count === 1 || prepared.every(({ opts }) => !opts.deduplication)) {
      return this.numbers.takeMany(prepared.length);
    }
    const taken: TakenNumber[] = [];
    for (const { opts, data } of prepared) {
      taken.push(await this.takeNumber(opts, data));
    }
    return taken;
  }

  /** The number of one execution: in its unique name's queue shard when it has one (see takeNumbers). */
  private takeNumber(opts: JobsOptions, data: ExecutionData): Promise<TakenNumber> | TakenNumber {
    return opts.deduplication && this.keys.queues.count > 1
      ? this.numbers.takeFor(this.keys.queues.ofName(data.name).shard)
      : this.numbers.take();
  }

  /** BullMQ's addBulk of `jobs` (numbered `numbers`), one pipeline per queue shard; jobs in the order given. */
  private addByShard(
    jobs: { name: string; data: ExecutionData; opts: JobsOptions }[],
    numbers: readonly number[],
  ): Promise<Job<ExecutionData, JsonValue>[]> {
    return this.keys.queues.mapByShard(
      jobs,
      (_, i) => numbers[i]!,
      (group, shard) => this.queues[shard.shard]!.addBulk(group),
    );
  }

  /** The live execution whose job `jobId` deduplication answered instead of adding. */
  private async existing(jobId: string | undefined): Promise<ExecuteResult> {
    const number = numberOfJobId(jobId) ?? -1;
    const existing = await this.find(number);
    if (existing) {
      return { execution: existing, existing: true };
    }
    // The live one finished between the add and this read: its view is gone or final; report it anyway.
    return { execution: await this.get(number), existing: true };
  }

  /**
   * Queues `data` under a fresh number (./execution-numbers.ts) and indexes it (./execution-index.ts).
   * A number whose job turns out to hold another execution (BullMQ keeps the job it has) is dropped
   * with the rest of this node's block, and a fresh one is taken.
   */
  private async add(data: ExecutionData, opts: JobsOptions, state: string): Promise<ExecuteResult> {
    for (let tries = 1; ; tries++) {
      const { number, restores } = await this.takeNumber(opts, data);
      const jobId = jobIdOf(number);
      const job = await this.queueOf(number).add(data.procedure, data, { ...opts, jobId });
      if (job.id !== jobId) {
        return this.existing(job.id);
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

  /**
   * BullMQ's retention of finished executions (SPROCD_KEEP_FINISHED, SPROCD_KEEP_FINISHED_S), which
   * the worker applies: jobs do not carry it (./execution-requests.ts).
   */
  get retention(): { count: number; age: number } {
    return retentionOf(this.settings);
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
    // The state and the job in one step (executionFind-6.lua), without walking the wait list as
    // BullMQ's getJobState does: a final state always comes with its result.
    const found = await executionFind(this.redis, this.keys, number);
    if (!found) {
      return undefined;
    }
    const { state } = found;
    const job = Job.fromJSON<ExecutionData, JsonValue>(
      this.queueOf(number),
      jobJsonOfHash(found.hash),
      jobIdOf(number),
    );
    return viewOf(job, state, number);
  }

  /**
   * A page of executions, filtered: by procedure or process name from the indexes
   * (./indexed-pages.ts), else from BullMQ's lists (./execution-pages.ts).
   */
  list(query: ListFilter = {}): Promise<ExecutionPage> {
    const view = async (jobId: string, state: string, number: number) => {
      const job = await Job.fromId<ExecutionData, JsonValue>(this.queueOf(number), jobId);
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
      await moveDelayedStart(this.queueOf(number), jobIdOf(number), ms);
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
      queueOf: (n) => this.queueOf(n),
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
    await settleWithin(Promise.all(this.queues.map((queue) => queue.close())), CLOSE_WAIT_MS);
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
