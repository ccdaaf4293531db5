/**
 * GET /v1/executions filtered by procedure or process name, read from the indexes
 * (./execution-index.ts) instead of scanning BullMQ's lists: newest created first, the creation-time
 * bounds (`from`, `to`) as the index's score range, the state of each execution read from BullMQ's
 * sets by one script per chunk (executionProbe-n.lua) without reading the job, and only the
 * executions a page shows read whole. With both filters the smaller index is read and the other
 * checked per execution. Like the unfiltered listing (./execution-pages.ts), a page looks at
 * {@link MAX_EXAMINED} executions at most and then answers with a cursor to go on from.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { ValidationError } from '../errors.js';
import { jobIdOf, numberOfJobId, type Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';
import { executionProbe, type ProbedExecution } from '../redis/scripts.js';
import type { ExecutionState, ExecutionView } from '../types.js';
import {
  MAX_EXAMINED,
  parseTimeBound,
  type ExecutionPage,
  type PageQuery,
  type ViewOfJob,
} from './execution-pages.js';
import { decodeFailure } from './failure.js';
import { ShardMerge, type MergeEntry } from './shard-merge.js';

/** Index members read per round trip. */
const CHUNK = 250;

/**
 * Where a page stopped: the index read (`p` procedure, `n` name), the last score `t`, how many at it
 * were passed `o`. With S > 1 queue shards, `t` and `o` are absent and `k` holds each shard's `[t, o]`
 * in its own index, index = shard (`[]`: at its start, null: nothing left). As JSON, in base64url.
 */
interface IndexCursor {
  i: 'p' | 'n';
  t?: number;
  o?: number;
  k?: ([number, number] | [] | null)[];
}

/** Whether `query` is served from the indexes: a procedure, or a process name other than "". */
export function usesIndex(query: PageQuery): boolean {
  return query.name !== '' && (query.procedure !== undefined || query.name !== undefined);
}

