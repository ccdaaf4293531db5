/**
 * The Redis keys of the session storage, all under `keys.storagePrefix` (and so under the
 * deployment's `{prefix}` hash tag). Backup and restore read this layout too: the entries are the
 * fields of one hash, `data`; everything else is lock state that a restore does not need.
 */
import type { Keys } from '../redis/keys.js';

/** Where the storage keeps what. */
export interface StorageLayout {
  /** The common prefix (`{prefix}:storage`); the Lua scripts build node keys from it. */
  readonly prefix: string;
  /** Hash: entry name → the entry's JSON. Every committed entry, nothing else. */
  readonly data: string;
  /** Counter: each lock grant takes the next value as its fencing token (INCR). */
  readonly fence: string;
  /** String "<token>:<waiter id>" with a PX lease: who holds the lock on entry `name`. */
  lock(name: string): string;
  /** List of waiter ids queued for the lock on entry `name`, oldest first. */
  queue(name: string): string;
  /** String with a PX lease, renewed by a node's heartbeat while it runs; absent = node dead. */
  alive(node: string): string;
  /** List of grant messages for a node's waiters, read by its blocking connection (BLMPOP, or BLPOP before Redis 7). */
  inbox(node: string): string;
}

/** The storage layout of the deployment whose keys are `keys`. */
export function storageLayout(keys: Keys): StorageLayout {
  const prefix = keys.storagePrefix;
  return {
    prefix,
    data: `${prefix}:data`,
    fence: `${prefix}:fence`,
    lock: (name) => `${prefix}:lock:${name}`,
    queue: (name) => `${prefix}:queue:${name}`,
    alive: (node) => `${prefix}:alive:${node}`,
    inbox: (node) => `${prefix}:inbox:${node}`,
  };
}
