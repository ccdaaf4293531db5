/**
 * Per-procedure counts for GET /v1/procedures, read without touching a job: the executions that ended
 * in the last hour come from the statistics buckets (./series.ts, the same ones the failure rate
 * reads), and the ones waiting, active or delayed now from BullMQ's sets of unfinished jobs
 * intersected with the per-procedure index (src/procedures/execution-index.ts). Those intersections
 * cost up to the size of BullMQ's set per procedure, so a state is counted only while the cluster
 * holds at most {@link LIVE_COUNT_CAP} executions in it; past that its count is left out.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { bullQueueKeys } from '../redis/bullmq-internals.js';
import type { Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';
import { failureRateOf, readProcedureOutcomes, type ProcedureOutcomes } from './series.js';

/** The minutes the finished outcomes of GET /v1/procedures look back. */
export const COUNTS_WINDOW_MINUTES = 60;

/** Most executions a state may hold in the cluster for its per-procedure count to be read. */
export const LIVE_COUNT_CAP = 1000;

/** The unfinished states counted per procedure. */
export type LiveState = 'waiting' | 'active' | 'delayed';

/** One procedure's counts as GET /v1/procedures shows them. */
export interface ProcedureCounts extends ProcedureOutcomes, Partial<Record<LiveState, number>> {
  /** The minutes `completed`, `failed` and `aborted` look back. */
  windowMinutes: number;
}

/** The counts of a procedure: `outcomes` over the window, with what `live` knows of it now. */
export function countsOf(
  outcomes: ProcedureOutcomes | undefined,
  live: Partial<Record<LiveState, number>> | undefined,
): ProcedureCounts {
  return {
    windowMinutes: COUNTS_WINDOW_MINUTES,
    completed: outcomes?.completed ?? 0,
    failed: outcomes?.failed ?? 0,
    aborted: outcomes?.aborted ?? 0,
    ...live,
  };
}

/** What GET /v1/procedures shows of a procedure's executions. */
export interface ProcedureFigures {
  counts: ProcedureCounts;
  /** failed / (completed + failed) over the window; null when none ended. */
  failureRate: number | null;
}

/** Per procedure, its counts and failure rate (two statistics reads and two round trips for the live counts). */
export async function readProcedureFigures(
  redis: RedisConnection,
  keys: Keys,
  procedures: readonly string[],
): Promise<Map<string, ProcedureFigures>> {
  const [outcomes, live] = await Promise.all([
    readProcedureOutcomes(redis, keys.stats, COUNTS_WINDOW_MINUTES),
    readLiveCounts(redis, keys, procedures),
  ]);
  return new Map(
    procedures.map((name) => {
      const ended = outcomes.get(name);
      return [name, { counts: countsOf(ended, live.get(name)), failureRate: failureRateOf(ended) }];
    }),
  );
}

/** Where a state's executions are in BullMQ: lists (ids read) and sorted sets (intersected in Redis). */
const PARTS: Record<
  LiveState,
  { lists: ('active' | 'wait' | 'paused')[]; zsets: ('prioritized' | 'delayed')[] }
> = {
  waiting: { lists: ['wait', 'paused'], zsets: ['prioritized'] },
  active: { lists: ['active'], zsets: [] },
  delayed: { lists: [], zsets: ['delayed'] },
};

/** What one shard holds of the unfinished states: the ids in its lists, the sizes of its sorted sets. */
interface ShardParts {
  shard: ShardKeys;
  ids: Map<'active' | 'wait' | 'paused', string[]>;
  sizes: Map<'prioritized' | 'delayed', number>;
}

const LISTS = ['active', 'wait', 'paused'] as const;
const ZSETS = ['prioritized', 'delayed'] as const;

