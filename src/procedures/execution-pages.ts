/**
 * Listing executions page by page, straight from BullMQ's own lists and sorted sets (no index of
 * ours, so queuing an execution costs nothing extra): first the active ones (last started first), then
 * the waiting ones (newest first, then the prioritized ones in the order they will run), the delayed
 * ones (soonest due first), and the finished ones (last finished first). A state filter reads only its
 * own list or set.
 *
 * Filters on the procedure, the process name and the creation time are checked per execution, reading
 * a few small fields of each in one round trip per chunk; a page is made of at most
 * {@link MAX_EXAMINED} executions looked at, so a rare match on a large queue answers quickly with
 * fewer items and a cursor to go on from, rather than scanning everything at once.
 *
 * The file is long because each segment is paged two ways behind one cursor: from the one queue of a
 * deployment with one shard (the calls of before), and merged newest first across queue shards
 * (./shard-merge.ts).
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { ValidationError } from '../errors.js';
import { bullQueueKeys, type BullQueueKeys } from '../redis/bullmq-internals.js';
import { numberOfJobId, type Keys } from '../redis/keys.js';
import type { ExecutionState, ExecutionView } from '../types.js';
import { decodeFailure } from './failure.js';
import { ShardMerge, type MergeEntry } from './shard-merge.js';

/** The view of job `jobId` found in BullMQ state `state`, or undefined when it is gone (executions.ts). */
export type ViewOfJob = (jobId: string, state: string, number: number) => Promise<ExecutionView | undefined>;

/** What a page asks for. */
export interface PageQuery {
  state?: ExecutionState;
  procedure?: string;
  /** The process name. */
  name?: string;
  /** Only the executions this one started with executeOnServer. */
  parent?: number;
  /** Created at or after this (epoch ms, or an ISO time). */
  from?: number | string;
  /** Created at or before this. */
  to?: number | string;
  /** From the previous page's `nextCursor`, with the same filters. */
  cursor?: string;
  /** @defaultValue 50 */
  limit?: number;
}

/** One page. */
export interface ExecutionPage {
  items: ExecutionView[];
  /** Where the next page starts; absent on the last page. */
  nextCursor?: string;
}

/** Most executions one page looks at. */
export const MAX_EXAMINED = 2000;
/** Executions read per round trip. */
const CHUNK = 500;

type SegmentName = 'active' | 'wait' | 'prioritized' | 'delayed' | 'finished' | 'completed' | 'failed';

/**
 * Where a page stopped. With one queue shard: the segment `s`, and the offset `o` (lists) or the last
 * score `t` and id `m` (finished) in it. With S > 1 shards: the segment `s`, and in `k` each shard's
 * position in it, index = shard: `{ o }` or `{ t, m }` as above, `{}` at its start, null when it has
 * nothing left in the segment (`k` absent: every shard at its start). The cursor is this as JSON, in
 * base64url.
 */
interface Cursor {
  s: number;
  o?: number;
  t?: number;
  m?: string;
  k?: (ShardAt | null)[];
}

/** A shard's position in a segment (S > 1). */
type ShardAt = Pick<Cursor, 'o' | 't' | 'm'>;

function segmentsOf(state: ExecutionState | undefined): SegmentName[] {
  switch (state) {
    case undefined:
      return ['active', 'wait', 'prioritized', 'delayed', 'finished'];
    case 'waiting':
      return ['wait', 'prioritized'];
    case 'aborted':
      return ['failed'];
    default:
      return [state];
  }
}

/** The state BullMQ gives a job found in `segment`. */
function bullStateOf(segment: SegmentName, finishedIn: 'completed' | 'failed' | undefined): string {
  switch (segment) {
    case 'active':
    case 'delayed':
    case 'completed':
    case 'failed':
      return segment;
    case 'finished':
      return finishedIn ?? 'completed';
    default:
      return 'waiting';
  }
}

/** A time bound of the query as epoch ms. */
export function parseTimeBound(value: number | string | undefined, field: string): number | undefined {
  if (value === undefined) {
    return undefined;
  }
  const ms = typeof value === 'number' || /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) {
    throw new ValidationError(
      `Bad query: ${field}: an ISO time or epoch milliseconds; got ${JSON.stringify(value)}.`,
    );
  }
  return ms;
}

