/**
 * Every Redis key sprocd names itself, in one place. All of them share the `{prefix}` hash tag, so that
 * multi-key Lua scripts also run on Redis Cluster, and two deployments with other prefixes never meet.
 * The keys BullMQ makes under `bullPrefix` are BullMQ's: see bullmq-internals.ts. The executions' queue
 * keys live in queue shards (`queues`, ./shards.ts), each under a hash tag of its own when S > 1.
 */
import { QueueShards, type ExecutionIndexKeys, type ShardKeys } from './shards.js';

export type { ExecutionIndexKeys } from './shards.js';

/** Name of the single BullMQ queue all procedures travel through. */
export const QUEUE_NAME = 'procedures';

/**
 * The keys of the session storage (docs/SESSION.md). Backup and restore read this layout too: the
 * entries are the fields of one hash, `data`; everything else is lock state a restore does not need.
 */
export interface StorageKeys {
  /** The common prefix (`{prefix}:storage`): a SCAN pattern for the storage's keys. */
  readonly prefix: string;
  /** Hash: entry name → the entry's JSON. Every committed entry, nothing else. */
  readonly data: string;
  /** Counter: each lock grant takes the next value as its fencing token (INCR). */
  readonly fence: string;
  /** `alive(node)` is this followed by the node id; the lock scripts build it from this. */
  readonly alivePrefix: string;
  /** `inbox(node)` is this followed by the node id; the lock scripts build it from this. */
  readonly inboxPrefix: string;
  /** String "<token>:<waiter id>" with a PX lease: who holds the lock on entry `name`. */
  lock(name: string): string;
  /** List of waiter ids queued for the lock on entry `name`, oldest first. */
  queue(name: string): string;
  /** String with a PX lease, renewed by a node's heartbeat while it runs; absent = node dead. */
  alive(node: string): string;
  /** List of grant messages for a node's waiters, read by its blocking connection (BLMPOP, or BLPOP before Redis 7). */
  inbox(node: string): string;
  /** String: SPROCD_STORAGE_SLOTS as stored at first start (absent: 1, the layout before it existed). */
  readonly slotCount: string;
  /** A key never written: the lock scripts' entries hash when the entries live in data slots. */
  readonly noData: string;
  /** String (JSON) with no lease: the changes of a decided multi-slot commit until it is finished. */
  tx(id: string): string;
  /** String with a PX lease: the committing node still applies tx `id` (absent: in doubt). */
  txLease(id: string): string;
  /** String with a PX lease, set while a restore swaps the data slots in: no multi-slot commit decides. */
  readonly restoring: string;
  /** The record of tx `id` once finished, kept for a while: a backup's snapshot rolls it forward. */
  txDone(id: string): string;
  /** String: no tx with a fencing token up to this is applied in data slot `j` any more (a restore). */
  slotFloor(j: number): string;
  /** The staged entries of data slot `j` for the restore holding `token`. */
  slotStaged(j: number, token: string): string;
  /** The snapshot copy of data slot `j`'s `part` ("data" or "ver") made by backup `n`. */
  slotSnapshot(j: number, n: number, part: string): string;
  /** Hash: entry name → JSON, of the entries in data slot `j` (SPROCD_STORAGE_SLOTS > 1). */
  slotData(j: number): string;
  /** Hash: entry name → fencing token of the commit that last wrote it, in data slot `j`. */
  slotVersions(j: number): string;
}

/** The keys of backups and schedules (docs/BACKUPS.md). */
export interface BackupKeys {
  /** String with a PX lease: the running backup or restore (JSON of what runs, with a token). */
  readonly lock: string;
  /** List of history records (JSON), newest first. */
  readonly history: string;
  /** Counter giving backup numbers. */
  readonly number: string;
  /** Consecutive failed automatic backups. */
  readonly failures: string;
  /** Present (JSON) while automatic backups are stopped (1401). */
  readonly stopped: string;
  /** Time (ms) of the last backup that ended with 0. */
  readonly lastSuccess: string;
  /** Counts restores; raised by each one. */
  readonly restores: string;
  /** Short lock serializing the schedule set-up of nodes starting together. */
  readonly scheduleSync: string;
  /** The snapshot copy of `part` (`data` or a BullMQ list name) made by backup `n`. */
  snapshot(n: number, part: string): string;
  /** Staged storage entries of the restore holding `token`. */
  staged(token: string): string;
  /** Marks a schedule tick as taken (so that it fires once). */
  tick(scheduler: string, millis: number): string;
}

