/**
 * A BullMQ Worker that files completed jobs and takes waiting ones in batches: one Redis call
 * (finishAndTake-9.lua) for every job that completed since the last call and for as many waiting jobs as
 * the worker has free slots, instead of one call per job. BullMQ's Worker keeps everything else: its
 * main loop, lock renewal, the stalled check, failures and retries, events, telemetry.
 * This file is long because its seams all read and change the same state (completions and takers
 * waiting for a call, jobs taken ahead, calls in flight). Two seams for the calls:
 *
 *  - `moveToActive`, which BullMQ's loop calls for each job it wants, answers from the jobs the last
 *    call took (each locked with that call's token, which the job carries: BullMQ processes a job under
 *    `job.token`), and makes a call when it has none;
 *  - the backend's `moveToCompleted`, which a job calls once its processor returned, joins the next call;
 *    when BullMQ asks it to fetch the next job (as its moveToFinished does), the call takes one for it,
 *    locked with the finished job's token, and hands it back as BullMQ's script would.
 *
 * And two for the node's time per job (what BullMQ does around them without telemetry, less its
 * wrappers): a job's own moveToCompleted ({@link BatchedJob}) and the start of a taken job
 * (`nextJobFromJobData`).
 *
 * Whatever the batch script leaves to BullMQ (a job with a parent or a deduplication id, a take that
 * meets a rate limit, priorities, a due delayed job, or an empty wait list beside prioritized or delayed
 * jobs) goes through BullMQ's own script,
 * so the data in Redis is BullMQ's either way.
 *
 * Jobs taken ahead of their slot are tracked by the Worker's lock manager from the moment they are taken,
 * so their locks are renewed like those of running jobs; a pause or close gives them back to the wait
 * list before BullMQ's own pause or close runs.
 */
import { Worker, type Job, type JobJson, type Processor, type WorkerOptions } from 'bullmq';
import { BatchedJob } from './batched-job.js';
import { jobJsonOfHash, type BullQueueKeys } from './bullmq-internals.js';
import type { RedisConnection } from './redis-connection.js';
import { finishAndTake, type CompletedJob } from './scripts.js';

/** The backend methods this file wraps or calls (BullMQ's RedisQueueBackend). */
interface QueueBackend {
  moveToCompleted(
    job: Job,
    returnValue: unknown,
    removeOnComplete: unknown,
    token: string,
    fetchNext?: boolean,
  ): Promise<{ result: unknown; finishedOn: number }>;
  getKeepJobs(
    shouldRemove: unknown,
    workerKeepJobs: unknown,
  ): { count: number; age?: number; limit?: number };
  finishedErrors(args: { code: number; jobId: string; command: string; state: string }): Error;
}

/** The Worker's protected and private members this file reads (BullMQ 6.7's Worker). */
interface WorkerInternals {
  backend: QueueBackend;
  lockManager: {
    trackJob(jobId: string, token: string, ts: number, shouldCreateController?: boolean): unknown;
    untrackJob(jobId: string): void;
    getActiveJobCount(): number;
  };
  updateDelays(rateLimitDelay?: number, delayUntil?: number): void;
  /** Whether the Worker last found the queue empty (it emitted `drained`). */
  drained: boolean;
}

/** How a completed job was filed: when, and the next job it fetched; undefined: BullMQ's script is to file it. */
type Filing = { at: number; next?: TakenJob } | undefined;

/** A completed job waiting for the next call, and who waits for its filing. */
interface PendingFinish extends CompletedJob {
  readonly job: Job;
  readonly removeOnComplete: unknown;
  /** Whether it fetches the next job for its slot (BullMQ's fetchNext). */
  readonly fetchNext: boolean;
  resolve(filing: Filing): void;
  reject(err: unknown): void;
}

/** A job taken by a call: its hash, its id, its lock token. */
interface TakenJob {
  readonly hash: Record<string, string>;
  readonly id: string;
  readonly token: string;
}

/** What a waiting `moveToActive` gets: a job, or what to do instead (nothing to take: 'none'). */
type TakeAnswer = TakenJob | 'none' | 'bullmq';

/** A `moveToActive` waiting for the next call. */
interface Taker {
  resolve(answer: TakeAnswer): void;
  reject(err: unknown): void;
}

