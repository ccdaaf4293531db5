/**
 * Everything sprocd relies on below BullMQ's public API, in one place: the names of the keys BullMQ
 * keeps for a queue, the fields of its job hashes, the score of its delayed set and the ids of the
 * jobs its schedulers make. Aborting or pausing a waiting execution (abortWaiting-8.lua, pauseExecution-5.lua), backups (which copy
 * and read the job lists and hashes) and the rolling-deploy hand-off need them.
 *
 * test/redis/bullmq-internals.test.ts runs real BullMQ Queues and Workers and checks every name
 * here against what BullMQ writes: a BullMQ upgrade that changes one of them fails that test.
 */
import { Job, type JobJson, type Queue, type Worker } from 'bullmq';
import type { RedisConnection } from './redis-connection.js';
import { QUEUE_NAME, jobIdOf, soleShard, type Keys } from './keys.js';
import type { ShardKeys } from './shards.js';

/**
 * The `streams.events.maxLen` of the procedures queue: how much event history Redis keeps for clients
 * that resume with Last-Event-ID. BullMQ's default is 10,000 entries; an execution writes about five
 * (added, waiting, active, completed, and its progress), so that holds the last 2,000 executions:
 * seconds of a busy cluster. sprocd keeps ten times that, minutes of history at hundreds of executions
 * a second, for some megabytes of Redis memory. sprocd's abort script trims to it too.
 */
export const JOB_EVENTS_MAX_LEN = 100_000;

/** The keys BullMQ keeps for one queue (`<bullPrefix>:<queue>:<suffix>`). */
export interface BullQueueKeys {
  /** List of waiting job ids (also while the queue is paused: BullMQ 6 only flags `meta`). */
  readonly wait: string;
  /** List of job ids of a queue paused by BullMQ before 5; BullMQ 6 reads it on resume only. */
  readonly paused: string;
  /** List of the job ids workers hold now. */
  readonly active: string;
  /** Sorted set of waiting jobs with a priority. */
  readonly prioritized: string;
  /** Sorted set of delayed jobs, scored by {@link delayedScoreDueAt}. */
  readonly delayed: string;
  /** Sorted set of completed job ids, scored by finish time (ms). */
  readonly completed: string;
  /** Sorted set of failed job ids, scored by finish time (ms). */
  readonly failed: string;
  /** Stream of job events (what QueueEvents reads). */
  readonly events: string;
  /** Sorted set whose entries wake a worker blocked waiting for a job. */
  readonly marker: string;
  /** Hash of queue settings (`paused` and others). */
  readonly meta: string;
  /** Set of active job ids the stalled check saw without a lock on its last pass. */
  readonly stalled: string;
  /** A deduplication key is this followed by the deduplication id; it holds the live job's id. */
  readonly deduplicationPrefix: string;
  /** Hash of the job `jobId`. */
  job(jobId: string): string;
  /** String with a PX lease: the token of the worker that holds job `jobId` while it is active. */
  jobLock(jobId: string): string;
}

/**
 * BullMQ's keys for the procedures queue of one queue shard, or for `queue` of the deployment `keys`:
 * the lifecycle queue, or the procedures queue of a deployment with one shard (more: name the shard).
 */
export function bullQueueKeys(keys: Keys | ShardKeys, queue: string = QUEUE_NAME): BullQueueKeys {
  const prefix =
    'queues' in keys && queue === QUEUE_NAME ? soleShard(keys.queues).bullPrefix : keys.bullPrefix;
  const base = `${prefix}:${queue}:`;
  return {
    wait: `${base}wait`,
    paused: `${base}paused`,
    active: `${base}active`,
    prioritized: `${base}prioritized`,
    delayed: `${base}delayed`,
    completed: `${base}completed`,
    failed: `${base}failed`,
    events: `${base}events`,
    marker: `${base}marker`,
    meta: `${base}meta`,
    stalled: `${base}stalled`,
    deduplicationPrefix: `${base}de:`,
    job: (jobId) => `${base}${jobId}`,
    jobLock: (jobId) => `${base}${jobId}:lock`,
  };
}

/** The job hash of execution `number`, in its queue shard. */
export function executionJobKey(keys: Keys, number: number): string {
  return bullQueueKeys(keys.queues.ofNumber(number)).job(jobIdOf(number));
}