/** The keys of one deployment. */
export interface Keys {
  /**
   * BullMQ's `prefix` option for the queues under `{prefix}`: the lifecycle queue, and the procedures
   * queue when the deployment has one queue shard (see bullmq-internals.ts).
   */
  readonly bullPrefix: string;
  /** The queue shards the executions live in (SPROCD_QUEUE_SHARDS, ./shards.ts). */
  readonly queues: QueueShards;
  /** Counter that allots execution numbers (INCR). */
  readonly sequence: string;
  /** The queue shard count the deployment was first started with (SPROCD_QUEUE_SHARDS, redis/shards.ts). */
  readonly queueShards: string;
  /** Pub/sub channel carrying abort and wake requests to whichever node runs the execution. */
  readonly controlChannel: string;
  /** Hash holding the session's identity (id, createdAtMs, createdBy). */
  readonly session: string;
  /** Hash of live nodes → heartbeat JSON. */
  readonly nodes: string;
  /** The session storage. */
  readonly storage: StorageKeys;
  /** Backups, restores and schedule ticks. */
  readonly backup: BackupKeys;
  /** Stream of sprocd's own events (system events, backups) beside BullMQ's job events (src/events). */
  readonly eventLog: string;
  /** Stream of the audit trail: who changed what, trimmed to SPROCD_AUDIT_MAX (src/auth/audit.ts). */
  readonly audit: string;
  /** Hash of the executions that ended in the 10-second bucket starting at `t` (src/stats). */
  stats(t: number): string;
  /**
   * The indexes of executions by procedure and by process name (src/procedures/execution-index.ts) of
   * a deployment with one queue shard. With more, each shard has its own (`queues.ofNumber(n)`), and
   * reading this throws: a part that reads it has not learnt about shards.
   */
  readonly executionIndex: ExecutionIndexKeys;
  /** Per-caller rate-limit counters are this followed by the caller (src/api/limits.ts). */
  readonly rateLimitPrefix: string;
  /** List of execution `number`'s kept log lines (JSON), oldest first (src/procedures/execution-logs.ts). */
  executionLogs(number: number): string;
  /** Hash of signal `id` (New signal): description, signaled flag, result (src/procedures/signals.ts). */
  signal(id: string): string;
  /**
   * String, PX its sleep: execution `number` sleeps in ctx.delay until the time (ms) it holds, so that
   * Process state answers "delayed" on every node (src/procedures/processes.ts).
   */
  sleep(number: number): string;
  /** Pub/sub channel: `<signal id>\n<result JSON>` each time a signal is triggered. */
  readonly signalChannel: string;
  /** String with a PX lease: the holder of semaphore `name` (src/procedures/semaphores.ts). */
  semaphore(name: string): string;
  /** Pub/sub channel: a semaphore's name each time its holder clears it. */
  readonly semaphoreChannel: string;
  /** Workers (CALL WORKER): their mailboxes, owners and index (src/procedures/workers/). */
  readonly workers: WorkerKeys;
}

/**
 * The keys of the workers (CALL WORKER, docs/ARCHITECTURE.md#workers). Each worker's keys carry a
 * one-letter part before its name, so no worker name can make one worker's key another's.
 */
export interface WorkerKeys {
  /** Sorted set: every worker's name, scored by when a node should look at it (ms; +inf: idle, unowned). */
  readonly index: string;
  /** Pub/sub channel: a worker's name when it has work and may have nobody looking (idle, or released). */
  readonly channel: string;
  /** Hash of worker `name`: created, processed and failed counts, the current message and its attempt. */
  state(name: string): string;
  /** List of worker `name`'s pending messages (JSON), oldest first. */
  mailbox(name: string): string;
  /** String with a PX lease: the token (`<uuid>@<node>`) of the node that runs worker `name`. */
  owner(name: string): string;
}