export interface BatchedWorkerOptions {
  /** At most this many jobs are filed or taken in one call. */
  readonly batch: number;
  /** Calls in flight at once (default 2). */
  readonly depth?: number;
  /** Whether a call may take more jobs than asked for, up to the worker's free slots (else one each). */
  readonly prefetch: boolean;
  /** The queue's keys (those of the Worker's prefix and name). */
  readonly bull: BullQueueKeys;
  /**
   * Whether the queue's jobs may have side keys for retention to delete with them, as BullMQ does: logs
   * (`job.log`) and the sets of a flow's parent. Default true; false where none is ever written (sprocd's
   * executions), which spares Redis five key lookups per job retention removes.
   */
  readonly jobSideKeys?: boolean;
  /** Told of each job given back to the wait list unstarted (a pause or close with jobs taken ahead). */
  readonly onGivenBack?: (jobId: string) => Promise<void>;
}

export class BatchedWorker<D = unknown, R = unknown> extends Worker<D, R> {
  private readonly batching: BatchedWorkerOptions;
  private readonly finishes: PendingFinish[] = [];
  private readonly takers: Taker[] = [];
  /** Jobs taken ahead of their slot, oldest first. */
  private readonly ahead: TakenJob[] = [];
  /** Batch calls made, jobs they filed and took (the rest went through BullMQ's scripts). */
  readonly batchStats = { calls: 0, filed: 0, taken: 0 };
  /** The calls in flight (at most `depth`). */
  private readonly calling = new Set<Promise<void>>();
  private scheduled = false;
  private calls = 0;
  /** No more takes ahead (a pause or close began). */
  private holdTakes = false;

  constructor(name: string, processor: Processor<D, R>, opts: WorkerOptions, batching: BatchedWorkerOptions) {
    if (opts.limiter) {
      // The batch script checks the queue's rate limit, not a worker's own.
      throw new Error("BatchedWorker takes no limiter: use BullMQ's Worker for a rate-limited worker");
    }
    super(name, processor, opts);
    this.batching = batching;
    const backend = this.internals.backend;
    this.viaBullMQ = backend.moveToCompleted.bind(backend);
    backend.moveToCompleted = (job, returnValue, removeOnComplete, token, fetchNext) =>
      this.complete(job, returnValue, removeOnComplete, token, fetchNext);
  }

  /** The jobs this Worker makes (BullMQ's createJob): see {@link BatchedJob}. */
  override get Job(): typeof Job {
    // Its generic signature differs from Job's in the progress type parameter only.
    return BatchedJob as unknown as typeof Job;
  }

  /** BullMQ's own filing of a completed job (its backend's moveToCompleted). */
  private readonly viaBullMQ: QueueBackend['moveToCompleted'];

  /**
   * Files job `job` as completed with `returnValue`, in the next call: what a {@link BatchedJob}'s
   * moveToCompleted asks of its worker (./batched-job.ts). @internal
   */
  fileCompleted(
    job: Job,
    returnValue: unknown,
    token: string,
    fetchNext: boolean,
  ): Promise<{ result: unknown; finishedOn: number }> {
    return this.complete(job, returnValue, job.opts.removeOnComplete, token, fetchNext);
  }

  private get internals(): WorkerInternals {
    return this as unknown as WorkerInternals;
  }

  /** BullMQ's loop wants a job: one taken ahead, or one from the next call. */
  protected override async moveToActive(token: string, name?: string): Promise<Job<D, R>> {
    const answer = this.ahead.shift() ?? (await this.takeOne());
    if (answer === 'bullmq') {
      return super.moveToActive(token, name);
    }
    this.internals.updateDelays(0, 0);
    if (answer === 'none') {
      // As BullMQ's empty answer: the worker counts itself drained and waits on the marker.
      return this.nextJobFromJobData(undefined, undefined, token);
    }
    return this.nextJobFromJobData(jobJsonOfHash(answer.hash), answer.id, answer.token);
  }

  /**
   * A job to run from what a take read. For a job with no repeat (every job BullMQ's repeat check
   * would pass over), what BullMQ's does without its repeat check's retry wrapper, a tenth of what a
   * no-op execution allocated: the Worker is no longer drained, the job carries its token, `active`
   * is emitted. Anything else (no job; a repeatable one) is BullMQ's.
   */
  protected override async nextJobFromJobData(
    jobData?: JobJson,
    jobId?: string,
    token?: string,
  ): Promise<Job<D, R>> {
    if (!jobData || jobData.repeatJobKey) {
      return super.nextJobFromJobData(jobData, jobId, token);
    }
    this.internals.drained = false;
    const job = this.createJob(jobData, jobId as string);
    job.token = token;
    this.emit('active', job, 'waiting');
    return job;
  }