function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(raw: string | undefined): Cursor {
  if (raw === undefined || raw === '') {
    return { s: 0 };
  }
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as Cursor;
    if (Number.isInteger(c.s) && c.s >= 0 && (c.k === undefined || Array.isArray(c.k))) {
      return c;
    }
  } catch {
    // fall through
  }
  throw new ValidationError('Bad query: cursor: pass the nextCursor of the previous page as it came.');
}

/** A candidate from a segment, with what moves the cursor past it. */
interface Candidate {
  jobId: string;
  next: Cursor;
  finishedIn?: 'completed' | 'failed';
  /** Finish time (finished segments): no execution after it was created later. Sorted set score (S > 1). */
  score?: number;
}

/** Reads one segment from a cursor, a chunk at a time. */
async function readChunk(
  redis: RedisConnection,
  bull: BullQueueKeys,
  segment: SegmentName,
  index: number,
  at: Cursor,
  withScores = false,
): Promise<{ candidates: Candidate[]; done: boolean }> {
  const offset = at.s === index ? (at.o ?? 0) : 0;
  if (segment === 'active' || segment === 'wait') {
    const ids = await redis.lrange(bull[segment], offset, offset + CHUNK - 1);
    return {
      candidates: ids.map((jobId, i) => ({ jobId, next: { s: index, o: offset + i + 1 } })),
      done: ids.length < CHUNK,
    };
  }
  if ((segment === 'prioritized' || segment === 'delayed') && withScores) {
    const flat = await redis.zrange(bull[segment], offset, offset + CHUNK - 1, 'WITHSCORES');
    const candidates: Candidate[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const n = candidates.length;
      candidates.push({
        jobId: flat[i] as string,
        score: Number(flat[i + 1]),
        next: { s: index, o: offset + n + 1 },
      });
    }
    return { candidates, done: candidates.length < CHUNK };
  }
  if (segment === 'prioritized' || segment === 'delayed') {
    const ids = await redis.zrange(bull[segment], offset, offset + CHUNK - 1);
    return {
      candidates: ids.map((jobId, i) => ({ jobId, next: { s: index, o: offset + i + 1 } })),
      done: ids.length < CHUNK,
    };
  }
  // Finished: newest finish first, across completed and failed; ties in reverse id order, as Redis gives them.
  const sets: ('completed' | 'failed')[] = segment === 'finished' ? ['completed', 'failed'] : [segment];
  const after = at.s === index && at.t !== undefined ? { t: at.t, m: at.m ?? '' } : undefined;
  const lists = await Promise.all(
    sets.map(async (set) => {
      const flat = await redis.zrevrangebyscore(
        bull[set],
        after ? after.t : '+inf',
        '-inf',
        'WITHSCORES',
        'LIMIT',
        0,
        CHUNK + 1,
      );
      const rows: { jobId: string; score: number; set: 'completed' | 'failed' }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const jobId = flat[i] as string;
        const score = Number(flat[i + 1]);
        if (!after || score < after.t || (score === after.t && jobId < after.m)) {
          rows.push({ jobId, score, set });
        }
      }
      return { rows, full: flat.length / 2 === CHUNK + 1 };
    }),
  );
  const merged = lists
    .flatMap((l) => l.rows)
    .sort((a, b) => b.score - a.score || (a.jobId < b.jobId ? 1 : a.jobId > b.jobId ? -1 : 0))
    .slice(0, CHUNK);
  return {
    candidates: merged.map((r) => ({
      jobId: r.jobId,
      finishedIn: r.set,
      score: r.score,
      next: { s: index, t: r.score, m: r.jobId },
    })),
    done: merged.length < CHUNK && !lists.some((l) => l.full),
  };
}

