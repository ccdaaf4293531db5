/** Entries of the event streams as the hub handles them, and the SSE frames they become. */
import { logEntryOf } from './event-log.js';
import { compareStreamIds, formatPosition, parseStreamId, type Position, type StreamId } from './ids.js';
import type { EventDraft, StreamName } from './types.js';

/** One entry of either stream, mapped (no draft: an entry that is no event of ours). */
export interface Entry {
  stream: StreamName;
  /** The queue shard of a `bull` entry (0 for the log). */
  shard: number;
  sid: StreamId;
  draft: EventDraft | undefined;
}

/** Maps entries of sprocd's event log. */
export function mapLog(rows: [string, string[]][]): Entry[] {
  const out: Entry[] = [];
  for (const [id, raw] of rows) {
    const sid = parseStreamId(id);
    if (!sid) {
      continue;
    }
    const entry = logEntryOf(id, raw);
    out.push({ stream: 'log', shard: 0, sid, draft: entry && { type: entry.type, data: entry.data } });
  }
  return out;
}

/** Merges id-ordered lists of entries into one, in id order (the hub's streams by their ids' times). */
export function mergeAll(lists: Entry[][]): Entry[] {
  return lists.reduce((all, list) => merge(all, list), []);
}

/** Merges two id-ordered lists of entries into one, in id order. */
export function merge(a: Entry[], b: Entry[]): Entry[] {
  if (a.length === 0) {
    return b;
  }
  if (b.length === 0) {
    return a;
  }
  const out: Entry[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const x = a[i];
    const y = b[j];
    if (x && (!y || compareStreamIds(x.sid, y.sid) <= 0)) {
      out.push(x);
      i++;
    } else if (y) {
      out.push(y);
      j++;
    }
  }
  return out;
}

/** The SSE frame of an event at `position`. */
export function eventFrame(position: Position, draft: EventDraft): string {
  return `id: ${formatPosition(position)}\nevent: ${draft.type}\ndata: ${JSON.stringify(draft.data)}\n\n`;
}

/** The SSE frame telling a client that events it asked for are no longer kept. */
export function resetFrame(position: Position): string {
  return `id: ${formatPosition(position)}\nevent: reset\ndata: {}\n\n`;
}

/** XINFO STREAM's flat reply as an object. */
export function fieldsOfInfo(raw: unknown[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; raw && i + 1 < raw.length; i += 2) {
    out[String(raw[i])] = raw[i + 1];
  }
  return out;
}
