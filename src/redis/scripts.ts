/**
 * Every Lua script of sprocd, in one place, loaded one way.
 *
 * The scripts are the files of ./lua/, each named `name-<numberOfKeys>.lua` (`-n` when the caller
 * passes as many keys as it needs) and opening with an Input/Output header; a line
 * `--- @include "includes/x"` pulls in ./lua/includes/x.lua, once. Each script is registered with
 * ioredis `defineCommand` on the connection it first runs on, under `sprocd:<name>:<version>`, the
 * version being a hash of its text: a node running other script text (a rolling deploy, or two copies
 * of sprocd sharing a connection) registers another name, so no caller ever runs a script it was not
 * written for. ioredis sends EVALSHA, and the script text once per connection when Redis does not
 * know it (after a restart too).
 *
 * Callers never pass raw KEYS or ARGV: each script has one typed wrapper below, which builds both
 * from redis/keys.ts (and bullmq-internals.ts) and decodes the reply. This file is long because every
 * script's wrapper lives here, beside the one loader.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { isCluster, slotOf } from './cluster.js';
import type { RedisConnection } from './redis-connection.js';
import {
  DELAYED_SCORE_FACTOR,
  JOB_EVENTS_MAX_LEN,
  PARKED_SCORE,
  PAUSE_FIELD,
  PAUSE_OPTS_MEMBER,
  POP_SAVED_FIELDS,
  RETRIED_BY_FIELD,
  bullQueueKeys,
  executionJobKey,
  type BullQueueKeys,
} from './bullmq-internals.js';
import { jobIdOf, numberOfJobId, type Keys, type StorageKeys } from './keys.js';
import type { ShardKeys } from './shards.js';

/** One script of ./lua/, ready to register. */
export interface LuaScript {
  /** From the file name: `lockCommit` for lockCommit-n.lua. */
  readonly name: string;
  /** Fixed number of keys, or undefined when the caller passes the count (`-n`). */
  readonly numberOfKeys: number | undefined;
  /** The text sent to Redis, includes resolved. */
  readonly lua: string;
  /** The ioredis command name: `sprocd:<name>:<first 8 hex of the text's SHA-1>`. */
  readonly command: string;
}

const LUA_DIR = new URL('./lua/', import.meta.url);
const FILE_NAME = /^([a-z][A-Za-z]*)-(\d+|n)\.lua$/;
const INCLUDE = /^--- @include "([\w/-]+)"[ \t]*$/gm;

function readLua(path: string): string {
  return fs.readFileSync(new URL(`${path}.lua`, LUA_DIR), 'utf8');
}

/** `source` with each include line replaced by the included file (each file once). */
function resolveIncludes(source: string, seen: Set<string>): string {
  return source.replace(INCLUDE, (_line, path: string) => {
    if (seen.has(path)) {
      return '';
    }
    seen.add(path);
    return resolveIncludes(readLua(path), seen);
  });
}

/** Reads every script of ./lua/ (not its includes). Exported for tests. */
export function loadScripts(): ReadonlyMap<string, LuaScript> {
  const scripts = new Map<string, LuaScript>();
  for (const file of fs.readdirSync(LUA_DIR).sort()) {
    const match = FILE_NAME.exec(file);
    if (!match) {
      continue; // the includes folder
    }
    const name = match[1] as string;
    const lua = resolveIncludes(readLua(file.slice(0, -'.lua'.length)), new Set());
    const version = createHash('sha1').update(lua).digest('hex').slice(0, 8);
    scripts.set(name, {
      name,
      numberOfKeys: match[2] === 'n' ? undefined : Number(match[2]),
      lua,
      command: `sprocd:${name}:${version}`,
    });
  }
  return scripts;
}

const SCRIPTS = loadScripts();
/** Connections on which every script is registered. */
const registered = new WeakSet<RedisConnection>();

type ScriptCommand = (...args: (string | number)[]) => Promise<unknown>;

/** Registers every script on `redis` (once per connection). */
export function defineScripts(redis: RedisConnection): void {
  if (registered.has(redis)) {
    return;
  }
  for (const script of SCRIPTS.values()) {
    redis.defineCommand(script.command, { lua: script.lua, numberOfKeys: script.numberOfKeys });
  }
  registered.add(redis);
}

/** Runs script `name` with `keys` and `args` on `redis`. */
function run(
  redis: RedisConnection,
  name: string,
  keys: readonly string[],
  args: readonly (string | number)[],
): Promise<unknown> {
  const script = SCRIPTS.get(name);
  if (script === undefined) {
    throw new Error(`no Lua script ${name} in ${LUA_DIR.pathname}`);
  }
  if (script.numberOfKeys !== undefined && script.numberOfKeys !== keys.length) {
    throw new Error(`Lua script ${name} takes ${script.numberOfKeys} keys, not ${keys.length}`);
  }
  defineScripts(redis);
  const command = (redis as unknown as Record<string, ScriptCommand>)[script.command] as ScriptCommand;
  return script.numberOfKeys === undefined
    ? command.call(redis, keys.length, ...keys, ...args)
    : command.call(redis, ...keys, ...args);
}

/** A hash as HGETALL answers it (field, value, field, value...), read from position `from`. */
function hashOfPairs(pairs: readonly string[], from = 0): Record<string, string> {
  const hash: Record<string, string> = {};
  for (let i = from; i + 1 < pairs.length; i += 2) {
    hash[pairs[i] as string] = pairs[i + 1] as string;
  }
  return hash;
}

// ---- session storage locks (session/locks.ts) ---------------------------------------------------

