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
 * none. Updates `meta` (the procedure from `added`, the attempt from `active`).
 */
export function mapBullEntry(fields: EntryFields, at: number, meta: ExecutionMeta): EventDraft | undefined {
  const number = numberOfJobId(fields.jobId);
  if (number === undefined) {
    return undefined;
  }
  const base = { number, procedure: meta.procedure, at: new Date(at).toISOString() };
  switch (fields.event) {
    case 'added':
      meta.procedure = fields.name ?? meta.procedure;
      return undefined;
    case 'waiting':
      return state(base, 'waiting', meta, fields.prev ? { prev: fields.prev } : {});
    case 'delayed': {
      const until = Number(fields.delay);
      return state(
        base,
        'delayed',
        meta,
        Number.isFinite(until) && until > 0 ? { delayedUntil: new Date(until).toISOString() } : {},
      );
    }
    case 'active':
      if (meta.attempt !== undefined) {
        meta.attempt += 1;
      }
      return state(base, 'active', meta, {});
    case 'completed':
      return state(base, 'completed', meta, {});
    case 'failed': {
      const error = decodeFailure(fields.failedReason);
      const aborted = error?.code === 'ABORTED';
      const shown = error && { ...(error.code ? { code: error.code } : {}), message: error.message };
      return state(base, aborted ? 'aborted' : 'failed', meta, shown ? { error: shown } : {});
    }
    case 'progress':
      return {
        type: 'execution.progress',
        number,
        procedure: meta.procedure,
        data: { ...base, progress: parseJson(fields.data) },
      };
    case 'removed':
      return { type: 'execution.removed', number, procedure: meta.procedure, data: { number, at: base.at } };
    default:
      return undefined;
  }
}

function state(
  base: { number: number; procedure: string | undefined; at: string },
  name: string,
  meta: ExecutionMeta,
  extra: Record<string, unknown>,
): EventDraft {
  return {
    type: 'execution.state',
    number: base.number,
    procedure: base.procedure,
    data: {
      ...base,
      state: name,
      ...(meta.attempt === undefined ? {} : { attempt: meta.attempt }),
      ...extra,
    },
  };
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