  override async pause(doNotWaitActive?: boolean): Promise<void> {
    this.holdTakes = true;
    await this.giveBackAhead();
    return super.pause(doNotWaitActive);
  }

  override resume(): Promise<void> {
    this.holdTakes = false;
    return super.resume();
  }

  override async close(force?: boolean): Promise<void> {
    this.holdTakes = true;
    await this.giveBackAhead().catch((err: unknown) =>
      // Not given back (Redis away): their locks lapse and the stalled check puts them back.
      this.emit('error', err instanceof Error ? err : new Error(String(err))),
    );
    return super.close(force);
  }

  private takeOne(): Promise<TakeAnswer> {
    return new Promise((resolve, reject) => {
      this.takers.push({ resolve, reject });
      this.schedule();
    });
  }

  private async complete(
    job: Job,
    returnValue: unknown,
    removeOnComplete: unknown,
    token: string,
    fetchNext: boolean | undefined,
  ): Promise<{ result: unknown; finishedOn: number }> {
    // As BullMQ's backend: a value JSON cannot hold fails the filing, undefined is stored as null.
    const value = JSON.stringify(returnValue) ?? 'null';
    const filing = await new Promise<Filing>((resolve, reject) => {
      const jobId = job.id as string;
      // What the take read of the job, trusted while its lock is this token's (finishAndTake-9.lua).
      const attemptsMade =
        job.attemptsStarted > 0 && !job.parentKey && !job.parent && !job.deduplicationId
          ? job.attemptsMade
          : undefined;
      this.finishes.push({
        job,
        jobId,
        token,
        value,
        attemptsMade,
        removeOnComplete,
        fetchNext: fetchNext === true,
        resolve,
        reject,
      });
      this.schedule();
    });
    if (filing === undefined) {
      return this.viaBullMQ(job, returnValue, removeOnComplete, token, fetchNext);
    }
    // BullMQ's reply shape (raw2NextJobData): its Worker then runs the next job under this token.
    const next = filing.next;
    return { result: next ? [jobJsonOfHash(next.hash), next.id, 0, 0] : undefined, finishedOn: filing.at };
  }