/** The storage keys, with the number of data slots when the entries live in slots (session/slots.ts). */
export type LockKeys = StorageKeys & { readonly slots?: { readonly k: number } };

/**
 * The entries hash the lock scripts read and write: with data slots (K > 1) a key never written, so
 * they return no values and write none (the node reads and writes the slots itself).
 */
function lockData(storage: LockKeys): string {
  return storage.slots !== undefined && storage.slots.k > 1 ? storage.noData : storage.data;
}

/** Lease settings every lock script gets. */
export interface LockTimes {
  /** Lock lease (ms). */
  readonly leaseMs: number;
  /** How long a node's inbox outlives its last grant message (ms). */
  readonly inboxTtlMs: number;
}

/** The reply of {@link lockAcquire}. */
export interface AcquireReply {
  /** True when every lock was taken; false when the waiter now queues on the next one. */
  readonly complete: boolean;
  /** "<fencing token>:<waiter id>" of the locks taken ('' when none was). */
  readonly lockValue: string;
  /** When queued: the remaining lease (ms) of the lock it waits for. */
  readonly pttl: number;
  /** The JSON of each entry taken, in order (undefined: no such entry). */
  readonly values: (string | undefined)[];
}

/** lockAcquire-n.lua: takes the free locks of `names` (sorted) in order, queueing on the first held one. */
export async function lockAcquire(
  redis: RedisConnection,
  storage: LockKeys,
  times: LockTimes,
  waiter: string,
  names: readonly string[],
): Promise<AcquireReply> {
  const keys = [storage.fence, lockData(storage)];
  for (const name of names) {
    keys.push(storage.lock(name), storage.queue(name));
  }
  const [status, lockValue, pttl, ...values] = (await run(redis, 'lockAcquire', keys, [
    storage.alivePrefix,
    storage.inboxPrefix,
    waiter,
    times.leaseMs,
    times.inboxTtlMs,
    storage.txLease(''),
    ...names,
  ])) as [number, string, number, ...string[]];
  return {
    complete: status === 1,
    lockValue,
    pttl,
    values: values.map((json) => (json === '' ? undefined : json)),
  };
}

/** One entry of a {@link lockCommit}. */
export interface CommitEntry {
  readonly name: string;
  /** The value its lock must still hold. */
  readonly lockValue: string;
  /** `json` set: write it; delete: remove the entry; keep: leave it as it is. */
  readonly op: 'set' | 'delete' | 'keep';
  readonly json?: string;
  /** Waiter ids of the committing node that join the entry's queue before the lock is handed on. */
  readonly riders: readonly string[];
}

/**
 * A key that must still hold a value on the server a commit reaches, or the commit writes nothing: an
 * execution's BullMQ job lock and its token. A run that lost its job there (its lease ran out, or it
 * took the job from a master the sentinels have replaced since) writes nothing.
 */
export interface RunFence {
  readonly key: string;
  readonly value: string;
}

/** The reply of {@link lockCommit}. */
export interface CommitReply {
  /** True when every lock was still held and the changes were written. */
  readonly ok: boolean;
  /** True when the run fence refused the writes (every lock was held, nothing was written). */
  readonly fenced: boolean;
  /** Entries whose lock was lost (nothing was written then). */
  readonly lost: string[];
  /** Grant messages for waiters of the committing node (as its inbox would carry them). */
  readonly grants: string[];
  /**
   * With data slots: the id (and fencing token) of the tx decided, whose changes the node now applies
   * (storageApply) and then finishes (lockFinish). `ok` is true then, and nothing is released yet.
   */
  readonly tx?: string;
}

/** lockCommit-n.lua: writes the entries' changes when every lock is still held, releases and hands on each. */
export async function lockCommit(
  redis: RedisConnection,
  storage: LockKeys,
  times: LockTimes,
  node: string,
  entries: readonly CommitEntry[],
  fence?: RunFence,
  floor = 0,
): Promise<CommitReply> {
  const data = lockData(storage);
  if (fence && isCluster(redis) && slotOf(fence.key) !== slotOf(data)) {
    // A queue shard's job lock lives in another slot than the storage, and one script cannot read
    // both on a Cluster: the fence is read just before the commit instead. That narrows, not closes,
    // the window of a run whose job moved (docs/ARCHITECTURE.md, "Queue shards").
    if ((await redis.get(fence.key)) !== fence.value) {
      return { ok: false, fenced: true, lost: [], grants: [] };
    }
    fence = undefined;
  }
  const keys = [storage.fence, data, fence?.key ?? data];
  const args: (string | number)[] = [
    storage.alivePrefix,
    storage.inboxPrefix,
    times.leaseMs,
    times.inboxTtlMs,
    node,
    fence?.value ?? '',
    data === storage.data ? '0' : '1',
    storage.tx(''),
    storage.txLease(''),
    floor,
    storage.restoring,
  ];
  for (const e of entries) {
    keys.push(storage.lock(e.name), storage.queue(e.name));
    const op = e.op === 'set' ? 's' : e.op === 'delete' ? 'd' : 'k';
    args.push(e.name, e.lockValue, op, e.op === 'set' ? (e.json ?? '') : '', e.riders.length, ...e.riders);
  }
  const reply = (await run(redis, 'lockCommit', keys, args)) as [number, number, ...string[]];
  const lostCount = reply[1];
  if (reply[0] === 2) {
    return { ok: true, fenced: false, lost: [], grants: [], tx: String(reply[2]) };
  }
  return {
    ok: reply[0] === 1,
    fenced: reply[0] === -1,
    lost: reply.slice(2, 2 + lostCount) as string[],
    grants: reply.slice(2 + lostCount) as string[],
  };
}