function encodeCursor(cursor: IndexCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

function decodeCursor(raw: string | undefined): IndexCursor | undefined {
  if (raw === undefined || raw === '') {
    return undefined;
  }
  try {
    const c = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as IndexCursor;
    if (
      (c.i === 'p' || c.i === 'n') &&
      (c.k === undefined
        ? Number.isFinite(c.t) && Number.isInteger(c.o) && (c.o as number) >= 0
        : Array.isArray(c.k) && c.k.every(validAt))
    ) {
      return c;
    }
  } catch {
    // fall through
  }
  throw new ValidationError('Bad query: cursor: pass the nextCursor of the previous page as it came.');
}

function validAt(at: unknown): boolean {
  return (
    at === null ||
    (Array.isArray(at) &&
      (at.length === 0 ||
        (at.length === 2 && Number.isFinite(at[0]) && Number.isInteger(at[1]) && (at[1] as number) >= 0)))
  );
}

/** Whether a probed execution is in the state the query asks for. */
function inState(probed: ProbedExecution, state: ExecutionState | undefined): boolean {
  if (probed.state === 'gone' || probed.state === 'other') {
    return false;
  }
  if (state === undefined) {
    return true;
  }
  if (probed.state === 'failed') {
    const aborted = decodeFailure(probed.failedReason || undefined)?.code === 'ABORTED';
    return state === (aborted ? 'aborted' : 'failed');
  }
  return probed.state === state;
}

/** One index member: an execution's job id and its creation time (ms). */
interface IndexRow {
  jobId: string;
  score: number;
}

/**
 * Up to {@link CHUNK} members of index `key` of `shard`, newest first, from score `top` down to `from`
 * and past the first `passed` at `top`, each probed (executionProbe-n.lua; `also`: the other filter's
 * index). No members, no probe.
 */
async function readChunk(
  redis: RedisConnection,
  shard: ShardKeys,
  key: string,
  also: string | undefined,
  { top, passed, from }: { top: number; passed: number; from: number | undefined },
): Promise<{ rows: IndexRow[]; probed: ProbedExecution[] }> {
  const flat = await redis.zrevrangebyscore(
    key,
    top === Infinity ? '+inf' : top,
    from ?? '-inf',
    'WITHSCORES',
    'LIMIT',
    passed,
    CHUNK,
  );
  const rows: IndexRow[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    rows.push({ jobId: flat[i] as string, score: Number(flat[i + 1]) });
  }
  if (rows.length === 0) {
    return { rows, probed: [] };
  }
  const probed = await executionProbe(
    redis,
    shard,
    key,
    also,
    rows.map((r) => r.jobId),
  );
  return { rows, probed };
}

/** The page of executions `query` (with a procedure or a process name) asks for. */
export async function listIndexedPage(
  redis: RedisConnection,
  keys: Keys,
  view: ViewOfJob,
  query: PageQuery,
): Promise<ExecutionPage> {
  const limit = query.limit ?? 50;
  const from = parseTimeBound(query.from, 'from');
  const to = parseTimeBound(query.to, 'to');
  if (keys.queues.count > 1) {
    return listShardedIndexedPage(redis, keys, view, query, { limit, from, to });
  }
  const shard = keys.queues.all[0] as ShardKeys;
  const index = shard.executionIndex;
  const byProcedure = query.procedure === undefined ? undefined : index.procedure(query.procedure);
  const byName = query.name === undefined ? undefined : index.name(query.name);
  const start = decodeCursor(query.cursor);
  let read: 'p' | 'n' = byProcedure ? 'p' : 'n';
  if (start) {
    read = start.i;
  } else if (byProcedure && byName) {
    const [procedures, names] = await Promise.all([redis.zcard(byProcedure), redis.zcard(byName)]);
    read = names < procedures ? 'n' : 'p';
  }
  const key = (read === 'p' ? byProcedure : byName) ?? '';
  const also = read === 'p' ? byName : byProcedure;
  if (key === '') {
    throw new ValidationError('Bad query: cursor: it belongs to other filters.');
  }
  if (start?.k !== undefined) {
    throw new ValidationError('Bad query: cursor: it was made with another number of queue shards.');
  }
  let top = start?.t ?? to ?? Infinity;
  let passed = start?.o ?? 0;
  const items: ExecutionView[] = [];
  let examined = 0;
  chunks: for (;;) {
    const { rows, probed } = await readChunk(redis, shard, key, also, { top, passed, from });
    if (rows.length === 0) {
      return { items };
    }
    const passing = rows
      .map((row, i) => ({ row, probed: probed[i] as ProbedExecution, number: numberOfJobId(row.jobId) }))
      .filter((c) => c.number !== undefined && inState(c.probed, query.state));
    const wanted = new Set(passing.map((c) => c.row.jobId));
    // Only as many as the page still needs are read whole, together.
    const shown = new Map<string, ExecutionView | undefined>();
    await Promise.all(
      passing.slice(0, limit - items.length).map(async (c) => {
        const number = c.number as number;
        shown.set(c.row.jobId, await view(jobIdOf(number), c.probed.state, number));
      }),
    );
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i] as IndexRow;
      if (!shown.has(row.jobId) && wanted.has(row.jobId)) {
        // One read whole was gone by then, so the page needs this one too: read on from here.
        continue chunks;
      }
      examined++;
      // The gone ones left the index in the probe: they hold no place in it any more.
      if ((probed[i] as ProbedExecution).state !== 'gone') {
        passed = row.score === top ? passed + 1 : 1;
        top = row.score;
      }
      const found = shown.get(row.jobId);
      if (found) {
        items.push(found);
        if (items.length === limit) {
          const more = i < rows.length - 1 || rows.length === CHUNK;
          return more ? { items, nextCursor: encodeCursor({ i: read, t: top, o: passed }) } : { items };
        }
      }
    }
    if (rows.length < CHUNK) {
      return { items };
    }
    if (examined >= MAX_EXAMINED) {
      return { items, nextCursor: encodeCursor({ i: read, t: top, o: passed }) };
    }
  }
}

/** A shard's place in its index: the last score and how many at it were passed. */
type IndexAt = [number, number];

