/**
 * Reading BullMQ's stream of job events (`<bullPrefix>:procedures:events`) as sprocd events. BullMQ
 * writes one entry per state change (`waiting`, `delayed`, `active`, `completed`, `failed`,
 * `removed`, `progress`, ...), each with the job id and a few fields; only `added` carries the job
 * name, which is the procedure. The rest of an execution (its process name, its node) is not in the
 * stream: a client that needs it reads GET /v1/executions/:number.
 */
import { decodeFailure } from '../procedures/failure.js';
import { numberOfJobId } from '../redis/keys.js';
import type { EventDraft } from './types.js';

/** What the hub remembers of an execution it saw events of. */
export interface ExecutionMeta {
  /** Undefined when the job was gone when the hub looked it up. */
  procedure: string | undefined;
  /** Starts seen so far (BullMQ's attemptsStarted); undefined when not known (replayed events). */
  attempt: number | undefined;
}

/** A stream entry's fields as an object. */
export type EntryFields = Record<string, string>;

/** The fields of a raw stream entry (`[k1, v1, k2, v2, ...]`). */
export function fieldsOf(raw: readonly string[]): EntryFields {
  const out: EntryFields = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    out[raw[i] as string] = raw[i + 1] as string;
  }
  return out;
}

/** The BullMQ events that become sprocd events (`added` only teaches the procedure). */
const RELEVANT = new Set([
  'added',
  'waiting',
  'delayed',
  'active',
  'progress',
  'completed',
  'failed',
  'removed',
]);

/** The execution number an entry is about, when it is one sprocd maps. */
export function entryNumber(fields: EntryFields): number | undefined {
  return RELEVANT.has(fields.event ?? '') ? numberOfJobId(fields.jobId) : undefined;
}

/**
 * The sprocd event of one BullMQ entry written at `at` (ms), or undefined for entries that map to
 * none. Updates `meta` (the procedure from `added`, the attempt from `active`). This runs for every
 * entry while anyone listens: it builds plain objects, without spreads.
 */
export function mapBullEntry(fields: EntryFields, at: number, meta: ExecutionMeta): EventDraft | undefined {
  const number = numberOfJobId(fields.jobId);
  if (number === undefined) {
    return undefined;
  }
  switch (fields.event) {
    case 'added':
      meta.procedure = fields.name ?? meta.procedure;
      return undefined;
    case 'waiting': {
      const data = stateData(number, meta, at, 'waiting');
      if (fields.prev) {
        data.prev = fields.prev;
      }
      return draft('execution.state', number, meta, data);
    }
    case 'delayed': {
      const data = stateData(number, meta, at, 'delayed');
      const until = Number(fields.delay);
      if (Number.isFinite(until) && until > 0) {
        data.delayedUntil = new Date(until).toISOString();
      }
      return draft('execution.state', number, meta, data);
    }
    case 'active':
      if (meta.attempt !== undefined) {
        meta.attempt += 1;
      }
      return draft('execution.state', number, meta, stateData(number, meta, at, 'active'));
    case 'completed':
      return draft('execution.state', number, meta, stateData(number, meta, at, 'completed'));
    case 'failed': {
      const error = decodeFailure(fields.failedReason);
      const data = stateData(number, meta, at, error?.code === 'ABORTED' ? 'aborted' : 'failed');
      if (error) {
        data.error = error.code ? { code: error.code, message: error.message } : { message: error.message };
      }
      return draft('execution.state', number, meta, data);
    }
    case 'progress':
      return draft('execution.progress', number, meta, {
        number,
        procedure: meta.procedure,
        at: isoTime(at),
        progress: parseJson(fields.data),
      });
    case 'removed':
      return draft('execution.removed', number, meta, { number, at: isoTime(at) });
    default:
      return undefined;
  }
}

function draft(type: string, number: number, meta: ExecutionMeta, data: Record<string, unknown>): EventDraft {
  return { type, number, procedure: meta.procedure, data };
}

function stateData(number: number, meta: ExecutionMeta, at: number, state: string): Record<string, unknown> {
  const data: Record<string, unknown> = { number, procedure: meta.procedure, at: isoTime(at), state };
  if (meta.attempt !== undefined) {
    data.attempt = meta.attempt;
  }
  return data;
}

let lastMs = -1;
let lastIso = '';

/** The ISO form of `ms`; the last one is kept, since the entries of one read share their milliseconds. */
function isoTime(ms: number): string {
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

function parseJson(raw: string | undefined): unknown {
  if (raw === undefined) {
    return null;
  }
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}