/**
 * lockRecheck-4.lua: hands on the lock of `name` if its holder's lease ran out; keeps `waiter` queued.
 * `inDoubt` names the tx of a multi-slot commit whose holder stopped between its decide and its finish.
 */
export async function lockRecheck(
  redis: RedisConnection,
  storage: LockKeys,
  times: LockTimes,
  name: string,
  waiter: string,
): Promise<{ granted: boolean; pttl: number; inDoubt?: string }> {
  const [code, pttl] = (await run(
    redis,
    'lockRecheck',
    [storage.fence, lockData(storage), storage.lock(name), storage.queue(name)],
    [
      storage.alivePrefix,
      storage.inboxPrefix,
      times.leaseMs,
      times.inboxTtlMs,
      name,
      waiter,
      storage.txLease(''),
    ],
  )) as [number, number | string];
  if (code === 3) {
    return { granted: false, pttl: 0, inDoubt: String(pttl) };
  }
  return { granted: code === 2, pttl: Number(pttl) };
}

/** One change of a decided tx, as its record (lockCommit-n.lua) keeps it: name, op ("s"/"d"), JSON. */
export type TxChange = readonly [name: string, op: 's' | 'd', json: string];

/**
 * storageApply-2.lua: writes `changes` (all of one data slot) with the tx's fencing `token`, each only
 * where the stored version is lower. Returns the number of entries written.
 */
export async function storageApply(
  redis: RedisConnection,
  slot: { readonly data: string; readonly versions: string; readonly floor: string },
  token: string,
  changes: readonly TxChange[],
): Promise<number> {
  return Number(
    await run(redis, 'storageApply', [slot.data, slot.versions, slot.floor], [token, ...changes.flat()]),
  );
}

/**
 * lockFinish-n.lua: ends tx `id` (its changes are in every slot): deletes its record, releases the
 * locks of `names` still marked with it and hands each on. `node` gets its grants in the reply (''
 * sends them all to inboxes). Returns whether this run finished it, and the grants.
 */
export async function lockFinish(
  redis: RedisConnection,
  storage: LockKeys,
  times: LockTimes,
  node: string,
  id: string,
  names: readonly string[],
): Promise<{ finished: boolean; grants: string[] }> {
  const keys = [storage.fence, lockData(storage), storage.tx(id), storage.txLease(id), storage.txDone(id)];
  for (const name of names) {
    keys.push(storage.lock(name), storage.queue(name));
  }
  const [finished, ...grants] = (await run(redis, 'lockFinish', keys, [
    storage.alivePrefix,
    storage.inboxPrefix,
    times.leaseMs,
    times.inboxTtlMs,
    node,
    `tx:${id}`,
    ...names,
  ])) as [number, ...string[]];
  return { finished: finished === 1, grants };
}

/**
 * storageSlots-2.lua: the deployment's SPROCD_STORAGE_SLOTS, stored with `k` when it has none yet (and
 * no entries in the one-hash layout); absent means 1.
 */
export async function storageSlots(redis: RedisConnection, storage: StorageKeys, k: number): Promise<number> {
  return Number(await run(redis, 'storageSlots', [storage.slotCount, storage.data], [String(k)]));
}

/**
 * lockCancel-4.lua: `waiter` gives up its wait for `name`. Returns "dequeued" (it left the queue),
 * "released" (the lock had been granted to it: handed on) or "none" (neither queued nor holding).
 */
export async function lockCancel(
  redis: RedisConnection,
  storage: LockKeys,
  times: LockTimes,
  name: string,
  waiter: string,
): Promise<'dequeued' | 'released' | 'none'> {
  const code = await run(
    redis,
    'lockCancel',
    [storage.fence, lockData(storage), storage.lock(name), storage.queue(name)],
    [storage.alivePrefix, storage.inboxPrefix, times.leaseMs, times.inboxTtlMs, name, waiter],
  );
  return code === 1 ? 'dequeued' : code === 2 ? 'released' : 'none';
}

/**
 * lockHeartbeat-n.lua: marks `node` alive for a lease and renews each lock still holding its value.
 * Returns the positions (0-based, in `locks`) of the locks no longer held.
 */
export async function lockHeartbeat(
  redis: RedisConnection,
  storage: StorageKeys,
  leaseMs: number,
  node: string,
  locks: readonly { readonly name: string; readonly lockValue: string }[],
): Promise<number[]> {
  const lost = (await run(
    redis,
    'lockHeartbeat',
    [storage.alive(node), ...locks.map((l) => storage.lock(l.name))],
    [leaseMs, ...locks.map((l) => l.lockValue)],
  )) as number[];
  return lost.map((i) => i - 1);
}

/**
 * storageScan-1.lua: one HSCAN step over the entries hash `hash` (or a data slot's) from `cursor`: the names and sizes
 * found, and the cursor to go on from ("0" at the end).
 */
export async function storageScan(
  redis: RedisConnection,
  hash: string,
  cursor: string,
  count: number,
): Promise<{ next: string; entries: { name: string; size: number }[] }> {
  const [next, ...flat] = (await run(redis, 'storageScan', [hash], [cursor, count])) as [
    string,
    ...(string | number)[],
  ];
  const entries: { name: string; size: number }[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    entries.push({ name: String(flat[i]), size: Number(flat[i + 1]) });
  }
  return { next, entries };
}

// ---- session identity (session/index.ts) --------------------------------------------------------