/** The page of executions `query` asks for. */
export async function listPage(
  redis: RedisConnection,
  keys: Keys,
  view: ViewOfJob,
  query: PageQuery,
): Promise<ExecutionPage> {
  const limit = query.limit ?? 50;
  const from = parseTimeBound(query.from, 'from');
  const to = parseTimeBound(query.to, 'to');
  const segments = segmentsOf(query.state);
  if (keys.queues.count > 1) {
    return listShardedPage(redis, keys, view, query, { limit, from, to, segments });
  }
  const bull = bullQueueKeys(keys);
  let cursor = decodeCursor(query.cursor);
  if (cursor.k !== undefined) {
    throw new ValidationError('Bad query: cursor: it was made with another number of queue shards.');
  }
  const items: ExecutionView[] = [];
  const seen = new Set<number>();
  let examined = 0;
  while (cursor.s < segments.length) {
    const segment = segments[cursor.s] as SegmentName;
    const { candidates, done } = await readChunk(redis, bull, segment, cursor.s, cursor);
    // Finished ones end before `from`: none created later than their end is left in this segment.
    const usable =
      from === undefined ? candidates : candidates.filter((c) => c.score === undefined || c.score >= from);
    const segmentEnds = done || usable.length < candidates.length;
    const passing = await pick(redis, bull, usable, query, from, to);
    // Only as many as the page still needs are read whole (one round trip: the reads go out together).
    const wanted = passing.slice(0, limit - items.length);
    const views = new Map<number, ExecutionView | undefined>();
    await Promise.all(
      wanted.map(async ({ i }) => {
        const c = usable[i] as Candidate;
        const number = numberOfJobId(c.jobId) as number;
        views.set(i, await view(c.jobId, bullStateOf(segment, c.finishedIn), number));
      }),
    );
    for (let i = 0; i < usable.length; i++) {
      const c = usable[i] as Candidate;
      examined++;
      cursor = c.next;
      const shown = views.get(i);
      if (shown && !seen.has(shown.number)) {
        seen.add(shown.number);
        items.push(shown);
        if (items.length === limit) {
          const more = i < usable.length - 1 || !segmentEnds || cursor.s < segments.length - 1;
          return more ? { items, nextCursor: encodeCursor(cursor) } : { items };
        }
      }
    }
    if (segmentEnds) {
      cursor = { s: cursor.s + 1 };
    }
    if (examined >= MAX_EXAMINED && cursor.s < segments.length) {
      return { items, nextCursor: encodeCursor(cursor) };
    }
  }
  return { items };
}

/**
 * The indexes of the candidates that pass the filters, with their creation times, read in one round
 * trip of small fields.
 */
async function pick(
  redis: RedisConnection,
  bull: BullQueueKeys,
  candidates: Candidate[],
  query: PageQuery,
  from: number | undefined,
  to: number | undefined,
): Promise<{ i: number; created: number }[]> {
  if (candidates.length === 0) {
    return [];
  }
  const wantData = query.name !== undefined || query.parent !== undefined;
  const probe = redis.pipeline();
  for (const c of candidates) {
    probe.hmget(
      bull.job(c.jobId),
      'name',
      'timestamp',
      'failedReason',
      'finishedOn',
      ...(wantData ? ['data'] : []),
    );
  }
  const probed = (await probe.exec()) ?? [];
  const passing: { i: number; created: number }[] = [];
  candidates.forEach((c, i) => {
    const [err, value] = probed[i] ?? [];
    const [name, timestamp, failedReason, finishedOn, data] = err
      ? []
      : ((value as (string | null)[] | undefined) ?? []);
    if (name === null || name === undefined || numberOfJobId(c.jobId) === undefined) {
      return; // gone meanwhile, or not an execution
    }
    if (finishedOn !== null && finishedOn !== undefined && c.finishedIn === undefined) {
      return; // aborted while waiting, still in the wait list (abortWaiting-8.lua): listed as finished
    }
    const created = Number(timestamp);
    if (
      (query.procedure !== undefined && name !== query.procedure) ||
      (from !== undefined && created < from)
    ) {
      return;
    }
    if (to !== undefined && created > to) {
      return;
    }
    if (query.state === 'aborted' || query.state === 'failed') {
      const aborted = decodeFailure(failedReason ?? undefined)?.code === 'ABORTED';
      if (aborted !== (query.state === 'aborted')) {
        return;
      }
    }
    if (wantData) {
      const fields = dataOf(data);
      if (
        (query.name !== undefined && fields?.name !== query.name) ||
        (query.parent !== undefined && fields?.parent !== query.parent)
      ) {
        return;
      }
    }
    passing.push({ i, created });
  });
  return passing;
}

function dataOf(data: string | null | undefined): { name?: string; parent?: number } | undefined {
  try {
    return (JSON.parse(data ?? 'null') as { name?: string; parent?: number } | null) ?? undefined;
  } catch {
    return undefined;
  }
}

