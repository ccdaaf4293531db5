/**
 * An edit of a storage entry from the console: through `use`, so it waits for the lock and commits
 * fenced like any other writer, named `console` in the lock views; and, when the caller says what it
 * saw, only if the entry still is what it saw.
 */
import { SprocdError } from '../errors.js';
import type { JsonValue, Storage } from '../types.js';

/** An object entry as JSON. */
export type EntryObject = { [key: string]: JsonValue };

/**
 * Replaces entry `key` by `value` in one `use`. With `expect` (null: "no entry"), nothing is written
 * when the entry is something else now: STORAGE_ENTRY_CHANGED, with the current entry in `details`.
 */
export async function replaceEntry(
  storage: Pick<Storage, 'use' | 'get'>,
  key: string,
  value: EntryObject,
  expect?: EntryObject | null,
): Promise<void> {
  await storage.use(key, async (draft) => {
    if (expect !== undefined) {
      // Read under the lock: no other writer can commit this entry meanwhile.
      const current = (await storage.get(key)) ?? null;
      if (canonical(current) !== canonical(expect)) {
        throw new SprocdError(
          'STORAGE_ENTRY_CHANGED',
          `Storage entry "${key}" changed since it was read; nothing was written.`,
          { details: { key, current } },
        );
      }
    }
    for (const name of Object.keys(draft)) {
      delete draft[name];
    }
    Object.assign(draft, value);
  });
}

/** JSON with object keys sorted, so that equal values give equal text. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