/** sessionIdentity-1.lua: the session identity, created with `id` when Redis has none. */
export async function sessionIdentity(
  redis: RedisConnection,
  keys: Keys,
  id: string,
  machineName: string,
): Promise<{ id: string; createdAtMs: number; created: boolean }> {
  const [stored, createdAtMs, created] = (await run(
    redis,
    'sessionIdentity',
    [keys.session],
    [id, machineName],
  )) as [string, string, number];
  return { id: stored, createdAtMs: Number(createdAtMs), created: created === 1 };
}

// ---- executions (procedures/executions.ts) ------------------------------------------------------

/**
 * abortWaiting-8.lua: files execution `number` as failed with `failedReason` when it has not started
 * (one in the wait list stays there, in the dropped set, until a worker pops and drops it); flags it
 * when it is active. Returns what it found.
 */
export async function abortWaiting(
  redis: RedisConnection,
  keys: Keys,
  number: number,
  failedReason: string,
  now: number,
): Promise<'missing' | 'finished' | 'aborted' | 'active'> {
  const shard = keys.queues.ofNumber(number);
  const bull = bullQueueKeys(shard);
  const jobId = jobIdOf(number);
  return (await run(
    redis,
    'abortWaiting',
    [
      bull.job(jobId),
      bull.active,
      bull.paused,
      bull.delayed,
      bull.prioritized,
      bull.failed,
      bull.events,
      shard.executionIndex.dropped,
    ],
    [
      jobId,
      failedReason,
      now,
      bull.deduplicationPrefix,
      JOB_EVENTS_MAX_LEN,
      POP_SAVED_FIELDS.processedOn,
      POP_SAVED_FIELDS.processedBy,
    ],
  )) as 'missing' | 'finished' | 'aborted' | 'active';
}

/**
 * pauseExecution-5.lua: PAUSE PROCESS on execution `number`: parks it in the delayed set when it is
 * delayed or prioritized, marks it in place when it is in the wait list, marks it paused
 * (procedures/pauses.ts). Returns what it found.
 */
export async function pauseExecution(
  redis: RedisConnection,
  keys: Keys,
  number: number,
): Promise<'missing' | 'finished' | 'already' | 'parked' | 'marked' | 'active'> {
  const bull = bullQueueKeys(keys.queues.ofNumber(number));
  const jobId = jobIdOf(number);
  return (await run(
    redis,
    'pauseExecution',
    [bull.job(jobId), bull.active, bull.paused, bull.delayed, bull.prioritized],
    [
      jobId,
      PARKED_SCORE,
      PAUSE_FIELD,
      DELAYED_SCORE_FACTOR,
      PAUSE_OPTS_MEMBER,
      POP_SAVED_FIELDS.processedOn,
      POP_SAVED_FIELDS.processedBy,
    ],
  )) as 'missing' | 'finished' | 'already' | 'parked' | 'marked' | 'active';
}

/**
 * resumeWaiting-1.lua: RESUME PROCESS of execution `number` when it was paused in the wait list: takes
 * its pause away, in place. Returns the pause field it found (undefined when none): "wait" means done;
 * anything else is for the caller to undo ("queue" when a worker parked it meanwhile).
 */
export async function resumeWaiting(
  redis: RedisConnection,
  keys: Keys,
  number: number,
): Promise<string | undefined> {
  const found = (await run(
    redis,
    'resumeWaiting',
    [executionJobKey(keys, number)],
    [PAUSE_FIELD, PAUSE_OPTS_MEMBER, POP_SAVED_FIELDS.processedOn, POP_SAVED_FIELDS.processedBy],
  )) as string;
  return found === '' ? undefined : found;
}

/**
 * pauseFlags-n.lua: the pause field of each of `numbers` ("" when not paused), in one call per queue
 * shard (a call cannot span the shards' slots).
 */
export function pauseFlags(
  redis: RedisConnection,
  keys: Keys,
  numbers: readonly number[],
): Promise<string[]> {
  return keys.queues.mapByShard(
    numbers,
    (n) => n,
    (group) =>
      run(
        redis,
        'pauseFlags',
        group.map((n) => executionJobKey(keys, n)),
        [PAUSE_FIELD],
      ) as Promise<string[]>,
  );
}

/**
 * dropPopped-6.lua: undoes a worker's pop of `jobId` when it holds a finished execution (aborted
 * while waiting, or removed by retention since), and parks it when it was paused while waiting.
 * `run` when it is to run after all.
 */
export async function dropPopped(
  redis: RedisConnection,
  keys: Keys,
  jobId: string,
): Promise<'run' | 'dropped' | 'parked'> {
  const shard = keys.queues.ofNumber(numberOfJobId(jobId) ?? 0);
  const bull = bullQueueKeys(shard);
  const code = (await run(
    redis,
    'dropPopped',
    [bull.active, bull.stalled, shard.executionIndex.dropped, bull.job(jobId), bull.delayed, bull.events],
    [
      jobId,
      POP_SAVED_FIELDS.processedOn,
      POP_SAVED_FIELDS.processedBy,
      PAUSE_FIELD,
      PAUSE_OPTS_MEMBER,
      PARKED_SCORE,
      JOB_EVENTS_MAX_LEN,
    ],
  )) as number;
  return code === 0 ? 'run' : code === 1 ? 'dropped' : 'parked';
}

/**
 * executionFind-6.lua: execution `number`'s state and job hash in one step, without walking the wait
 * list; undefined when its job is gone.
 */
export async function executionFind(
  redis: RedisConnection,
  keys: Keys,
  number: number,
): Promise<
  | { state: 'completed' | 'failed' | 'delayed' | 'waiting' | 'active'; hash: Record<string, string> }
  | undefined
