/**
 * What may be stored: the rules for storage keys, and the JSON rule of src/json.ts applied to entries
 * with their size limit. A value is JSON or it is refused with an error that names the entry and the
 * path of the bad part; nothing is silently turned into something else, except `undefined` object
 * properties, which are removed (as JSON.stringify does).
 */
import { checkJson, copyJson, rootPath, toJsonText } from '../json.js';
import { StorageEntryTooLargeError, StorageKeyInvalidError, StorageValueInvalidError } from './errors.js';

export { pathStep, rootPath } from '../json.js';

/** Longest storage key, in UTF-16 code units (4D's limit for property names). */
export const MAX_KEY_LENGTH = 255;

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Throws StorageKeyInvalidError unless `key` is a usable entry name. */
export function assertKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new StorageKeyInvalidError(key, 'keys are strings');
  }
  if (key.length === 0) {
    throw new StorageKeyInvalidError(key, 'it is empty');
  }
  if (key.length > MAX_KEY_LENGTH) {
    throw new StorageKeyInvalidError(key, `it is longer than ${MAX_KEY_LENGTH} characters`);
  }
  if (LONE_SURROGATE.test(key)) {
    throw new StorageKeyInvalidError(key, 'it holds a lone UTF-16 surrogate');
  }
}

/** The keys of a `use(key | keys)` call, checked; at least one. */
export function normalizeKeys(keyOrKeys: unknown): string[] {
  if (typeof keyOrKeys === 'string') {
    assertKey(keyOrKeys);
    return [keyOrKeys];
  }
  if (!Array.isArray(keyOrKeys)) {
    throw new StorageKeyInvalidError(keyOrKeys, 'use() takes a key or an array of keys');
  }
  if (keyOrKeys.length === 0) {
    throw new StorageKeyInvalidError('', 'use([]) names no key');
  }
  for (const key of keyOrKeys) {
    assertKey(key);
  }
  return [...(keyOrKeys as string[])];
}

/**
 * Throws StorageValueInvalidError unless `value` is JSON (the rule of src/json.ts), naming entry `key`
 * and the `path` of the bad part. `undefined` object properties are accepted (removed when stored).
 */
export function assertJsonValue(value: unknown, key: string, path: string): void {
  checkJson(value, { path, refuse: refusal(key) });
}

/**
 * Checks `value` as {@link assertJsonValue} does and returns a deep copy of it made of fresh plain
 * objects and arrays, without the `undefined` properties. `unwrap` maps an object met on the way to
 * the object to read instead (drafts pass their proxies' targets through it).
 */
export function copyJsonValue(
  value: unknown,
  key: string,
  path: string,
  unwrap?: (obj: object) => object,
): unknown {
  return copyJson(value, { path, refuse: refusal(key), unwrap });
}

function refusal(key: string): (path: string, reason: string) => Error {
  return (path, reason) => new StorageValueInvalidError(key, path, reason);
}

/**
 * Checks an entry (a draft's raw object) and turns it into the JSON stored in Redis, enforcing the
 * size limit. Throws StorageValueInvalidError or StorageEntryTooLargeError. `trusted` skips the
 * check for a tree that is valid by construction (a draft's, see drafts.ts).
 */
export function serializeEntry(key: string, entry: object, maxBytes: number, trusted = false): string {
  return toJsonText(entry, {
    path: rootPath(key),
    refuse: refusal(key),
    maxBytes,
    tooLarge: (bytes, limit) => new StorageEntryTooLargeError(key, bytes, limit),
    trusted,
  });
}

/** Parses a stored entry; a copy the caller may change freely. */
export function parseEntry(json: string): unknown {
  return JSON.parse(json) as unknown;
}
