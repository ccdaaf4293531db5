/** Checks that a value is plain JSON, naming the path of the first value that is not. */
import { ValidationError } from '../errors.js';

/** Deepest nesting accepted in params, results and progress (as for storage entries). */
export const MAX_JSON_DEPTH = 256;

/** Throws ValidationError unless `value` round-trips through JSON unchanged in meaning. */
export function assertJson(value: unknown, label: string): void {
  const problem = findNonJson(value, label, new Set(), 0);
  if (problem) {
    throw new ValidationError(`${label} must be JSON: ${problem}`);
  }
}

function findNonJson(value: unknown, path: string, seen: Set<object>, depth: number): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') {
    return undefined;
  }
  if (typeof value === 'number') {
    return Number.isFinite(value) ? undefined : `${path} is ${value}`;
  }
  if (typeof value !== 'object') {
    return `${path} is a ${typeof value}`;
  }
  if (seen.has(value)) {
    return `${path} is a cycle`;
  }
  if (depth >= MAX_JSON_DEPTH) {
    return `${path.length > 80 ? `${path.slice(0, 80)}…` : path} is nested deeper than ${MAX_JSON_DEPTH} levels`;
  }
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const p = findNonJson(value[i], `${path}[${i}]`, seen, depth + 1);
        if (p) {
          return value[i] === undefined ? `${path}[${i}] is undefined` : p;
        }
      }
      return undefined;
    }
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      return `${path} is a ${(value as object).constructor?.name ?? 'class instance'}, not a plain object`;
    }
    for (const [k, v] of Object.entries(value)) {
      if (v === undefined) {
        continue; // dropped by JSON, as a missing property
      }
      const p = findNonJson(v, `${path}.${k}`, seen, depth + 1);
      if (p) {
        return p;
      }
    }
    return undefined;
  } finally {
    seen.delete(value);
  }
}