> {
  const bull = bullQueueKeys(keys.queues.ofNumber(number));
  const jobId = jobIdOf(number);
  const reply = (await run(
    redis,
    'executionFind',
    [bull.completed, bull.failed, bull.delayed, bull.prioritized, bull.active, bull.job(jobId)],
    [jobId],
  )) as string[];
  if (reply.length === 0) {
    return undefined;
  }
  return {
    state: reply[0] as 'completed' | 'failed' | 'delayed' | 'waiting' | 'active',
    hash: hashOfPairs(reply, 1),
  };
}

/**
 * markRetried-1.lua: notes on execution `number`'s job that execution `by` retries it. False when
 * its job is gone (nothing is written then).
 */
export async function markRetried(
  redis: RedisConnection,
  keys: Keys,
  number: number,
  by: number,
): Promise<boolean> {
  return (await run(redis, 'markRetried', [executionJobKey(keys, number)], [RETRIED_BY_FIELD, by])) === 1;
}

// ---- backups (lifecycle) ------------------------------------------------------------------------

/**
 * backupLock-1.lua: renews (for `leaseMs`) or releases the backup lock, only while it still holds
 * `value`. Returns false when it no longer does (its lease ran out).
 */
export async function backupLock(
  redis: RedisConnection,
  keys: Keys,
  op: 'renew' | 'release',
  value: string,
  leaseMs: number,
): Promise<boolean> {
  return (await run(redis, 'backupLock', [keys.backup.lock], [op, value, leaseMs])) === 1;
}

/** What {@link restoreSwap} puts back. */
export interface RestoreSwap {
  /** The hash the entries were staged in, or undefined when the backup has none (the storage empties). */
  readonly staged: string | undefined;
  /** The execution counter is raised to this when lower. */
  readonly sequenceFloor: number;
  /** The session identity hash, field by field. */
  readonly identity: Readonly<Record<string, string>>;
}

/**
 * restoreSwap-5.lua: swaps the staged entries in, writes the identity, raises the counter and breaks
 * the storage locks of the old and the restored entries, at once. Returns the restore counter;
 * rejects with a reply starting with RESTORE_STAGING_LOST when the staged hash expired first.
 */
export async function restoreSwap(redis: RedisConnection, keys: Keys, swap: RestoreSwap): Promise<number> {
  const storage = keys.storage;
  return Number(
    await run(
      redis,
      'restoreSwap',
      [
        storage.data,
        swap.staged ?? keys.backup.staged('none'),
        keys.session,
        keys.sequence,
        keys.backup.restores,
      ],
      [
        swap.staged === undefined ? '0' : '1',
        String(swap.sequenceFloor),
        storage.lock(''), // the lock key of entry `name` is this followed by `name`
        ...Object.entries(swap.identity).flat(),
      ],
    ),
  );
}

/**
 * storageSlotSwap-4.lua: a restore's swap of one data slot: `staged` (undefined: no entries for the
 * slot) replaces its entries, its versions are cleared and its floor raised to `token`.
 */
export async function storageSlotSwap(
  redis: RedisConnection,
  slot: { readonly data: string; readonly versions: string; readonly floor: string },
  staged: string,
  hasStaged: boolean,
  token: number,
): Promise<void> {
  await run(
    redis,
    'storageSlotSwap',
    [slot.data, slot.versions, staged, slot.floor],
    [hasStaged ? '1' : '0', String(token)],
  );
}

// ---- executions: numbers, indexes, rate limits (procedures/, api/limits.ts) --------------------

/** A block of execution numbers, and the restore counter when it was taken. */
export interface NumberBlock {
  readonly first: number;
  readonly last: number;
  /** The deployment's restore counter (as a string) when the block was taken. */
  readonly restores: string;
}

/**
 * numberBlock-2.lua: takes up to `size` execution numbers from the counter, never past `max`.
 * Undefined when every number up to `max` is taken.
 */
export async function numberBlock(
  redis: RedisConnection,
  keys: Keys,
  size: number,
  max: number,
): Promise<NumberBlock | undefined> {
  const [first, last, restores] = (await run(
    redis,
    'numberBlock',
    [keys.sequence, keys.backup.restores],
    [size, max],
  )) as [string, string, string];
  return first === '0' ? undefined : { first: Number(first), last: Number(last), restores };
}

/**
 * queueShards-2.lua: the deployment's stored queue shard count, storing `shards` when none is (1 for a
 * deployment that took numbers before the count was stored). See redis/shards.ts.
 */
export async function queueShards(redis: RedisConnection, keys: Keys, shards: number): Promise<number> {
  return Number(await run(redis, 'queueShards', [keys.queueShards, keys.sequence], [shards]));
}

/**
 * rateLimitAdd-1.lua: adds `n` requests of `caller` to its counter in its current window of
 * `windowMs`. Returns the requests in that window so far, these included, and the ms until it ends.
 */
export async function rateLimitAdd(
  redis: RedisConnection,
  keys: Keys,
  caller: string,
  n: number,
  windowMs: number,
): Promise<{ count: number; ttlMs: number }> {
  const [count, ttlMs] = (await run(
    redis,
    'rateLimitAdd',
    [keys.rateLimitPrefix + caller],
    [windowMs, n],
  )) as [number, number];
  return { count, ttlMs };
}

/**
 * auditAppend-1.lua: appends `entries` (JSON each) to the audit stream `key`, keeping at most `max`
 * entries. Returns each entry's stream id, in order.
 */
