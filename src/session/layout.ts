/**
 * The session storage's view of the deployment's keys; the keys themselves are built in
 * redis/keys.ts, with every other key.
 */
import type { Keys, StorageKeys } from '../redis/keys.js';

/** Where the storage keeps what (see {@link StorageKeys}). */
export type StorageLayout = StorageKeys;

/** The storage layout of the deployment whose keys are `keys`. */
export function storageLayout(keys: Keys): StorageLayout {
  return keys.storage;
}
