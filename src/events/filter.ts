/** Parsing and applying the filters of GET /v1/events. */
import type { EventDraft, EventFilter } from './types.js';

/** Most values one filter may list. */
export const MAX_FILTER_VALUES = 100;

/** Whether `event` passes `filter`. A `reset` always passes: it concerns the whole stream. */
export function matches(filter: EventFilter, event: EventDraft): boolean {
  if (event.type === 'reset') {
    return true;
  }
  const { types, procedures, numbers } = filter;
  if (types && !types.some((t) => t === event.type || event.type.startsWith(`${t}.`))) {
    return false;
  }
  if (!event.type.startsWith('execution.')) {
    return true;
  }
  if (numbers && (event.number === undefined || !numbers.includes(event.number))) {
    return false;
  }
  if (procedures && (event.procedure === undefined || !procedures.includes(event.procedure))) {
    return false;
  }
  return true;
}

/**
 * The values of a query parameter that may be repeated and comma-separated
 * (`?type=a&type=b,c`), trimmed, without empty ones; undefined when absent.
 */
export function listParam(raw: unknown): string[] | undefined {
  if (raw === undefined) {
    return undefined;
  }
  const parts = (Array.isArray(raw) ? raw : [raw])
    .flatMap((v) => String(v).split(','))
    .map((v) => v.trim())
    .filter((v) => v !== '');
  return parts.length ? parts : undefined;
}

/** The same key for filters that pass the same events (the order of their values aside). */
export function filterKey(filter: EventFilter): string {
  const sorted = (values: readonly (string | number)[] | undefined) =>
    values ? [...new Set(values.map(String))].sort() : null;
  return JSON.stringify([
    sorted(filter.types),
    sorted(filter.procedures),
    sorted(filter.numbers),
    filter.digestMs ?? null,
  ]);
}