export async function auditAppend(
  redis: RedisConnection,
  key: string,
  max: number,
  entries: readonly string[],
): Promise<string[]> {
  return (await run(redis, 'auditAppend', [key], [max, ...entries])) as string[];
}

/** An execution BullMQ just added, as {@link executionIndex} checks and indexes it. */
export interface AddedExecution {
  readonly number: number;
  /** The UUID in its job data: tells it from another execution holding the same job id. */
  readonly id: string;
  readonly procedure: string;
  /** The process name ("" for none: not indexed by name). */
  readonly name: string;
  /** Creation time (ms): the job's timestamp, and the score in the indexes. */
  readonly createdAt: number;
  /**
   * The restore counter when its number was taken ({@link NumberBlock}); while the counter still
   * reads so, the job is known to be this execution and is not read. None: always read.
   */
  readonly restores?: string;
}

/** How the sweep of {@link executionIndex} trims the indexes. */
export interface IndexSweep {
  /** Pause between two passes over one index (ms). */
  readonly pauseMs: number;
  /** Index members looked at per call. */
  readonly batch: number;
}

/**
 * executionIndex-n.lua: for each execution, whether its job holds it (then it is indexed) or another
 * execution (then the counter is raised past its number); and a step of the index sweep. One call per
 * queue shard the executions live in, each indexing and sweeping in its own shard.
 */
export function executionIndex(
  redis: RedisConnection,
  keys: Keys,
  added: readonly AddedExecution[],
  sweep: IndexSweep,
  now: number,
): Promise<boolean[]> {
  return keys.queues.mapByShard(
    added,
    (x) => x.number,
    (group, shard) => shardIndex(redis, keys, shard, group, sweep, now),
  );
}

/**
 * executionIndex-n.lua for executions of one shard. With S > 1 the counter and the restore counter
 * live in another slot than the shard: every job is read (no restore count is trusted), and the
 * counter is raised past a number found held by a call of its own (sequenceRaise-1.lua).
 */
async function shardIndex(
  redis: RedisConnection,
  keys: Keys,
  shard: ShardKeys,
  added: readonly AddedExecution[],
  sweep: IndexSweep,
  now: number,
): Promise<boolean[]> {
  const bull = bullQueueKeys(shard);
  const index = shard.executionIndex;
  const single = keys.queues.count === 1;
  const elsewhere = `${shard.tag}:no-counter`; // never written: the script leaves the counter to us
  const k: string[] = [
    index.sweep,
    index.sweepAt,
    single ? keys.sequence : elsewhere,
    single ? keys.backup.restores : elsewhere,
  ];
  const a: (string | number)[] = [now, sweep.pauseMs, sweep.batch, bull.job('')];
  for (const x of added) {
    const byProcedure = index.procedure(x.procedure);
    k.push(bull.job(jobIdOf(x.number)), byProcedure, x.name === '' ? byProcedure : index.name(x.name));
    a.push(
      jobIdOf(x.number),
      x.id,
      x.createdAt,
      x.number,
      x.name === '' ? 0 : 1,
      single ? (x.restores ?? '') : '',
    );
  }
  const reply = (await run(redis, 'executionIndex', k, a)) as number[];
  if (!single) {
    const held = added.filter((_, i) => reply[i] !== 1).map((x) => x.number);
    if (held.length > 0) {
      await sequenceRaise(redis, keys, Math.max(...held));
    }
  }
  return reply.map((owned) => owned === 1);
}

/** sequenceRaise-1.lua: raises the execution counter to `number` unless it is past it already. */
export async function sequenceRaise(redis: RedisConnection, keys: Keys, number: number): Promise<boolean> {
  return (await run(redis, 'sequenceRaise', [keys.sequence], [number])) === 1;
}

/** What {@link executionProbe} found of one execution. */
export interface ProbedExecution {
  /** `gone`: its job was removed; `other`: not in the second index; else its BullMQ state. */
  readonly state: 'gone' | 'other' | 'completed' | 'failed' | 'delayed' | 'waiting' | 'active';
  /** Its failedReason when failed ("" otherwise). */
  readonly failedReason: string;
}

/**
 * executionProbe-n.lua: the state of each of `jobIds` (read from `index`, of queue shard `keys`), and
 * whether it is also in `also` when given; the gone ones are taken out of `index`.
 */
export async function executionProbe(
  redis: RedisConnection,
  keys: ShardKeys,
  index: string,
  also: string | undefined,
  jobIds: readonly string[],
): Promise<ProbedExecution[]> {
  const bull = bullQueueKeys(keys);
  const reply = (await run(
    redis,
    'executionProbe',
    [
      bull.completed,
      bull.failed,
      bull.delayed,
      bull.prioritized,
      bull.active,
      index,
      also ?? index,
      ...jobIds.map((id) => bull.job(id)),
    ],
    [also === undefined ? 0 : 1, ...jobIds],
  )) as string[];
  return jobIds.map((_, i) => ({
    state: reply[2 * i] as ProbedExecution['state'],
    failedReason: reply[2 * i + 1] ?? '',
  }));
}

// ---- the batched worker (redis/batched-worker.ts) ---------------------------------------------

/** A completed job for {@link finishAndTake}: its id, its lock token, its return value's JSON. */
export interface CompletedJob {
  readonly jobId: string;
  readonly token: string;
  readonly value: string;
  /**
   * Its attempts made as read when it was taken, for a job with no parent and no deduplication id,
   * taken by BullMQ 6 (its start count read); the script then trusts it while the job's lock is this
   * token's. Undefined: the script reads the job.
   */
  readonly attemptsMade?: number;
}

