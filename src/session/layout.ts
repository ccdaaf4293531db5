/**
 * The session storage's view of the deployment's keys; the keys themselves are built in
 * redis/keys.ts, with every other key, and the data slots (SPROCD_STORAGE_SLOTS) routed in slots.ts.
 */
import type { Keys, StorageKeys } from '../redis/keys.js';
import { slotRouting, type SlotRouting } from './slots.js';

/** Where the storage keeps what (see {@link StorageKeys}), and in how many data slots. */
export type StorageLayout = StorageKeys & { readonly slots: SlotRouting };

/** The storage layout of the deployment whose keys are `keys`, with `k` data slots (1: none). */
export function storageLayout(keys: Keys, k = 1): StorageLayout {
  return { ...keys.storage, slots: slotRouting(keys.storage, k) };
}
