/**
 * `session.storage`: 4D's Session.storage over Redis. Reads go straight to the entries hash (one
 * command, so they never see half of a commit); writes happen only inside `use`, on drafts, and are
 * committed by one Lua script together with the lock release (see locks.ts).
 *
 * Re-entrance follows 4D's nested `Use`: the outermost `use` of a call chain (tracked with
 * AsyncLocalStorage) owns the locks and the drafts; a nested `use` on keys it holds gets the same
 * drafts and commits nothing; a nested `use` on a key it does not hold is refused, since waiting for
 * it while holding others could deadlock.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { ValidationError } from '../errors.js';
import { inSpan } from '../tracing/spans.js';
import type { Draft, JsonValue, Storage } from '../types.js';
import { DraftScope, detachIfDraft } from './drafts.js';
import {
  LockLostError,
  SessionClosedError,
  StorageKeyNotHeldError,
  StorageReadOnlyError,
  StorageValueInvalidError,
} from './errors.js';
import type { StorageLayout } from './layout.js';
import { readAllSlots, slotNames } from './slot-reads.js';
import { type CommitOp, type HeldLock, type LockManager, mapRedisError, type RunFence } from './locks.js';
import { assertKey, normalizeKeys, parseEntry, rootPath, serializeEntry } from './values.js';

/** What {@link SessionStorage} needs. */
export interface SessionStorageOptions {
  redis: RedisConnection;
  locks: LockManager;
  layout: StorageLayout;
  maxEntryBytes: number;
  logger: Logger;
}

/** Who writes through a facade: the label of the locks it takes, and a check before it changes anything. */
export interface StorageWriter {
  /** Appended to its lock waiter ids (lock-owner.ts). */
  readonly label?: string;
  /**
   * Throws when the writer may change nothing any more (an aborted execution): called before a `use`
   * takes its locks and again before it commits, so nothing is written after it throws.
   */
  readonly check?: () => void;
  /**
   * An execution's job lock and token: its commits write only where the run still holds its job
   * (RunFencedError otherwise), so a run that took its job from a replaced master writes nothing.
   */
  readonly fence?: RunFence;
}

/** The storage implementation; `session.storage` is {@link SessionStorage.facade}. */
export class SessionStorage {
  private readonly o: SessionStorageOptions;
  private readonly chain = new AsyncLocalStorage<DraftScope>();
  /** Outermost uses under way (waiting or holding). */
  private active = 0;
  private drained: (() => void) | undefined;
  private closed = false;
  /** The read-only object handed to hooks (its locks name only the node). */
  readonly facade: Storage;

  constructor(options: SessionStorageOptions) {
    this.o = options;
    this.facade = this.facadeFor({});
  }

  /**
   * The read-only object handed to one writer: the locks its `use` and `remove` take carry `label`
   * (lock-owner.ts), so the console can name the execution that holds or waits for a lock. Passed
   * explicitly rather than read from an AsyncLocalStorage around the whole execution, which would
   * put every promise of every procedure under async context tracking.
   */
  facadeFor(writer: StorageWriter): Storage {
    return makeFacade({
      get: (key) => this.get(key),
      keys: () => this.keys(),
      snapshot: () => this.snapshot(),
      remove: (key) => this.remove(key, writer),
      use: ((keyOrKeys: string | readonly string[], fn: (...drafts: Draft[]) => unknown) =>
        this.use(keyOrKeys, fn, writer)) as Storage['use'],
    });
  }

  async get<T = JsonValue>(key: string): Promise<T | undefined> {
    assertKey(key);
    let json: string | null;
    try {
      const { layout } = this.o;
      json = await this.o.redis.hget(layout.slots.k > 1 ? layout.slots.slotFor(key).data : layout.data, key);
    } catch (err) {
      throw mapRedisError(err);
    }
    return json === null ? undefined : (parseEntry(json) as T);
  }

  async keys(): Promise<string[]> {
    try {
      const { layout } = this.o;
      return layout.slots.k > 1
        ? await slotNames(this.o.redis, layout)
        : (await this.o.redis.hkeys(layout.data)).sort();
    } catch (err) {
      throw mapRedisError(err);
    }
  }