/** An execution a sharded page shows, probed in its shard. */
interface Probed {
  number: number;
  state: ProbedExecution['state'];
}

/**
 * The page of `query` over S > 1 shards: each shard's index read on its own, merged newest created
 * first, then by number (./shard-merge.ts). With both filters the index read is the one smaller over
 * all shards.
 */
async function listShardedIndexedPage(
  redis: RedisConnection,
  keys: Keys,
  view: ViewOfJob,
  query: PageQuery,
  { limit, from, to }: { limit: number; from: number | undefined; to: number | undefined },
): Promise<ExecutionPage> {
  const shards = keys.queues.all;
  const start = decodeCursor(query.cursor);
  if (start && (start.k === undefined || start.k.length !== shards.length)) {
    throw new ValidationError('Bad query: cursor: it was made with another number of queue shards.');
  }
  let read: 'p' | 'n' = query.procedure !== undefined ? 'p' : 'n';
  if (start) {
    read = start.i;
  } else if (query.procedure !== undefined && query.name !== undefined) {
    const sizes = async (key: (shard: ShardKeys) => string): Promise<number> =>
      (await Promise.all(shards.map((shard) => redis.zcard(key(shard))))).reduce((a, b) => a + b, 0);
    const [procedures, names] = await Promise.all([
      sizes((shard) => shard.executionIndex.procedure(query.procedure as string)),
      sizes((shard) => shard.executionIndex.name(query.name as string)),
    ]);
    read = names < procedures ? 'n' : 'p';
  }
  const filter = read === 'p' ? query.procedure : query.name;
  const other = read === 'p' ? query.name : query.procedure;
  if (filter === undefined) {
    throw new ValidationError('Bad query: cursor: it belongs to other filters.');
  }
  const indexOf = (shard: ShardKeys, which: 'p' | 'n', value: string): string =>
    which === 'p' ? shard.executionIndex.procedure(value) : shard.executionIndex.name(value);
  const readShard = async (
    n: number,
    at: IndexAt | undefined,
  ): Promise<{ entries: MergeEntry<IndexAt, Probed>[]; done: boolean }> => {
    const shard = shards[n] as ShardKeys;
    const key = indexOf(shard, read, filter);
    // The largest double, not Infinity: a position goes into the cursor's JSON, which has no Infinity.
    let [top, passed] = at ?? [to ?? Number.MAX_VALUE, 0];
    const also = other === undefined ? undefined : indexOf(shard, read === 'p' ? 'n' : 'p', other);
    const { rows, probed } = await readChunk(redis, shard, key, also, { top, passed, from });
    if (rows.length === 0) {
      return { entries: [], done: true };
    }
    const entries = rows.map((row, i): MergeEntry<IndexAt, Probed> => {
      const p = probed[i] as ProbedExecution;
      // The gone ones left the index in the probe: they hold no place in it any more.
      if (p.state !== 'gone') {
        passed = row.score === top ? passed + 1 : 1;
        top = row.score;
      }
      const number = numberOfJobId(row.jobId);
      return {
        key: number !== undefined && inState(p, query.state) ? [row.score, number] : undefined,
        item: { number: number ?? 0, state: p.state },
        after: [top, passed],
      };
    });
    return { entries, done: rows.length < CHUNK };
  };
  const merge = new ShardMerge<IndexAt, Probed>(
    readShard,
    start?.k?.map((at) => (at === null ? null : at.length === 0 ? undefined : at)) ??
      shards.map(() => undefined),
  );
  const items: ExecutionView[] = [];
  while (items.length < limit && !merge.exhausted && merge.examined < MAX_EXAMINED) {
    const found = await merge.take(limit - items.length, MAX_EXAMINED);
    const views = await Promise.all(found.map((f) => view(jobIdOf(f.number), f.state, f.number)));
    items.push(...views.filter((v): v is ExecutionView => v !== undefined));
  }
  if (merge.exhausted) {
    return { items };
  }
  return {
    items,
    nextCursor: encodeCursor({
      i: read,
      k: merge.positions().map((at) => (at === null ? null : (at ?? []))),
    }),
  };
}
