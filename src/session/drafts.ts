/**
 * Drafts: the objects a `storage.use` callback reads and writes. Each is a Proxy over a private
 * plain copy of the entry, so that
 * - every value that enters it is checked and copied on the spot (an error names the entry and the
 *   path at the line that wrote it; later changes to the caller's object do not leak in);
 * - `undefined` assigned to a property removes it, as deleting does;
 * - the scope knows which entries changed, so an unchanged entry is not written back;
 * - after its `use` has ended, any touch throws DraftExpiredError.
 * Nested objects and arrays are wrapped lazily, with one proxy per object so identity holds.
 */
import type { Draft } from '../types.js';
import { DraftExpiredError, StorageValueInvalidError } from './errors.js';
import { copyJsonValue, pathStep, rootPath } from './values.js';

/** One entry held by a `use`: its draft and what the commit needs to know about it. */
export interface DraftEntry {
  readonly key: string;
  /** The private plain object behind the draft. */
  readonly raw: Record<string, unknown>;
  /** What `fn` gets. */
  readonly proxy: Draft;
  /** The entry existed in Redis when the lock was taken. */
  readonly existed: boolean;
  /** Something was written into the draft (or `storage.remove` was called on it). */
  dirty: boolean;
  /** `storage.remove(key)` was called inside the use: delete unless written again afterwards. */
  removed: boolean;
}

/** The drafts of one outermost `use`; they live until {@link DraftScope.end}. */
export class DraftScope {
  private alive = true;
  readonly entries = new Map<string, DraftEntry>();

  /** Whether the `use` that owns these drafts is still running. */
  get active(): boolean {
    return this.alive;
  }

  /** Makes a draft of `raw` (a fresh object parsed from Redis, or {} when absent). */
  open(key: string, raw: Record<string, unknown>, existed: boolean): DraftEntry {
    const entry: DraftEntry = {
      key,
      raw,
      existed,
      dirty: false,
      removed: false,
      proxy: undefined as unknown as Draft,
    };
    const wrapper = new Wrapper(this, entry);
    (entry as { proxy: Draft }).proxy = wrapper.wrap(raw, rootPath(key)) as Draft;
    this.entries.set(key, entry);
    return entry;
  }

  /** Ends the scope: every draft of it throws from now on. */
  end(): void {
    this.alive = false;
  }

  /** Throws DraftExpiredError when the scope has ended. */
  assertAlive(key: string): void {
    if (!this.alive) {
      throw new DraftExpiredError(key);
    }
  }
}

/** Proxies handed out by any scope → their target and entry; lets values be unwrapped and copied. */
const proxies = new WeakMap<object, { target: object; scope: DraftScope; key: string }>();

/** If `value` is a draft (or part of one), a plain deep copy of it; otherwise `value` itself. */
export function detachIfDraft(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  const known = proxies.get(value);
  if (known === undefined) {
    return value;
  }
  return JSON.parse(JSON.stringify(known.target)) as unknown;
}

/** Reads through our own proxies, so copying a draft into another draft reads its target. */
function unwrap(obj: object): object {
  const known = proxies.get(obj);
  if (known === undefined) {
    return obj;
  }
  known.scope.assertAlive(known.key);
  return known.target;
}

class Wrapper {
  private readonly cache = new WeakMap<object, object>();

  constructor(
    private readonly scope: DraftScope,
    private readonly entry: DraftEntry,
  ) {}

  wrap(target: object, path: string): object {
    const cached = this.cache.get(target);
    if (cached !== undefined) {
      return cached;
    }
    const proxy = new Proxy(target, this.handler(path));
    this.cache.set(target, proxy);
    proxies.set(proxy, { target, scope: this.scope, key: this.entry.key });
    return proxy;
  }

  private handler(path: string): ProxyHandler<object> {
    const { scope, entry } = this;
    const key = entry.key;
    const isArray = (t: object) => Array.isArray(t);
    const write = (target: object, prop: string | symbol, value: unknown): boolean => {
      if (typeof prop === 'symbol') {
        throw new StorageValueInvalidError(key, path, `cannot have a symbol-keyed property (${String(prop)})`);
      }
      if (isArray(target) && prop === 'length') {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          throw new StorageValueInvalidError(key, pathStep(path, 'length'), 'must be a whole number');
        }
        if (value > (target as unknown[]).length) {
          throw new StorageValueInvalidError(
            key,
            pathStep(path, 'length'),
            'cannot grow an array with holes (arrays cannot hold undefined)',
          );
        }
        entry.dirty = true;
        return Reflect.set(target, prop, value);
      }
      const index = isArray(target) && /^\d+$/.test(prop) ? Number(prop) : undefined;
      const step = index === undefined ? pathStep(path, prop) : pathStep(path, index);
      if (index !== undefined && index > (target as unknown[]).length) {
        throw new StorageValueInvalidError(key, step, 'would leave a hole in the array (arrays cannot hold undefined)');
      }
      if (value === undefined) {
        if (isArray(target)) {
          throw new StorageValueInvalidError(key, step, 'is undefined in an array (use null)');
        }
        entry.dirty = true;
        return Reflect.deleteProperty(target, prop);
      }
      const copy = copyJsonValue(value, key, step, unwrap);
      entry.dirty = true;
      return Reflect.defineProperty(target, prop, { value: copy, writable: true, enumerable: true, configurable: true });
    };
    return {
      get: (target, prop) => {
        scope.assertAlive(key);
        const value: unknown = Reflect.get(target, prop);
        if (typeof value === 'object' && value !== null && Object.hasOwn(target, prop)) {
          const childPath = isArray(target) && typeof prop === 'string' && /^\d+$/.test(prop)
            ? pathStep(path, Number(prop))
            : pathStep(path, String(prop));
          return this.wrap(value, childPath);
        }
        return value;
      },
      set: (target, prop, value) => {
        scope.assertAlive(key);
        return write(target, prop, value);
      },
      deleteProperty: (target, prop) => {
        scope.assertAlive(key);
        entry.dirty = true;
        return Reflect.deleteProperty(target, prop);
      },
      defineProperty: (target, prop, desc) => {
        scope.assertAlive(key);
        if (desc.get !== undefined || desc.set !== undefined) {
          throw new StorageValueInvalidError(key, pathStep(path, String(prop)), 'cannot be a getter or setter');
        }
        if (!('value' in desc)) {
          // Attribute-only change (e.g. Object.freeze): refuse rather than make the draft unwritable.
          return false;
        }
        return write(target, prop, desc.value);
      },
      has: (target, prop) => {
        scope.assertAlive(key);
        return Reflect.has(target, prop);
      },
      ownKeys: (target) => {
        scope.assertAlive(key);
        return Reflect.ownKeys(target);
      },
      getOwnPropertyDescriptor: (target, prop) => {
        scope.assertAlive(key);
        return Reflect.getOwnPropertyDescriptor(target, prop);
      },
      setPrototypeOf: () => {
        throw new StorageValueInvalidError(key, path, 'cannot change its prototype (only plain objects are stored)');
      },
      preventExtensions: () => false,
    };
  }
}