/** What {@link finishAndTake} files and takes with. */
export interface FinishAndTakeRequest {
  readonly completed: readonly CompletedJob[];
  /** The lock token of each job to take, in order (none: only file). */
  readonly takeTokens: readonly string[];
  readonly lockDurationMs: number;
  /** BullMQ's worker name (`processedBy`), or "". */
  readonly workerName: string;
  /** BullMQ's `keepJobs` of completed jobs: count (-1 all, 0 none), age in seconds, its limit per call. */
  readonly keep: { readonly count: number; readonly age?: number; readonly limit?: number };
  /** Whether jobs may have side keys (logs, a flow's sets) that retention deletes with them. */
  readonly sideKeys: boolean;
}

/** The reply of {@link finishAndTake}. */
export interface FinishAndTakeReply {
  /** Per completed job: 0 filed, BullMQ's moveToFinished error codes, or 1: not filed, file it with BullMQ. */
  readonly codes: number[];
  /** The taken jobs: the hash of each as the take left it, and its id. */
  readonly jobs: { hash: Record<string, string>; id: string }[];
  /**
   * 0: every job asked for was taken; 1: the queue is paused; 2: take the next one with BullMQ; 3: no
   * job waits, none prioritized or delayed (BullMQ's script would answer nothing, and no delay).
   */
  readonly state: 0 | 1 | 2 | 3;
  /** The time the call filed and took at (ms): the jobs' finishedOn and processedOn. */
  readonly at: number;
}

/** The KEYS of finishAndTake-9.lua, in its order (its header). */
export function finishAndTakeKeys(bull: BullQueueKeys): string[] {
  return [
    bull.wait,
    bull.active,
    bull.prioritized,
    bull.events,
    bull.stalled,
    bull.delayed,
    bull.meta,
    bull.marker,
    bull.completed,
  ];
}

/**
 * finishAndTake-9.lua: files completed jobs of queue `shard` and takes waiting ones in one call, as
 * BullMQ's moveToFinished and moveToActive would one by one, for the common case; the reply says which
 * jobs and which take are left for BullMQ's own scripts.
 */
export async function finishAndTake(
  redis: RedisConnection,
  bull: BullQueueKeys,
  request: FinishAndTakeRequest,
): Promise<FinishAndTakeReply> {
  const at = Date.now();
  const args: (string | number)[] = [
    bull.job(''),
    at,
    request.takeTokens.length,
    request.lockDurationMs,
    request.workerName,
    request.keep.count,
    request.keep.age ?? '',
    request.keep.limit ?? 1000,
    request.completed.length,
    request.sideKeys ? '1' : '0',
  ];
  for (const c of request.completed) {
    args.push(c.jobId, c.token, c.value, c.attemptsMade === undefined ? '' : c.attemptsMade);
  }
  args.push(...request.takeTokens);
  const [codes, flat, state] = (await run(redis, 'finishAndTake', finishAndTakeKeys(bull), args)) as [
    number[],
    (string[] | string)[],
    0 | 1 | 2 | 3,
  ];
  const jobs: { hash: Record<string, string>; id: string }[] = [];
  for (let i = 0; i < flat.length; i += 2) {
    const hash = hashOfPairs(flat[i] as string[]);
    // The script answers the hash as it was before its take wrote these (one write fewer in Redis).
    hash.processedOn = String(at);
    if (request.workerName) {
      hash.pb = request.workerName;
    }
    hash.ats = String(Number(hash.ats ?? 0) + 1);
    jobs.push({ hash, id: String(flat[i + 1]) });
  }
  return { codes, jobs, state, at };
}

// ---- signals and semaphores (procedures/signals.ts, procedures/semaphores.ts) -------------------

/** signalNew-1.lua: creates signal `id`, not signaled, living `ttlMs` unless used. */
export async function signalNew(
  redis: RedisConnection,
  keys: Keys,
  id: string,
  description: string,
  ttlMs: number,
): Promise<void> {
  await run(redis, 'signalNew', [keys.signal(id)], [description, Date.now(), ttlMs]);
}

/** What {@link signalRead} found of a signal. */
export interface SignalState {
  readonly signaled: boolean;
  /** The result JSON ('' when not signaled). */
  readonly result: string;
  readonly description: string;
}

/**
 * signalRead-1.lua: the state of signal `id` (undefined when there is none); a signal not yet
 * triggered lives `ttlMs` more.
 */
export async function signalRead(
  redis: RedisConnection,
  keys: Keys,
  id: string,
  ttlMs: number,
): Promise<SignalState | undefined> {
  const [signaled, result, description] = (await run(redis, 'signalRead', [keys.signal(id)], [ttlMs])) as [
    number,
    string?,
    string?,
  ];
  return signaled === -1
    ? undefined
    : { signaled: signaled === 1, result: result ?? '', description: description ?? '' };
}

/**
 * signalTrigger-1.lua: triggers signal `id` with `resultJson` when nobody did before, and publishes
 * the wake-up. Returns `first` (this call triggered it), `already` (an earlier trigger did: `result`
 * is its result) or `missing`.
 */
export async function signalTrigger(
  redis: RedisConnection,
  keys: Keys,
  id: string,
  resultJson: string,
  ttlMs: number,
): Promise<{ outcome: 'first' | 'already' | 'missing'; result: string }> {
  const [code, result] = (await run(
    redis,
    'signalTrigger',
    [keys.signal(id)],
    [keys.signalChannel, id, resultJson, ttlMs],
  )) as [number, string];
  return { outcome: code === 1 ? 'first' : code === 0 ? 'already' : 'missing', result };
}

