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
  /**
   * Something may have made the tree invalid (a delete inside an array can leave a hole); otherwise
   * it is valid JSON by construction, every value having been checked and copied on the way in.
   */
  needsCheck: boolean;
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
      needsCheck: false,
      proxy: undefined as unknown as Draft,
    };
    (entry as { proxy: Draft }).proxy = new Wrapper(this, entry).root() as Draft;
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

/** Asked of a draft proxy, answers what is behind it (no other object answers it). */
const UNWRAP: unique symbol = Symbol('sprocd.draft');

interface Behind {
  readonly target: object;
  readonly scope: DraftScope;
  readonly key: string;
}

function behind(value: object): Behind | undefined {
  return (value as { [UNWRAP]?: Behind })[UNWRAP];
}

/** If `value` is a draft (or part of one), a plain deep copy of it; otherwise `value` itself. */
export function detachIfDraft(value: unknown): unknown {
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  const known = behind(value);
  if (known === undefined) {
    return value;
  }
  return JSON.parse(JSON.stringify(known.target)) as unknown;
}

/** Reads through our own proxies, so copying a draft into another draft reads its target. */
function unwrap(obj: object): object {
  const known = behind(obj);
  if (known === undefined) {
    return obj;
  }
  known.scope.assertAlive(known.key);
  return known.target;
}

/** Where an object sits in its entry, for error messages (computed only when one is thrown). */
interface Place {
  readonly parent: object;
  readonly prop: string | number;
}

/**
 * The proxy handler of one entry: one instance serves every object of the entry's tree, so that
 * opening a draft costs one Proxy and no closures.
 */
class Wrapper implements ProxyHandler<object> {
  /** Proxies of nested objects (made on first access), so that identity holds. */
  private nested: WeakMap<object, object> | undefined;
  private readonly places = new WeakMap<object, Place>();

  constructor(
    private readonly scope: DraftScope,
    private readonly entry: DraftEntry,
  ) {}

  /** The proxy of the entry's root object. */
  root(): object {
    return new Proxy(this.entry.raw, this);
  }

  private wrap(target: object, parent: object, prop: string | number): object {
    this.nested ??= new WeakMap();
    const cached = this.nested.get(target);
    if (cached !== undefined) {
      return cached;
    }
    const proxy = new Proxy(target, this);
    this.nested.set(target, proxy);
    this.places.set(target, { parent, prop });
    return proxy;
  }

  /** The path of `target` (and of `prop` inside it), as error messages show it. */
  private path(target: object, prop?: string | number): string {
    const steps: (string | number)[] = prop === undefined ? [] : [prop];
    let at: object | undefined = target;
    for (let guard = 0; at !== undefined && guard < 1000; guard++) {
      const place = this.places.get(at);
      if (place === undefined) {
        break;
      }
      steps.unshift(place.prop);
      at = place.parent;
    }
    return steps.reduce<string>((path, step) => pathStep(path, step), rootPath(this.entry.key));
  }

  private write(target: object, prop: string | symbol, value: unknown): boolean {
    const key = this.entry.key;
    if (typeof prop === 'symbol') {
      throw new StorageValueInvalidError(
        key,
        this.path(target),
        `cannot have a symbol-keyed property (${String(prop)})`,
      );
    }
    if (Array.isArray(target)) {
      if (prop === 'length') {
        if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
          throw new StorageValueInvalidError(key, this.path(target, 'length'), 'must be a whole number');
        }
        if (value > target.length) {
          throw new StorageValueInvalidError(
            key,
            this.path(target, 'length'),
            'cannot grow an array with holes (arrays cannot hold undefined)',
          );
        }
        this.entry.dirty = true;
        return Reflect.set(target, prop, value);
      }
      if (/^\d+$/.test(prop)) {
        const index = Number(prop);
        if (index > target.length) {
          throw new StorageValueInvalidError(
            key,
            this.path(target, index),
            'would leave a hole in the array (arrays cannot hold undefined)',
          );
        }
        if (value === undefined) {
          throw new StorageValueInvalidError(
            key,
            this.path(target, index),
            'is undefined in an array (use null)',
          );
        }
      }
    }
    this.entry.dirty = true;
    if (value === undefined) {
      return Reflect.deleteProperty(target, prop);
    }
    const kind = typeof value;
    const copy =
      kind === 'string' ||
      kind === 'boolean' ||
      value === null ||
      (kind === 'number' && Number.isFinite(value))
        ? value
        : copyJsonValue(
            value,
            key,
            this.path(target, Array.isArray(target) && /^\d+$/.test(prop) ? Number(prop) : prop),
            unwrap,
          );
    return Reflect.defineProperty(target, prop, {
      value: copy,
      writable: true,
      enumerable: true,
      configurable: true,
    });
  }

  get(target: object, prop: string | symbol): unknown {
    if (prop === UNWRAP) {
      return { target, scope: this.scope, key: this.entry.key } satisfies Behind;
    }
    this.scope.assertAlive(this.entry.key);
    const value: unknown = Reflect.get(target, prop);
    if (
      typeof value === 'object' &&
      value !== null &&
      typeof prop === 'string' &&
      Object.hasOwn(target, prop)
    ) {
      return this.wrap(value, target, Array.isArray(target) && /^\d+$/.test(prop) ? Number(prop) : prop);
    }
    return value;
  }

  set(target: object, prop: string | symbol, value: unknown): boolean {
    this.scope.assertAlive(this.entry.key);
    return this.write(target, prop, value);
  }

  deleteProperty(target: object, prop: string | symbol): boolean {
    this.scope.assertAlive(this.entry.key);
    this.entry.dirty = true;
    if (Array.isArray(target)) {
      // pop, shift and splice delete then shorten; a delete that is not followed by that leaves a
      // hole, which the commit's full check refuses.
      this.entry.needsCheck = true;
    }
    return Reflect.deleteProperty(target, prop);
  }

  defineProperty(target: object, prop: string | symbol, desc: PropertyDescriptor): boolean {
    this.scope.assertAlive(this.entry.key);
    if (desc.get !== undefined || desc.set !== undefined) {
      throw new StorageValueInvalidError(
        this.entry.key,
        this.path(target, String(prop)),
        'cannot be a getter or setter',
      );
    }
    if (!('value' in desc)) {
      // Attribute-only change (e.g. Object.freeze): refuse rather than make the draft unwritable.
      return false;
    }
    return this.write(target, prop, desc.value);
  }

  has(target: object, prop: string | symbol): boolean {
    this.scope.assertAlive(this.entry.key);
    return Reflect.has(target, prop);
  }

  ownKeys(target: object): ArrayLike<string | symbol> {
    this.scope.assertAlive(this.entry.key);
    return Reflect.ownKeys(target);
  }

  getOwnPropertyDescriptor(target: object, prop: string | symbol): PropertyDescriptor | undefined {
    this.scope.assertAlive(this.entry.key);
    return Reflect.getOwnPropertyDescriptor(target, prop);
  }

  setPrototypeOf(target: object): boolean {
    throw new StorageValueInvalidError(
      this.entry.key,
      this.path(target),
      'cannot change its prototype (only plain objects are stored)',
    );
  }

  preventExtensions(): boolean {
    return false;
  }
}