/** Keys for the deployment named by `prefix`, its executions spread over `queueShards` queues. */
export function createKeys(prefix: string, queueShards = 1): Keys {
  const tag = `{${prefix}}`;
  const queues = new QueueShards(prefix, queueShards);
  return {
    bullPrefix: tag,
    queues,
    sequence: `${tag}:seq`,
    queueShards: `${tag}:shards`,
    controlChannel: `${tag}:control`,
    session: `${tag}:session`,
    nodes: `${tag}:nodes`,
    storage: storageKeys(`${tag}:storage`, prefix),
    backup: backupKeys(`${tag}:backup`),
    eventLog: `${tag}:eventlog`,
    audit: `${tag}:audit`,
    stats: (t) => `${tag}:stats:${t}`,
    get executionIndex(): ExecutionIndexKeys {
      return soleShard(queues).executionIndex;
    },
    rateLimitPrefix: `${tag}:ratelimit:`,
    executionLogs: (number) => `${tag}:xlog:${number}`,
    signal: (id) => `${tag}:signal:${id}`,
    sleep: (number) => `${tag}:sleep:${number}`,
    signalChannel: `${tag}:signals`,
    semaphore: (name) => `${tag}:sem:${name}`,
    semaphoreChannel: `${tag}:semaphores`,
    workers: {
      index: `${tag}:workers`,
      channel: `${tag}:workers:nudge`,
      state: (name) => `${tag}:wk:h:${name}`,
      mailbox: (name) => `${tag}:wk:m:${name}`,
      owner: (name) => `${tag}:wk:o:${name}`,
    },
  };
}

/**
 * The one queue shard of a deployment that has one. Parts that name a deployment's execution keys
 * without a number (lists, counts, event streams) must go through `queues.all` instead: this throws for
 * S > 1 so that a part that does not is found by the first test that runs it with shards.
 */
export function soleShard(queues: QueueShards): ShardKeys {
  if (queues.count !== 1) {
    throw new Error(
      `internal: the deployment has ${queues.count} queue shards; name the shard (keys.queues)`,
    );
  }
  return queues.all[0]!;
}

/** `base` is the deployment prefix: data slot j has a hash tag of its own, `{base:s<j>}`. */
function storageKeys(prefix: string, base: string): StorageKeys {
  const alivePrefix = `${prefix}:alive:`;
  const inboxPrefix = `${prefix}:inbox:`;
  return {
    prefix,
    data: `${prefix}:data`,
    fence: `${prefix}:fence`,
    alivePrefix,
    inboxPrefix,
    lock: (name) => `${prefix}:lock:${name}`,
    queue: (name) => `${prefix}:queue:${name}`,
    alive: (node) => `${alivePrefix}${node}`,
    inbox: (node) => `${inboxPrefix}${node}`,
    slotCount: `${prefix}:slots`,
    noData: `${prefix}:no-data`,
    tx: (id) => `${prefix}:tx:${id}`,
    txLease: (id) => `${prefix}:tx-lease:${id}`,
    txDone: (id) => `${prefix}:tx-done:${id}`,
    restoring: `${prefix}:restoring`,
    slotFloor: (j) => `{${base}:s${j}}:floor`,
    slotStaged: (j, token) => `{${base}:s${j}}:restore:${token}`,
    slotSnapshot: (j, n, part) => `{${base}:s${j}}:snap:${n}:${part}`,
    slotData: (j) => `{${base}:s${j}}:data`,
    slotVersions: (j) => `{${base}:s${j}}:ver`,
  };
}

function backupKeys(p: string): BackupKeys {
  return {
    lock: `${p}:lock`,
    history: `${p}:history`,
    number: `${p}:number`,
    failures: `${p}:failures`,
    stopped: `${p}:stopped`,
    lastSuccess: `${p}:last-success`,
    restores: `${p}:restores`,
    scheduleSync: `${p}:schedule-sync`,
    snapshot: (n, part) => `${p}:snap:${n}:${part}`,
    staged: (token) => `${p}:restore:${token}`,
    tick: (scheduler, millis) => `${p}:tick:${scheduler}:${millis}`,
  };
}

/** The SCAN pattern matching every key of the deployment named by `prefix`, and nothing else. */
export function deploymentPattern(prefix: string): string {
  return `{${prefix}}*`;
}

/**
 * The SCAN pattern of the deployment's storage data slots (`{prefix:s<j>}`, SPROCD_STORAGE_SLOTS > 1),
 * which have hash tags of their own; a prefix holds no ":", so no other deployment's keys match.
 */
export function slotPattern(prefix: string): string {
  return `{${prefix}:s*`;
}

/**
 * BullMQ refuses integer job ids, so execution N travels as job "eN"; the number stays the public
 * name everywhere else.
 */
export function jobIdOf(number: number): string {
  return `e${number}`;
}

/** The execution number of a job id made by jobIdOf, or undefined for foreign ids. */
export function numberOfJobId(jobId: string | undefined): number | undefined {
  if (jobId === undefined || !/^e[1-9]\d*$/.test(jobId)) {
    return undefined;
  }
  return Number(jobId.slice(1));
}
