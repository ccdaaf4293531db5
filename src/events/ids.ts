/**
 * Event ids. An event comes from one of the hub's Redis streams (BullMQ's job events of each queue
 * shard, and sprocd's own log of system and backup events), so the id a client sees names a position
 * in each, every part a Redis stream id (`<ms>-<seq>`) joined by `_`:
 *
 * - one queue shard (S = 1): `<bull>_<log>`, as before shards existed, so ids clients hold stay good;
 * - S > 1: `<bull 0>_<bull 1>_..._<bull S-1>_<log>`, one part per shard in shard order, then the log.
 *
 * An id is read only with the S of the node reading it: one with another number of parts (made with
 * another S) is no position here, like any malformed id. Handing an id back as `Last-Event-ID`
 * resumes every stream after its own part.
 */

/** A Redis stream id as its two numbers. */
export interface StreamId {
  readonly ms: number;
  readonly seq: number;
}

/** The position of a client in every stream. */
export interface Position {
  /** In each queue shard's BullMQ stream, index = shard. */
  readonly bull: readonly StreamId[];
  readonly log: StreamId;
}

/** The id before every entry of a stream. */
export const ZERO: StreamId = Object.freeze({ ms: 0, seq: 0 });

const DIGITS = /^\d{1,16}$/;

/** Parses a Redis stream id (`<ms>-<seq>`), or returns undefined. */
export function parseStreamId(raw: string): StreamId | undefined {
  const dash = raw.indexOf('-');
  const msText = raw.slice(0, dash);
  const seqText = raw.slice(dash + 1);
  if (dash < 0 || !DIGITS.test(msText) || !DIGITS.test(seqText)) {
    return undefined;
  }
  const ms = Number(msText);
  const seq = Number(seqText);
  return Number.isSafeInteger(ms) && Number.isSafeInteger(seq) ? { ms, seq } : undefined;
}

/** The Redis form of a stream id. */
export function formatStreamId(id: StreamId): string {
  return `${id.ms}-${id.seq}`;
}

/** Orders two stream ids: negative when `a` comes first. */
export function compareStreamIds(a: StreamId, b: StreamId): number {
  return a.ms - b.ms || a.seq - b.seq;
}

/** The later of two stream ids. */
export function maxStreamId(a: StreamId, b: StreamId): StreamId {
  return compareStreamIds(a, b) >= 0 ? a : b;
}

/** The position before every entry of every stream, with `shards` queue shards. */
export function zeroPosition(shards: number): Position {
  return { bull: Array.from({ length: shards }, () => ZERO), log: ZERO };
}

/** Where `p` is in stream `stream` (of queue shard `shard` for a `bull` stream). */
export function positionIn(p: Position, stream: 'bull' | 'log', shard: number): StreamId {
  return stream === 'log' ? p.log : (p.bull[shard] ?? ZERO);
}

/** `p` moved to `sid` in one stream, the others kept. */
export function movedTo(p: Position, stream: 'bull' | 'log', shard: number, sid: StreamId): Position {
  if (stream === 'log') {
    return { bull: p.bull, log: sid };
  }
  const bull = [...p.bull];
  bull[shard] = sid;
  return { bull, log: p.log };
}

/** The SSE id of a position. */
export function formatPosition(p: Position): string {
  return [...p.bull, p.log].map(formatStreamId).join('_');
}

/** The longest part an id has: two 16-digit numbers and a dash. */
const MAX_PART = 33;

/**
 * Parses an SSE id made by {@link formatPosition} with `shards` queue shards, or returns undefined
 * for anything else (an id of another shard count included).
 */
export function parsePosition(raw: string | undefined, shards = 1): Position | undefined {
  if (raw === undefined || raw.length > Math.max(80, (shards + 1) * (MAX_PART + 1))) {
    return undefined;
  }
  const parts = raw.trim().split('_');
  if (parts.length !== shards + 1) {
    return undefined;
  }
  const ids = parts.map(parseStreamId);
  if (ids.some((id) => id === undefined)) {
    return undefined;
  }
  const all = ids as StreamId[];
  return { bull: all.slice(0, shards), log: all[shards]! };
}