/** The lists and sorted sets that hold every unfinished job, and their Redis types. */
export const UNFINISHED_JOB_SETS: readonly {
  part: 'active' | 'wait' | 'paused' | 'prioritized' | 'delayed';
  kind: 'list' | 'zset';
}[] = [
  { part: 'active', kind: 'list' },
  { part: 'wait', kind: 'list' },
  { part: 'paused', kind: 'list' },
  { part: 'prioritized', kind: 'zset' },
  { part: 'delayed', kind: 'zset' },
];

/** Fields of a BullMQ job hash that sprocd reads or writes itself. */
export const JOB_FIELDS = {
  /** The job name (sprocd: the procedure). */
  name: 'name',
  /** JSON of the job data. */
  data: 'data',
  /** JSON of the job options, with BullMQ's short keys (decode with `Job.optsFromJSON`). */
  opts: 'opts',
  /** Creation time (ms). */
  timestamp: 'timestamp',
  /** Priority, when one was given. */
  priority: 'priority',
  /** When the current attempt started (ms). */
  processedOn: 'processedOn',
  /** When it completed or failed (ms); absent while unfinished. */
  finishedOn: 'finishedOn',
  /** The error message of a failure. */
  failedReason: 'failedReason',
  /** JSON of the result of a completed job. */
  returnvalue: 'returnvalue',
  /** Attempts started (Job.attemptsStarted): raised each time a worker takes the job. */
  attemptsStarted: 'ats',
  /** Attempts that ended (Job.attemptsMade). */
  attemptsMade: 'atm',
  /** The deduplication id of a job added with `deduplication` (its key: deduplicationPrefix + id). */
  deduplicationId: 'deid',
  /** The name of the worker that took it last (Job.processedBy). */
  processedBy: 'pb',
} as const;

/**
 * sprocd's own field in a job hash: "1" once an abort was asked for. BullMQ leaves fields it does not
 * know alone, so the flag lives and dies with the job.
 */
export const ABORT_FIELD = 'sprocdAbort';

/**
 * sprocd's own fields in the job hash of an execution aborted or paused while in the wait list: its
 * `processedOn` and `pb` before the abort or pause, put back when the worker that pops it drops or
 * parks it (BullMQ's pop overwrites them; dropPopped-6.lua).
 */
export const POP_SAVED_FIELDS = { processedOn: 'sprocdPo', processedBy: 'sprocdPb' } as const;

/** sprocd's own field in the job hash of a retried execution: the number of its retry. */
export const RETRIED_BY_FIELD = 'sprocdRetriedBy';

/**
 * sprocd's own field in the job hash of a paused execution (PAUSE PROCESS, procedures/pauses.ts):
 * "run" once it started; "wait" while it is still in the wait list, marked (see
 * {@link PAUSE_OPTS_MARK}); "queue" once parked from the queue; else the due time (ms) of its delayed
 * start. It lives and dies with the job, and retention takes it away.
 */
export const PAUSE_FIELD = 'sprocdPause';

/**
 * The member sprocd puts in the job options (the hash's `opts` JSON) of an execution paused while in
 * the wait list, which stays there. BullMQ's pop hands the worker the job's options, unknown members
 * included (its own fields it filters: {@link PAUSE_FIELD} never reaches the worker), so the worker
 * that pops it sees `job.opts[PAUSE_OPTS_MARK]` and parks it instead of running it, with no call to
 * Redis for the jobs that carry no mark (lua/includes/pauseMark.lua).
 */
export const PAUSE_OPTS_MARK = 'sprocdPaused';

/** The mark as the Lua scripts write it: a JSON member. */
export const PAUSE_OPTS_MEMBER = `"${PAUSE_OPTS_MARK}":1`;

/** Whether a job a worker popped carries the pause mark (see {@link PAUSE_OPTS_MARK}). */
export function hasPauseMark(job: Job): boolean {
  return (job.opts as Record<string, unknown>)[PAUSE_OPTS_MARK] !== undefined;
}

/** BullMQ scores a delayed job `due time (ms) * 0x1000 + a counter`. */
export const DELAYED_SCORE_FACTOR = 0x1000;

