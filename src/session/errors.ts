/**
 * The errors of the Session and its storage. Each class means one thing and carries a stable `code`
 * (an ErrorCode of src/errors.ts); `details` names the storage key concerned whenever there is one, so
 * that a log line or an API answer says which entry was involved.
 */
import { SprocdError } from '../errors.js';

/** `storage.use` waited longer than SPROCD_LOCK_TIMEOUT_MS for a lock. */
export class LockTimeoutError extends SprocdError {
  constructor(key: string, timeoutMs: number) {
    super(
      'LOCK_TIMEOUT',
      `storage.use: waited ${timeoutMs} ms for the lock on "${key}" without getting it (SPROCD_LOCK_TIMEOUT_MS); another holder keeps it too long.`,
      { details: { key, timeoutMs } },
    );
  }
}

/**
 * The holder's lease on a lock ran out (the process was paused, or its lease renewals did not reach
 * Redis) and someone else may have taken it: the changes of this `use` were not written (fencing).
 */
export class LockLostError extends SprocdError {
  constructor(key: string) {
    super(
      'LOCK_LOST',
      `storage.use: the lock on "${key}" expired before the commit (its lease was not renewed in time, SPROCD_LOCK_LEASE_MS); nothing was written.`,
      { details: { key } },
    );
  }
}

/**
 * A `use` of an execution whose job is no longer its own on the Redis master the commit reached: its
 * lease ran out (another run may have the job now), or it took the job from a master that the
 * sentinels have since replaced. Nothing was written; the execution runs again wherever its job is.
 */
export class RunFencedError extends SprocdError {
  constructor() {
    super(
      'EXECUTION_LEASE_LOST',
      'storage.use: this run no longer holds its execution on the Redis master the commit reached (its lease ran out, SPROCD_EXECUTION_LEASE_MS, or Redis failed over while it ran); nothing was written. The execution runs again from its job.',
    );
  }
}

/** Something tried to write on `session.storage` itself instead of inside `storage.use`. */
export class StorageReadOnlyError extends SprocdError {
  constructor(property: string) {
    super(
      'STORAGE_READ_ONLY',
      `session.storage is read-only: "${property}" cannot be set or deleted on it. Write inside storage.use("${property}", (draft) => { ... }).`,
      { details: { property } },
    );
  }
}

/** A value that is not JSON (function, class instance, symbol, cycle, NaN, BigInt, ...). */
export class StorageValueInvalidError extends SprocdError {
  constructor(key: string, path: string, reason: string) {
    super('STORAGE_VALUE_INVALID', `storage "${key}": ${path} ${reason}; only JSON values can be stored.`, {
      details: { key, path, reason },
    });
  }
}

/** A nested `use` asked for a key its call chain does not hold (taking it could deadlock). */
export class StorageKeyNotHeldError extends SprocdError {
  constructor(key: string, held: readonly string[]) {
    super(
      'STORAGE_KEY_NOT_HELD',
      `storage: "${key}" is not held by the enclosing storage.use (it holds ${held.map((k) => `"${k}"`).join(', ')}); taking another lock inside a use could deadlock. Name every key in the outermost use([...]).`,
      { details: { key, held: [...held] } },
    );
  }
}

/** An entry whose JSON is larger than SPROCD_STORAGE_MAX_ENTRY_BYTES. */
export class StorageEntryTooLargeError extends SprocdError {
  constructor(key: string, bytes: number, limit: number) {
    super(
      'STORAGE_ENTRY_TOO_LARGE',
      `storage "${key}": the entry is ${bytes} bytes of JSON, over the limit of ${limit} (SPROCD_STORAGE_MAX_ENTRY_BYTES); nothing was written.`,
      { details: { key, bytes, limit } },
    );
  }
}

/** A draft touched after the `use` that handed it out has ended. */
export class DraftExpiredError extends SprocdError {
  constructor(key: string) {
    super(
      'DRAFT_EXPIRED',
      `storage "${key}": this draft belongs to a storage.use that has ended; read with storage.get or write inside a new storage.use.`,
      { details: { key } },
    );
  }
}

/** A storage key that is not a usable name. */
export class StorageKeyInvalidError extends SprocdError {
  constructor(key: unknown, reason: string) {
    super('STORAGE_KEY_INVALID', `storage: ${describeKey(key)} is not a valid key: ${reason}.`, {
      details: { key: typeof key === 'string' ? key : String(key) },
    });
  }
}

/** The session service was closed (the node is stopping). */
export class SessionClosedError extends SprocdError {
  constructor() {
    super(
      'SESSION_CLOSED',
      'The session is closed (the node is stopping); storage.use is no longer possible here.',
    );
  }
}

/**
 * SPROCD_STORAGE_SLOTS differs from the deployment's (stored at its first start): the entries would be
 * looked for in other slots. Changing it takes a backup and a restore (docs/SESSION.md).
 */
export class StorageSlotsMismatchError extends SprocdError {
  constructor(configured: number, stored: number) {
    super(
      'STORAGE_SLOTS_MISMATCH',
      `SPROCD_STORAGE_SLOTS is ${configured} but this deployment's storage has ${stored} slot(s); ` +
        `start with SPROCD_STORAGE_SLOTS=${stored}, or back up, start on a new prefix and restore.`,
      { details: { configured, stored } },
    );
  }
}

function describeKey(key: unknown): string {
  if (typeof key === 'string') {
    return JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}...` : key);
  }
  return `a ${typeof key}`;
}
