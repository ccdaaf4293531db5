/**
 * Catching a client up after a position (Last-Event-ID): what it missed, read with XRANGE from every
 * stream (each queue shard's and the log) and merged in id order, or `reset` when some of it is no
 * longer kept.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { ExecutionMeta } from './bull-events.js';
import type { BullMapper } from './bull-mapper.js';
import { eventFrame, fieldsOfInfo, mapLog, resetFrame, type Entry } from './entries.js';
import { matches } from './filter.js';
import {
  ZERO,
  compareStreamIds,
  formatStreamId,
  movedTo,
  parseStreamId,
  positionIn,
  type Position,
  type StreamId,
} from './ids.js';
import { slotGroups, streamRefs, type HubStreams, type StreamRef } from './streams.js';
import type { EventFilter } from './types.js';

/** Entries read per stream per round trip. */
export const READ_COUNT = 1000;
/** How long a catching-up client may take to take its backlog. */
const DRAIN_WAIT_MS = 30_000;

/** The client being caught up. */
export interface ReplayTarget {
  readonly filter: EventFilter;
  readonly sink: {
    write(frame: string): void;
    readonly backlog: number;
    drained(): Promise<void>;
  };
  /** Where the client is: moved past each entry replayed. */
  cursor: Position;
  /** It went away (or was dropped) meanwhile. */
  readonly closed: boolean;
}

/** What a replay needs. */
export interface ReplaySource {
  readonly redis: RedisConnection;
  readonly streams: HubStreams;
  readonly mapper: BullMapper;
  /** Bytes a client may have unsent before the replay waits for it. */
  readonly maxBacklog: number;
}

/**
 * Sends `sub` what came after `from` up to `upTo`, or a `reset` when some of it is gone. Resolves
 * false when the client did not take its backlog in time (the caller drops it).
 */
export async function replay(
  source: ReplaySource,
  sub: ReplayTarget,
  from: Position,
  upTo: Position,
): Promise<boolean> {
  if (await lostSince(source, from)) {
    sub.cursor = upTo;
    sub.sink.write(resetFrame(upTo));
    return true;
  }
  const memory = new Map<number, ExecutionMeta>();
  const readers = streamRefs(source.streams).map(
    ({ stream, shard, key }) =>
      new RangeReader(
        source.redis,
        key,
        positionIn(from, stream, shard),
        positionIn(upTo, stream, shard),
        stream === 'log' ? async (rows) => mapLog(rows) : (rows) => source.mapper.map(rows, shard, memory),
      ),
  );
  let out = '';
  for (;;) {
    if (readers.some((r) => r.waiting) && out !== '') {
      sub.sink.write(out); // what was read so far, before the next round trip
      out = '';
    }
    const heads = await Promise.all(readers.map((r) => r.peek()));
    // The earliest head; on equal ids the first stream's (shards before the log), as the hub merges.
    let at = -1;
    heads.forEach((head, i) => {
      const best = heads[at];
      if (head && (!best || compareStreamIds(head.sid, best.sid) < 0)) {
        at = i;
      }
    });
    const next = heads[at];
    if (!next || sub.closed) {
      if (!sub.closed && out !== '') {
        sub.sink.write(out);
      }
      return true;
    }
    readers[at]!.take();
    sub.cursor = movedTo(sub.cursor, next.stream, next.shard, next.sid);
    if (next.draft && matches(sub.filter, next.draft)) {
      out += eventFrame(sub.cursor, next.draft);
      if (out.length < 64 * 1024) {
        continue;
      }
      sub.sink.write(out);
      out = '';
      if (sub.sink.backlog > source.maxBacklog / 2) {
        const drained = await Promise.race([
          sub.sink.drained().then(() => true),
          new Promise<boolean>((r) => setTimeout(r, DRAIN_WAIT_MS, false).unref()),
        ]);
        if (!drained) {
          return false;
        }
      }
    }
  }
}

/**
 * Whether entries after `from` were trimmed away (or the streams were replaced, by a restore or a
 * deleted deployment). Trimming drops the oldest entries, so the client missed some when the
 * entry it saw last is older than the first one left.
 */
async function lostSince(source: ReplaySource, from: Position): Promise<boolean> {
  // One pipeline per group of streams a pipeline may span (one group with one queue shard).
  const groups = slotGroups(source.redis, source.streams);
  const replies = await Promise.all(
    groups.map(async (group) => {
      const pipeline = source.redis.pipeline();
      group.forEach(({ key }) => pipeline.xinfo('STREAM', key));
      return (await pipeline.exec()) ?? [];
    }),
  );
  const lost = (ref: StreamRef, reply: [Error | null, unknown] | undefined): boolean => {
    const seen = positionIn(from, ref.stream, ref.shard);
    if (compareStreamIds(seen, ZERO) === 0) {
      return false;
    }
    const [err, raw] = reply ?? [];
    if (err) {
      return true; // no such stream: it was deleted after the client saw an entry of it
    }
    const info = fieldsOfInfo(raw as unknown[]);
    const lastId = parseStreamId(String(info['last-generated-id'] ?? ''));
    if (!lastId || compareStreamIds(seen, lastId) > 0) {
      return true; // an id this stream never gave: another stream by the same name now
    }
    const first = info['first-entry'] as [string, string[]] | null | undefined;
    const firstId = first ? parseStreamId(first[0]) : undefined;
    if (!firstId) {
      return compareStreamIds(seen, lastId) < 0; // emptied by trimming after the client's entry
    }
    return compareStreamIds(seen, firstId) < 0;
  };
  return groups.some((group, g) => group.some((ref, i) => lost(ref, replies[g]?.[i])));
}

/** Reads a stream's entries in `(from, upTo]` page by page, mapped. */
class RangeReader {
  private buffer: Entry[] = [];
  private next: StreamId;
  private done: boolean;

  constructor(
    private readonly redis: RedisConnection,
    private readonly key: string,
    from: StreamId,
    private readonly upTo: StreamId,
    private readonly map: (rows: [string, string[]][]) => Promise<Entry[]>,
  ) {
    this.next = from;
    this.done = compareStreamIds(from, upTo) >= 0;
  }

  async peek(): Promise<Entry | undefined> {
    while (this.buffer.length === 0 && !this.done) {
      const rows = (await this.redis.xrange(
        this.key,
        `(${formatStreamId(this.next)}`,
        formatStreamId(this.upTo),
        'COUNT',
        READ_COUNT,
      )) as [string, string[]][];
      const lastRow = rows[rows.length - 1];
      const lastId = lastRow && parseStreamId(lastRow[0]);
      if (rows.length < READ_COUNT || !lastId) {
        this.done = true;
      } else {
        this.next = lastId;
      }
      this.buffer = await this.map(rows);
    }
    return this.buffer[0];
  }

  take(): void {
    this.buffer.shift();
  }

  /** Whether the next peek reads from Redis (its buffer is empty and the range not done). */
  get waiting(): boolean {
    return this.buffer.length === 0 && !this.done;
  }
}