/**
 * Where a paused execution that has not started waits in the delayed set: the farthest due time whose
 * score is still an exact integer in Redis (2^53 / 0x1000 ms, in 2039), so no worker takes it before a
 * resume moves it back.
 */
export const PARKED_DUE_AT = Math.floor(Number.MAX_SAFE_INTEGER / DELAYED_SCORE_FACTOR) - 1;

/** The delayed-set score of a parked execution. */
export const PARKED_SCORE = PARKED_DUE_AT * DELAYED_SCORE_FACTOR;

/** The due time (ms) of a delayed job from its score in the delayed set. */
export function delayedScoreDueAt(score: number): number {
  return Math.floor(score / DELAYED_SCORE_FACTOR);
}

/** The id of the job a job scheduler makes for its tick at `millis`. */
export function schedulerJobId(scheduler: string, millis: number): string {
  return `repeat:${scheduler}:${millis}`;
}

/** The scheduler and tick time of a job id made by a job scheduler, or undefined for other ids. */
export function parseSchedulerJobId(
  jobId: string | undefined,
): { scheduler: string; millis: number } | undefined {
  const match = /^repeat:(.+):(\d+)$/.exec(jobId ?? '');
  return match ? { scheduler: match[1] as string, millis: Number(match[2]) } : undefined;
}

/** Whether an abort was asked for execution `number` (see {@link ABORT_FIELD}). */
export async function abortRequested(redis: RedisConnection, keys: Keys, number: number): Promise<boolean> {
  return (await redis.hget(executionJobKey(keys, number), ABORT_FIELD)) === '1';
}

/** The pause field of execution `number` (see {@link PAUSE_FIELD}); undefined when not paused. */
export async function pauseField(
  redis: RedisConnection,
  keys: Keys,
  number: number,
): Promise<string | undefined> {
  return (await redis.hget(executionJobKey(keys, number), PAUSE_FIELD)) ?? undefined;
}

/** Clears the pause field of execution `number` (RESUME PROCESS). */
export async function clearPauseField(redis: RedisConnection, keys: Keys, number: number): Promise<void> {
  await redis.hdel(executionJobKey(keys, number), PAUSE_FIELD);
}

/**
 * Takes back the start BullMQ counted when a worker took execution `number`: for a hand-off that was
 * not a start (the job was moved back before its procedure ran).
 */
export async function uncountStart(redis: RedisConnection, keys: Keys, number: number): Promise<void> {
  await redis.hincrby(executionJobKey(keys, number), JOB_FIELDS.attemptsStarted, -1);
}

/**
 * Stops the worker renewing the lock of job `jobId`, which sprocd moved out of `active` itself while
 * its processor still runs (an aborted execution whose code has not settled: see worker-pool.ts).
 * BullMQ tracks the jobs its processors hold in a private lock manager and would otherwise try to
 * renew the gone lock every half lease, raising `lockRenewalFailed` and an error each time. Missing
 * (another BullMQ version): nothing is done, and those renewals only fail quietly.
 */
export function stopLockRenewal(worker: Worker | undefined, jobId: string | undefined): void {
  const manager = (worker as unknown as { lockManager?: { untrackJob?: (id: string) => void } } | undefined)
    ?.lockManager;
  if (jobId !== undefined && typeof manager?.untrackJob === 'function') {
    manager.untrackJob(jobId);
  }
}

/** A hash field's integer; undefined for an absent field. */
function intOrUndefined(value: string | undefined): number | undefined {
  return value === undefined ? undefined : parseInt(value, 10);
}

/**
 * Job options as Job.optsFromJSON decodes them, by their stored text after the job id: an execution's
 * options differ from the next one's only in the id (`{"jobId":"e12","attempts":1}`), and decoding them
 * again for each was a tenth of a drain's node time per execution. Only options of plain values are
 * kept (the Job constructor copies the top level, so they are never changed through a job); a job id
 * with an escape in its JSON, or options that are not stored with the id first, are decoded as BullMQ
 * does. Bounded: a queue of varied options starts the map again rather than grows it.
 */
const JOB_ID_HEAD = '{"jobId":"';
const decodedOpts = new Map<string, Record<string, unknown>>();
const DECODED_OPTS_MAX = 256;

