/**
 * What may be stored: the rules for storage keys and values, in one place with their limits.
 * A value is JSON or it is refused with an error that names the entry and the path of the bad part;
 * nothing is silently turned into something else, except `undefined` object properties, which are
 * removed (as JSON.stringify does, and as the Session contract says).
 */
import { StorageEntryTooLargeError, StorageKeyInvalidError, StorageValueInvalidError } from './errors.js';

/** Longest storage key, in UTF-16 code units (4D's limit for property names). */
export const MAX_KEY_LENGTH = 255;

/** Deepest nesting accepted in a value; deeper is refused rather than risking a stack overflow. */
export const MAX_DEPTH = 256;

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

/** Renders a property step of a path: `.name` for identifiers, `["odd name"]` otherwise. */
export function pathStep(parent: string, prop: string | number): string {
  if (typeof prop === 'number') {
    return `${parent}[${prop}]`;
  }
  return /^[A-Za-z_$][\w$]*$/.test(prop) ? `${parent}.${prop}` : `${parent}[${JSON.stringify(prop)}]`;
}

/** How a path inside entry `key` starts. */
export function rootPath(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
}

/**
 * Throws StorageValueInvalidError unless `value` is JSON: null, booleans, strings, finite numbers,
 * arrays without holes or undefined elements, and plain objects (prototype Object.prototype or null)
 * with string keys and data properties. `undefined` object properties are accepted (they are removed
 * when stored). A value met twice on one branch is a cycle; the same object in two places is not.
 */
export function assertJsonValue(value: unknown, key: string, path: string): void {
  walk(value, key, path, [], 0, undefined);
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
  unwrap: (obj: object) => object = (obj) => obj,
): unknown {
  return walk(value, key, path, [], 0, unwrap);
}

function walk(
  value: unknown,
  key: string,
  path: string,
  ancestors: object[],
  depth: number,
  copy: ((obj: object) => object) | undefined,
): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) {
        throw new StorageValueInvalidError(key, path, `is ${value} (JSON has only finite numbers)`);
      }
      return value;
    case 'undefined':
      throw new StorageValueInvalidError(key, path, 'is undefined');
    case 'bigint':
      throw new StorageValueInvalidError(key, path, 'is a BigInt (store it as a string)');
    case 'symbol':
      throw new StorageValueInvalidError(key, path, 'is a symbol');
    case 'function':
      throw new StorageValueInvalidError(key, path, 'is a function');
    case 'object':
      break;
  }
  if (value === null) {
    return null;
  }
  const obj = copy === undefined ? (value as object) : copy(value as object);
  if (ancestors.includes(obj)) {
    throw new StorageValueInvalidError(key, path, 'is a cycle (it contains itself)');
  }
  if (depth >= MAX_DEPTH) {
    throw new StorageValueInvalidError(key, path, `is nested deeper than ${MAX_DEPTH} levels`);
  }
  if (Object.getOwnPropertySymbols(obj).length > 0) {
    throw new StorageValueInvalidError(key, path, 'has a symbol-keyed property');
  }
  ancestors.push(obj);
  try {
    if (Array.isArray(obj)) {
      if (Object.getPrototypeOf(obj) !== Array.prototype) {
        throw new StorageValueInvalidError(
          key,
          path,
          'is an instance of an Array subclass, not a plain array',
        );
      }
      const out: unknown[] | undefined = copy === undefined ? undefined : new Array<unknown>(obj.length);
      for (let i = 0; i < obj.length; i++) {
        const elementPath = pathStep(path, i);
        const desc = Object.getOwnPropertyDescriptor(obj, i);
        if (desc === undefined) {
          throw new StorageValueInvalidError(
            key,
            elementPath,
            'is a hole in an array (arrays cannot hold undefined)',
          );
        }
        if (desc.get !== undefined || desc.set !== undefined) {
          throw new StorageValueInvalidError(key, elementPath, 'is a getter or setter, not a data property');
        }
        if (desc.value === undefined) {
          throw new StorageValueInvalidError(key, elementPath, 'is undefined in an array (use null)');
        }
        const element = walk(desc.value, key, elementPath, ancestors, depth + 1, copy);
        if (out !== undefined) {
          out[i] = element;
        }
      }
      return out ?? obj;
    }
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      const name = (obj as { constructor?: { name?: unknown } }).constructor?.name;
      throw new StorageValueInvalidError(
        key,
        path,
        `is ${typeof name === 'string' && name !== '' ? `a ${name}` : 'a class instance'}, not a plain object`,
      );
    }
    const out: Record<string, unknown> | undefined = copy === undefined ? undefined : {};
    const descriptors = Object.getOwnPropertyDescriptors(obj);
    for (const prop of Object.keys(descriptors)) {
      const desc = descriptors[prop];
      if (desc === undefined || !desc.enumerable) {
        continue;
      }
      const propPath = pathStep(path, prop);
      if (desc.get !== undefined || desc.set !== undefined) {
        throw new StorageValueInvalidError(key, propPath, 'is a getter or setter, not a data property');
      }
      if (desc.value === undefined) {
        continue; // removed when stored
      }
      const propValue = walk(desc.value, key, propPath, ancestors, depth + 1, copy);
      if (out !== undefined) {
        // defineProperty, not assignment: a "__proto__" key must stay an ordinary property.
        Object.defineProperty(out, prop, {
          value: propValue,
          writable: true,
          enumerable: true,
          configurable: true,
        });
      }
    }
    return out ?? obj;
  } finally {
    ancestors.pop();
  }
}

/**
 * Checks an entry (a draft's raw object) and turns it into the JSON stored in Redis, enforcing the
 * size limit. Throws StorageValueInvalidError or StorageEntryTooLargeError. `trusted` skips the
 * check for a tree that is valid by construction (a draft's, see drafts.ts).
 */
export function serializeEntry(key: string, entry: object, maxBytes: number, trusted = false): string {
  if (!trusted) {
    assertJsonValue(entry, key, rootPath(key));
  }
  const json = JSON.stringify(entry);
  // Cheap upper bound first: a UTF-16 code unit is at most 3 UTF-8 bytes.
  if (json.length * 3 > maxBytes) {
    const bytes = Buffer.byteLength(json, 'utf8');
    if (bytes > maxBytes) {
      throw new StorageEntryTooLargeError(key, bytes, maxBytes);
    }
  }
  return json;
}

/** Parses a stored entry; a copy the caller may change freely. */
export function parseEntry(json: string): unknown {
  return JSON.parse(json) as unknown;
}
