/**
 * The events of GET /v1/events, as the hub hands them to subscribers. Glossary:
 * - execution events come from BullMQ's stream of job events (one per state change and progress);
 * - log events come from sprocd's own stream (system events, backups), written by {@link EventLog}.
 */

/** Types of events; a filter may also name a family (`execution`, `backup`, `restore`). */
export const EVENT_TYPES = [
  'execution.state',
  'execution.progress',
  'execution.removed',
  'system',
  'backup.started',
  'backup.progress',
  'backup.finished',
  'restore.started',
  'restore.progress',
  'restore.finished',
  'reset',
] as const;

/** One of {@link EVENT_TYPES}. */
export type EventType = (typeof EVENT_TYPES)[number];

/** Which stream an event came from. */
export type StreamName = 'bull' | 'log';

/** An event before it gets its SSE id. */
export interface EventDraft {
  type: string;
  /** The execution it is about (execution events). */
  number?: number;
  /** The procedure of that execution, when known. */
  procedure?: string;
  /** What the client receives as `data` (JSON). */
  data: Record<string, unknown>;
}

/** What GET /v1/events filters on. */
export interface EventFilter {
  /** Event types or families; absent: all. */
  types?: readonly string[];
  /** Procedures; applies to execution events only. */
  procedures?: readonly string[];
  /** Execution numbers; applies to execution events only. */
  numbers?: readonly number[];
  /**
   * Execution events come as one `execution.digest` event at most this often (ms), for clients that
   * only reload what they show (./digest.ts); other events still come one by one.
   */
  digestMs?: number;
}