function optsOfJson(raw: string | undefined): JobJson['opts'] {
  if (raw === undefined || !raw.startsWith(JOB_ID_HEAD)) {
    return Job.optsFromJSON(raw);
  }
  const end = raw.indexOf('"', JOB_ID_HEAD.length);
  const escape = raw.indexOf('\\', JOB_ID_HEAD.length);
  if (end < 0 || (escape >= 0 && escape < end)) {
    return Job.optsFromJSON(raw);
  }
  const rest = raw.slice(end + 1);
  let others = decodedOpts.get(rest);
  if (!others) {
    const opts = Job.optsFromJSON(raw) as Record<string, unknown>;
    if (!Object.values(opts).every((v) => v === null || typeof v !== 'object')) {
      return opts;
    }
    const { jobId: _, ...decoded } = opts;
    if (decodedOpts.size >= DECODED_OPTS_MAX) {
      decodedOpts.clear();
    }
    decodedOpts.set(rest, decoded);
    others = decoded;
  }
  return { jobId: raw.slice(JOB_ID_HEAD.length, end), ...others };
}

/**
 * A job as Job.fromJSON takes it, from its hash as HGETALL returns it: what BullMQ's own
 * Job.fromId does (its rawToJobJson is not exported), for a job read by a script of ours with its
 * state in the same step (executionFind-6.lua).
 */
export function jobJsonOfHash(raw: Record<string, string>): JobJson {
  return {
    id: raw.id as string,
    name: raw.name as string,
    data: raw.data ?? '{}',
    opts: optsOfJson(raw.opts),
    progress: raw.progress === undefined ? 0 : (JSON.parse(raw.progress) as JobJson['progress']),
    delay: intOrUndefined(raw.delay),
    priority: intOrUndefined(raw.priority),
    timestamp: parseInt(raw.timestamp as string, 10),
    attemptsStarted: parseInt(raw.ats ?? '0', 10),
    attemptsMade: parseInt(raw.attemptsMade ?? raw.atm ?? '0', 10),
    stalledCounter: parseInt(raw.stc ?? '0', 10),
    finishedOn: raw.finishedOn ? intOrUndefined(raw.finishedOn) : undefined,
    processedOn: raw.processedOn ? intOrUndefined(raw.processedOn) : undefined,
    repeatJobKey: raw.rjk,
    debounceId: raw.deid,
    deduplicationId: raw.deid,
    failedReason: raw.failedReason as string,
    deferredFailure: raw.defa,
    stacktrace: raw.stacktrace,
    returnvalue: raw.returnvalue as string,
    parentKey: raw.parentKey,
    parent: raw.parent ? (JSON.parse(raw.parent) as JobJson['parent']) : undefined,
    processedBy: raw.pb,
  };
}

/** Moves a delayed job's start to `ms` from now (0: it joins the queue now); nothing once it left the delayed set. */
export async function moveDelayedStart(queue: Queue, jobId: string, ms: number): Promise<void> {
  const job = await Job.fromId(queue, jobId);
  try {
    await (ms === 0 ? job?.promote() : job?.changeDelay(ms));
  } catch (err) {
    // It left the delayed set meanwhile (started, aborted, woken): nothing is left to move.
    if (!(err instanceof Error) || !/not in the delayed state|Missing key for job/.test(err.message)) {
      throw err;
    }
  }
}

/**
 * Makes a running worker's main loop look at its `concurrency` now. Raising it does not by itself:
 * a loop holding as many jobs as its concurrency waits for one of them to end before it fetches
 * again. This is what BullMQ's own `resume()` does to a loop that waits on its jobs (worker.js
 * mainLoop: a settled promise in its queue ends that wait, and the loop fetches up to its
 * concurrency). Missing (another BullMQ version): nothing is done, and the raised concurrency takes
 * effect when one of its jobs ends.
 */
export function wakeMainLoop(worker: Worker): void {
  const queue = (worker as unknown as { mainLoopQueue?: { add?: (p: Promise<unknown>) => void } | null })
    .mainLoopQueue;
  if (typeof queue?.add === 'function') {
    queue.add(Promise.resolve());
  }
}