/** The first round trip of one shard: its lists' ids (up to the cap) and its sorted sets' sizes. */
async function readShardParts(redis: RedisConnection, shard: ShardKeys): Promise<ShardParts> {
  const bull = bullQueueKeys(shard);
  const first = redis.pipeline();
  for (const list of LISTS) {
    first.lrange(bull[list], 0, LIVE_COUNT_CAP);
  }
  for (const zset of ZSETS) {
    first.zcard(bull[zset]);
  }
  // Aborted while waiting, still in the wait list until a worker drops them: not waiting.
  first.smembers(shard.executionIndex.dropped);
  const replies = (await first.exec()) ?? [];
  const reply = (i: number): unknown => {
    const [err, value] = replies[i] ?? [];
    if (err) {
      throw err;
    }
    return value;
  };
  const dropped = new Set((reply(LISTS.length + ZSETS.length) as string[] | null) ?? []);
  return {
    shard,
    ids: new Map(
      LISTS.map((list, i) => [list, ((reply(i) as string[] | null) ?? []).filter((id) => !dropped.has(id))]),
    ),
    sizes: new Map(ZSETS.map((zset, i) => [zset, Number(reply(LISTS.length + i) ?? 0)])),
  };
}

/** How many executions of the cluster a state holds, over every shard. */
function sizeOf(state: LiveState, parts: readonly ShardParts[]): number {
  const { lists: l, zsets: z } = PARTS[state];
  return parts.reduce(
    (total, { ids, sizes }) =>
      total +
      l.reduce((n, p) => n + (ids.get(p)?.length ?? 0), 0) +
      z.reduce((n, p) => n + (sizes.get(p) ?? 0), 0),
    0,
  );
}

/**
 * Per procedure, how many of its executions are waiting, active or delayed now (two round trips, each
 * one call per queue shard, the shards in parallel; with S > 1 the counts are the sums of the shards',
 * which are not read at one instant, so an execution moving meanwhile may be missed or counted twice).
 * A state holding more than {@link LIVE_COUNT_CAP} executions in the cluster is not in the answer.
 */
export async function readLiveCounts(
  redis: RedisConnection,
  keys: Keys,
  procedures: readonly string[],
): Promise<Map<string, Partial<Record<LiveState, number>>>> {
  const parts = await Promise.all(keys.queues.all.map((shard) => readShardParts(redis, shard)));
  const counted = (Object.keys(PARTS) as LiveState[]).filter(
    (state) => sizeOf(state, parts) <= LIVE_COUNT_CAP,
  );
  const out = new Map<string, Partial<Record<LiveState, number>>>();
  for (const procedure of procedures) {
    out.set(procedure, Object.fromEntries(counted.map((state) => [state, 0])));
  }
  await Promise.all(parts.map((part) => addShardCounts(redis, part, procedures, counted, out)));
  return out;
}

/** The second round trip of one shard: adds its executions of each procedure to `out`. */
async function addShardCounts(
  redis: RedisConnection,
  { shard, ids, sizes }: ShardParts,
  procedures: readonly string[],
  counted: readonly LiveState[],
  out: Map<string, Partial<Record<LiveState, number>>>,
): Promise<void> {
  const bull = bullQueueKeys(shard);
  // One command per procedure and part that holds something; each answer adds to its state's count.
  const second = redis.pipeline();
  const adds: { procedure: string; state: LiveState; list: boolean }[] = [];
  for (const procedure of procedures) {
    const index = shard.executionIndex.procedure(procedure);
    for (const state of counted) {
      for (const list of PARTS[state].lists) {
        const members = ids.get(list) ?? [];
        if (members.length > 0) {
          second.zmscore(index, ...members);
          adds.push({ procedure, state, list: true });
        }
      }
      for (const zset of PARTS[state].zsets) {
        if ((sizes.get(zset) ?? 0) > 0) {
          second.zintercard(2, index, bull[zset]);
          adds.push({ procedure, state, list: false });
        }
      }
    }
  }
  const answers = adds.length > 0 ? ((await second.exec()) ?? []) : [];
  adds.forEach(({ procedure, state, list }, i) => {
    const [err, value] = answers[i] ?? [];
    if (err) {
      throw err;
    }
    const n = list
      ? ((value as (string | null)[] | null) ?? []).filter((s) => s !== null).length
      : Number(value ?? 0);
    const counts = out.get(procedure);
    if (counts) {
      counts[state] = (counts[state] ?? 0) + n;
    }
  });
}