  async snapshot(): Promise<Record<string, JsonValue>> {
    let all: Record<string, string>;
    try {
      const { layout } = this.o;
      // With data slots, one HGETALL per slot: a multi-slot commit may show in one slot and not yet
      // in another (docs/SESSION.md); a `use` reads under its locks and never sees that.
      all =
        layout.slots.k > 1
          ? await readAllSlots(this.o.redis, layout)
          : await this.o.redis.hgetall(layout.data);
    } catch (err) {
      throw mapRedisError(err);
    }
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(all).sort()) {
      const value = parseEntry(all[key] as string) as JsonValue;
      Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
    }
    return out;
  }

  async remove(key: string, writer: StorageWriter = {}): Promise<void> {
    assertKey(key);
    const scope = this.activeScope();
    if (scope !== undefined) {
      const entry = scope.entries.get(key);
      if (entry === undefined) {
        throw new StorageKeyNotHeldError(key, [...scope.entries.keys()]);
      }
      for (const prop of Object.keys(entry.raw)) {
        delete entry.raw[prop];
      }
      entry.removed = true;
      entry.dirty = true;
      return;
    }
    await this.outermost([key], true, writer, (entryScope) => {
      const entry = entryScope.entries.get(key);
      if (entry !== undefined) {
        entry.removed = true;
        entry.dirty = true;
      }
    });
  }

  async use(
    keyOrKeys: string | readonly string[],
    fn: (...drafts: Draft[]) => unknown,
    writer: StorageWriter = {},
  ): Promise<never> {
    const keys = normalizeKeys(keyOrKeys);
    if (typeof fn !== 'function') {
      throw new ValidationError('storage.use(key, fn): fn must be a function');
    }
    const scope = this.activeScope();
    if (scope !== undefined) {
      const drafts: Draft[] = [];
      for (const key of keys) {
        const entry = scope.entries.get(key);
        if (entry === undefined) {
          throw new StorageKeyNotHeldError(key, [...scope.entries.keys()]);
        }
        drafts.push(entry.proxy);
      }
      return (await fn(...drafts)) as never;
    }
    const sorted = keys.length === 1 ? keys : [...new Set(keys)].sort();
    return (await inSpan('storage.use', { 'sprocd.storage.keys': sorted }, () =>
      this.outermost(sorted, false, writer, (s) =>
        fn(...keys.map((key) => (s.entries.get(key) as { proxy: Draft }).proxy)),
      ),
    )) as never;
  }

  /**
   * Stops new uses and sends waiting ones away (SessionClosedError), then lets the uses that hold
   * their locks finish (at most `graceMs`), so that their commits are not cut off.
   */
  async close(graceMs: number): Promise<void> {
    this.closed = true;
    await this.o.locks.stopWaiting();
    if (this.active === 0) {
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      new Promise<void>((r) => {
        this.drained = r;
      }),
      new Promise((r) => {
        timer = setTimeout(r, graceMs);
      }),
    ]);
    clearTimeout(timer);
  }

  private activeScope(): DraftScope | undefined {
    const scope = this.chain.getStore();
    return scope !== undefined && scope.active ? scope : undefined;
  }

  /**
   * The outermost use: lock, draft, run, commit (or release on a throw). `blank` drafts every entry
   * as {} without reading it (remove: the entry may not even be an object).
   */
  private async outermost(
    sorted: readonly string[],
    blank: boolean,
    writer: StorageWriter,
    run: (scope: DraftScope) => unknown,
  ): Promise<unknown> {
    if (this.closed) {
      throw new SessionClosedError();
    }
    writer.check?.();
    this.active++;
    try {
      // Traced (src/tracing): the lock wait and the commit each get a span.
      const attributes = { 'sprocd.storage.keys': sorted };
      const held = await inSpan('storage.lock', attributes, () => this.o.locks.acquire(sorted, writer.label));
      const scope = new DraftScope();
      let result: unknown;
      try {
        for (const lock of held) {
          scope.open(lock.key, blank ? {} : this.draftSource(lock), lock.json !== undefined);
        }
        result = await this.chain.run(scope, () => run(scope));
        scope.end();
        // The writer may have been stopped while it held the locks (an abort): then nothing is written.
        writer.check?.();
        await inSpan('storage.commit', attributes, () =>
          this.o.locks.commit(held, this.commitOps(scope), writer.fence),
        );
      } catch (err) {
        scope.end();
        if (!(err instanceof LockLostError)) {
          await this.releaseQuietly(held);
        }
        throw err;
      }
      return detachIfDraft(result);
    } finally {
      if (--this.active === 0) {
        this.drained?.();
      }
    }
  }

  private draftSource(lock: HeldLock): Record<string, unknown> {
    if (lock.json === undefined) {
      return {};
    }
    const value = parseEntry(lock.json);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new StorageValueInvalidError(
        lock.key,
        rootPath(lock.key),
        `is stored as ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}, not an object, so it cannot be drafted; storage.remove it first`,
      );
    }
    return value as Record<string, unknown>;
  }

  private commitOps(scope: DraftScope): Map<string, CommitOp> {
    const ops = new Map<string, CommitOp>();
    for (const entry of scope.entries.values()) {
      if (entry.removed && Object.keys(entry.raw).length === 0) {
        ops.set(entry.key, { op: 'delete' });
      } else if (entry.dirty || !entry.existed) {
        const json = serializeEntry(entry.key, entry.raw, this.o.maxEntryBytes, !entry.needsCheck);
        ops.set(entry.key, { op: 'set', json });
      }
    }
    return ops;
  }

  private async releaseQuietly(held: readonly HeldLock[]): Promise<void> {
    try {
      await this.o.locks.release(held);
    } catch (err) {
      this.o.logger.warn(
        { err },
        'session: could not release locks after a failed use; they expire with their lease',
      );
    }
  }
}

/**
 * The object procedures see as `session.storage`: its methods, and nothing can be set, defined or
 * deleted on it (each attempt throws StorageReadOnlyError, in strict and sloppy code alike).
 */
function makeFacade(methods: Storage): Storage {
  const target = Object.freeze({ ...methods });
  const refuse = (prop: string | symbol): never => {
    throw new StorageReadOnlyError(String(prop));
  };
  return new Proxy(target, {
    set: (_t, prop) => refuse(prop),
    defineProperty: (_t, prop) => refuse(prop),
    deleteProperty: (_t, prop) => refuse(prop),
    setPrototypeOf: () => refuse('__proto__'),
  });
}