  /**
   * One call soon, gathering what the current turn of the event loop adds. While a call is in flight,
   * another one goes (up to `depth` at once) only with a share of the slots' jobs to file or take: so the
   * node runs jobs while Redis files others, and each call still carries several jobs (every call
   * costs both sides about as much as a job: the loopback write, the script's start).
   */
  private schedule(): void {
    if (this.scheduled) {
      return;
    }
    const inFlight = this.calling.size;
    const depth = this.batching.depth ?? 2;
    const waiting = this.finishes.length + this.takers.length;
    if (
      waiting === 0 ||
      inFlight >= depth ||
      (inFlight > 0 && waiting < Math.max(1, Math.floor(this.concurrency / depth)))
    ) {
      return;
    }
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      const call = this.call().finally(() => {
        this.calling.delete(call);
        this.schedule();
      });
      this.calling.add(call);
    });
  }

  private async call(): Promise<void> {
    const finishes = this.finishes.splice(0, this.batching.batch);
    const takers = this.takers.splice(0, this.batching.batch);
    if (finishes.length === 0 && takers.length === 0) {
      return;
    }
    // Retention is one per call: the jobs of one call share it (a job's own wins, as in BullMQ).
    const groups = new Map<string, PendingFinish[]>();
    for (const f of finishes) {
      // sprocd's executions carry none (the worker's applies): no key to build for those.
      const key = f.removeOnComplete === undefined ? '' : JSON.stringify(f.removeOnComplete);
      const group = groups.get(key);
      if (group) {
        group.push(f);
      } else {
        groups.set(key, [f]);
      }
    }
    const calls = groups.size === 0 ? [[]] : [...groups.values()];
    try {
      const client = (await this.backend.client) as unknown as RedisConnection;
      for (const [i, group] of calls.entries()) {
        // The waiting takers (and the jobs taken ahead) go with the last call.
        await this.file(client, group, i === calls.length - 1 ? takers : []);
      }
    } catch (err) {
      for (const f of finishes) {
        f.reject(err);
      }
      for (const t of takers) {
        t.reject(err);
      }
    }
  }

  /**
   * One finishAndTake call: files `group` (jobs of one retention), takes a job for each of them that
   * fetches its next one (locked with its token), one for each taker, and with `prefetch` one more for
   * each free slot (locked with the call's token, tracked from now, served to the next takers).
   */
  private async file(client: RedisConnection, group: PendingFinish[], takers: Taker[]): Promise<void> {
    const token = `${this.id}:b${this.calls++}`;
    // While jobs wait ahead, finished ones fetch none: their slots ask BullMQ's loop, which serves those.
    const fetchers = this.holdTakes ? [] : group.filter((f) => f.fetchNext);
    const fetching = fetchers.slice(0, Math.max(0, fetchers.length - this.ahead.length));
    const extra =
      this.holdTakes || takers.length === 0
        ? 0
        : Math.max(0, this.freeSlots() - takers.length - fetching.length);
    const takeTokens = [
      ...fetching.map((f) => f.token),
      ...Array.from({ length: this.holdTakes ? 0 : takers.length + extra }, () => token),
    ];
    const keep = this.internals.backend.getKeepJobs(group[0]?.removeOnComplete, this.opts.removeOnComplete);
    const reply = await finishAndTake(client, this.batching.bull, {
      completed: group,
      takeTokens,
      lockDurationMs: this.opts.lockDuration ?? 30_000,
      workerName: this.opts.name ?? '',
      keep,
      sideKeys: this.batching.jobSideKeys ?? true,
    });
    this.batchStats.calls++;
    this.batchStats.taken += reply.jobs.length;
    const taken = reply.jobs.map(({ hash, id }, i) => ({ hash, id, token: takeTokens[i] as string }));
    // Taken jobs in the order of their tokens: the fetchers' first, then the takers', then ahead.
    let next = 0;
    const nextOf = new Map<PendingFinish, TakenJob>();
    for (const f of fetching) {
      const job = taken[next];
      if (job?.token === f.token) {
        nextOf.set(f, job);
        next++;
      }
    }
    const backend = this.internals.backend;
    // A job fetched for a finished one that was not filed after all: its slot will ask again.
    const unfiled: TakenJob[] = [];
    group.forEach((f, i) => {
      const code = reply.codes[i] ?? -1;
      const fetched = nextOf.get(f);
      if (code === 0) {
        this.batchStats.filed++;
        f.resolve({ at: reply.at, next: fetched });
        return;
      }
      if (fetched) {
        unfiled.push(fetched);
      }
      if (code === 1) {
        f.resolve(undefined);
      } else {
        // The codes of BullMQ's moveToFinished, for the same causes: BullMQ's error for each.
        f.reject(
          backend.finishedErrors({ code, jobId: f.jobId, command: 'moveToFinished', state: 'active' }),
        );
      }
    });
    for (const job of unfiled) {
      this.keepAhead(job);
    }
    // Paused (the queue, or this worker) or empty: nothing to take. Else BullMQ's script knows more.
    const none = this.holdTakes || reply.state === 1 || reply.state === 3;
    for (const taker of takers) {
      const job = taken[next++];
      taker.resolve(job ?? (none ? 'none' : 'bullmq'));
    }
    for (; next < taken.length; next++) {
      this.keepAhead(taken[next] as TakenJob);
    }
  }

  /** A job taken for no slot yet: served to the next taker, its lock renewed until then. */
  private keepAhead(job: TakenJob): void {
    this.internals.lockManager.trackJob(job.id, job.token, Date.now());
    this.ahead.push(job);
  }

  /** Free slots: the concurrency less the jobs running or taken ahead. */
  private freeSlots(): number {
    if (!this.batching.prefetch) {
      return 1;
    }
    return this.concurrency - this.internals.lockManager.getActiveJobCount();
  }

  /** Gives the jobs taken ahead back to the wait list, unstarted. */
  private async giveBackAhead(): Promise<void> {
    await Promise.all(this.calling);
    const jobs = this.ahead.splice(0);
    for (const taken of jobs) {
      this.internals.lockManager.untrackJob(taken.id);
      const job = this.createJob(jobJsonOfHash(taken.hash), taken.id);
      await job.moveToWait(taken.token);
      await this.batching.onGivenBack?.(taken.id);
    }
  }
}
