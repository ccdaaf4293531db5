/**
 * Event ids. An event comes from one of two Redis streams (BullMQ's job events, and sprocd's own log
 * of system and backup events), so the id a client sees names a position in both: `<bull>_<log>`,
 * each a Redis stream id (`<ms>-<seq>`). Handing it back as `Last-Event-ID` resumes both streams.
 */

/** A Redis stream id as its two numbers. */
export interface StreamId {
  readonly ms: number;
  readonly seq: number;
}

/** The position of a client in both streams. */
export interface Position {
  readonly bull: StreamId;
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

/** The SSE id of a position. */
export function formatPosition(p: Position): string {
  return `${formatStreamId(p.bull)}_${formatStreamId(p.log)}`;
}

/** Parses an SSE id made by {@link formatPosition}, or returns undefined for anything else. */
export function parsePosition(raw: string | undefined): Position | undefined {
  if (raw === undefined || raw.length > 80) {
    return undefined;
  }
  const [bull, log, extra] = raw.trim().split('_');
  if (bull === undefined || log === undefined || extra !== undefined) {
    return undefined;
  }
  const b = parseStreamId(bull);
  const l = parseStreamId(log);
  return b && l ? { bull: b, log: l } : undefined;
}