/**
 * semaphoreTake-1.lua: takes semaphore `name` for `value` when free. Returns 0 when taken, else the
 * holder's remaining lease (ms).
 */
export async function semaphoreTake(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  value: string,
  leaseMs: number,
): Promise<number> {
  return Number(await run(redis, 'semaphoreTake', [keys.semaphore(name)], [value, leaseMs]));
}

/** semaphoreClear-1.lua: frees semaphore `name` if `value` holds it, and tells waiters; false otherwise. */
export async function semaphoreClear(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  value: string,
): Promise<boolean> {
  return (
    (await run(redis, 'semaphoreClear', [keys.semaphore(name)], [value, keys.semaphoreChannel, name])) === 1
  );
}

/**
 * semaphoreRenew-n.lua: renews each semaphore still holding its value for `leaseMs`. Returns the
 * positions (0-based, in `held`) of those no longer held.
 */
export async function semaphoreRenew(
  redis: RedisConnection,
  keys: Keys,
  leaseMs: number,
  held: readonly { readonly name: string; readonly value: string }[],
): Promise<number[]> {
  const lost = (await run(
    redis,
    'semaphoreRenew',
    held.map((h) => keys.semaphore(h.name)),
    [leaseMs, ...held.map((h) => h.value)],
  )) as number[];
  return lost.map((i) => i - 1);
}

// ---- workers (procedures/workers/) ----------------------------------------------------------------

/** The keys every worker script takes, in their one order. */
function workerKeys(keys: Keys, name: string): string[] {
  const w = keys.workers;
  return [w.owner(name), w.state(name), w.mailbox(name), w.index];
}

/** A message a worker script handed its owner to run. */
export interface WorkerTake {
  /** -1: the token no longer owns the worker; -2: the worker ended (killed); 0: nothing; else the attempt. */
  readonly code: number;
  /** The message's JSON, when there is one to run. */
  readonly message?: string;
}

function workerTake(reply: unknown): WorkerTake {
  const [code, message] = reply as [number, string?];
  return message === undefined ? { code } : { code, message };
}

/** workerCall-4.lua: queues `messageJson` for worker `name` (creating it); answers its pending count. */
export async function workerCall(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  messageJson: string,
): Promise<number> {
  const w = keys.workers;
  return Number(
    await run(
      redis,
      'workerCall',
      [w.state(name), w.mailbox(name), w.index, w.owner(name)],
      [name, messageJson, Date.now(), w.channel],
    ),
  );
}

/** workerNext-3.lua: the message the owner holding `token` runs next (its current one again, raised). */
export async function workerNext(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  token: string,
): Promise<WorkerTake> {
  return workerTake(await run(redis, 'workerNext', workerKeys(keys, name).slice(0, 3), [token, Date.now()]));
}

/** workerDone-4.lua: the owner's current message is done (`failed` or not); takes the next when `next`. */
export async function workerDone(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  token: string,
  outcome: { failed: boolean; next: boolean },
): Promise<WorkerTake> {
  return workerTake(
    await run(redis, 'workerDone', workerKeys(keys, name), [
      token,
      Date.now(),
      outcome.next ? 1 : 0,
      outcome.failed ? 1 : 0,
      name,
      keys.workers.channel,
    ]),
  );
}

/**
 * workerKill-4.lua: KILL WORKER. `missing`: no such worker; `ending`: it ends after its current
 * message; `ended`: it ended now. `dropped` counts the pending messages dropped.
 */
export async function workerKill(
  redis: RedisConnection,
  keys: Keys,
  name: string,
): Promise<{ outcome: 'missing' | 'ending' | 'ended'; dropped: number }> {
  const [code, dropped] = (await run(redis, 'workerKill', workerKeys(keys, name), [
    name,
    keys.workers.channel,
  ])) as [number, number?];
  return { outcome: code === 0 ? 'missing' : code === 1 ? 'ending' : 'ended', dropped: dropped ?? 0 };
}

/** workerClaim-4.lua: takes worker `name` for `token` when nobody owns it and it has work; true when taken. */
export async function workerClaim(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  token: string,
  leaseMs: number,
): Promise<boolean> {
  return (await run(redis, 'workerClaim', workerKeys(keys, name), [name, token, leaseMs, Date.now()])) === 1;
}

/** workerRelease-4.lua: gives worker `name` back (nudging the others when it has work); false when not owned. */
export async function workerRelease(
  redis: RedisConnection,
  keys: Keys,
  name: string,
  token: string,
): Promise<boolean> {
  return (
    (await run(redis, 'workerRelease', workerKeys(keys, name), [name, token, keys.workers.channel])) === 1
  );
}

/**
 * workerRenew-n.lua: renews each owned worker's lease. One code per worker, in order: `lost`, `held`,
 * or `pending` (held, with messages waiting).
 */
export async function workerRenew(
  redis: RedisConnection,
  keys: Keys,
  leaseMs: number,
  owned: readonly { readonly name: string; readonly token: string }[],
): Promise<('lost' | 'held' | 'pending')[]> {
  const w = keys.workers;
  const codes = (await run(
    redis,
    'workerRenew',
    [w.index, ...owned.flatMap((o) => [w.owner(o.name), w.mailbox(o.name)])],
    [leaseMs, Date.now(), ...owned.flatMap((o) => [o.name, o.token])],
  )) as number[];
  return codes.map((c) => (c === 0 ? 'lost' : c === 2 ? 'pending' : 'held'));
}