/** What listShardedPage needs of the query, parsed. */
interface ParsedQuery {
  limit: number;
  from: number | undefined;
  to: number | undefined;
  segments: SegmentName[];
}

/** An execution a sharded page may show, and the BullMQ state it was found in. */
interface Found {
  jobId: string;
  number: number;
  state: string;
}

/**
 * The page of `query` over S > 1 shards: each segment is the merge of the shards' (./shard-merge.ts).
 * The merge key is the finish time for the finished segments and the sorted set's score (due time,
 * run order) for the delayed and prioritized ones, smaller first, as in one shard; for the active and
 * waiting lists, whose order is their shard's, it is the creation time then the number, newest first.
 */
async function listShardedPage(
  redis: RedisConnection,
  keys: Keys,
  view: ViewOfJob,
  query: PageQuery,
  { limit, from, to, segments }: ParsedQuery,
): Promise<ExecutionPage> {
  const bulls = keys.queues.all.map((shard) => bullQueueKeys(shard));
  const cursor = decodeCursor(query.cursor);
  if (cursor.k !== undefined && cursor.k.length !== bulls.length) {
    throw new ValidationError('Bad query: cursor: it was made with another number of queue shards.');
  }
  let s = cursor.s;
  let start: (ShardAt | null)[] = cursor.k ?? bulls.map(() => ({}));
  const items: ExecutionView[] = [];
  const seen = new Set<number>();
  let examined = 0;
  while (s < segments.length) {
    const segment = segments[s] as SegmentName;
    const index = s;
    const merge = new ShardMerge<ShardAt, Found>(
      (shard, at) =>
        readShard(redis, bulls[shard] as BullQueueKeys, segment, index, at ?? {}, query, from, to),
      start,
    );
    while (items.length < limit && !merge.exhausted) {
      const found = await merge.take(limit - items.length, MAX_EXAMINED - examined);
      const views = await Promise.all(found.map((f) => view(f.jobId, f.state, f.number)));
      for (const shown of views) {
        if (shown && !seen.has(shown.number)) {
          seen.add(shown.number);
          items.push(shown);
        }
      }
      if (examined + merge.examined >= MAX_EXAMINED) {
        break;
      }
    }
    examined += merge.examined;
    const positions = merge.positions();
    const ended = merge.exhausted;
    if (!ended && (items.length === limit || examined >= MAX_EXAMINED)) {
      return { items, nextCursor: encodeCursor({ s, k: positions.map((p) => (p === undefined ? {} : p)) }) };
    }
    s++;
    start = bulls.map(() => ({}));
    if (s < segments.length && (items.length === limit || examined >= MAX_EXAMINED)) {
      return { items, nextCursor: encodeCursor({ s }) };
    }
  }
  return { items };
}

/** The next chunk of `segment` in one shard, as merge entries. */
async function readShard(
  redis: RedisConnection,
  bull: BullQueueKeys,
  segment: SegmentName,
  index: number,
  at: ShardAt,
  query: PageQuery,
  from: number | undefined,
  to: number | undefined,
): Promise<{ entries: MergeEntry<ShardAt, Found>[]; done: boolean }> {
  const { candidates, done } = await readChunk(redis, bull, segment, index, { s: index, ...at }, true);
  const finished = segment === 'finished' || segment === 'completed' || segment === 'failed';
  // Finished ones end before `from`: none created later than their end is left in this shard's segment.
  const usable =
    from === undefined || !finished
      ? candidates
      : candidates.filter((c) => c.score === undefined || c.score >= from);
  const created = new Map(
    (await pick(redis, bull, usable, query, from, to)).map(({ i, created: t }) => [i, t]),
  );
  const entries = usable.map((c, i): MergeEntry<ShardAt, Found> => {
    const number = numberOfJobId(c.jobId) as number;
    const t = created.get(i);
    const score = c.score ?? 0;
    const key =
      t === undefined
        ? undefined
        : finished
          ? [score, number]
          : segment === 'delayed' || segment === 'prioritized'
            ? [-score, -number]
            : [t, number];
    const { o, t: last, m } = c.next;
    return {
      key,
      item: { jobId: c.jobId, number, state: bullStateOf(segment, c.finishedIn) },
      after: o !== undefined ? { o } : { t: last, m },
    };
  });
  return { entries, done: done || usable.length < candidates.length };
}
