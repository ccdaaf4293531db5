/**
 * Slot routing of the session storage (SPROCD_STORAGE_SLOTS = K): with K > 1 the value of entry
 * `name` lives in data slot slotOf(name, K), the hashes `{prefix:s<j>}:data` and `:ver`, while the
 * lock state stays under `{prefix}` (docs/ARCHITECTURE.md, "Storage entries in their own slots").
 * The hash must never change: entries written under one function would not be found under another.
 */
import type { StorageKeys } from '../redis/keys.js';

const encoder = new TextEncoder();

/** Data slot of entry `name` among `k`: FNV-1a (32 bits) of its UTF-8 bytes, modulo k. */
export function slotOf(name: string, k: number): number {
  let h = 0x811c9dc5;
  for (const byte of encoder.encode(name)) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % k;
}

/** The data slot keys of one slot. */
export interface SlotKeys {
  readonly slot: number;
  /** Hash: entry name → JSON. */
  readonly data: string;
  /** Hash: entry name → fencing token of the commit that last wrote it. */
  readonly versions: string;
  /** No tx with a token up to this is applied here (set by a restore). */
  readonly floor: string;
}

/** Where the entries of a storage with `k` data slots are (k = 1: the one hash `data`, no slots). */
export interface SlotRouting {
  readonly k: number;
  /** The slot keys of entry `name` (k > 1 only). */
  slotFor(name: string): SlotKeys;
  /** The keys of slot `j`. */
  slot(j: number): SlotKeys;
  /** Every slot, 0..k-1. */
  all(): SlotKeys[];
  /** `names` grouped by slot, each group in the order given. */
  group<T>(items: readonly T[], nameOf: (item: T) => string): Map<SlotKeys, T[]>;
}

/** The routing of a storage with `k` slots over `storage`'s keys. */
export function slotRouting(storage: StorageKeys, k: number): SlotRouting {
  const slots: SlotKeys[] = Array.from({ length: k }, (_, j) => ({
    slot: j,
    data: storage.slotData(j),
    versions: storage.slotVersions(j),
    floor: storage.slotFloor(j),
  }));
  const slot = (j: number) => slots[j] as SlotKeys;
  return {
    k,
    slot,
    slotFor: (name) => slot(slotOf(name, k)),
    all: () => [...slots],
    group(items, nameOf) {
      const out = new Map<SlotKeys, (typeof items)[number][]>();
      for (const item of items) {
        const keys = slot(slotOf(nameOf(item), k));
        const list = out.get(keys);
        if (list === undefined) {
          out.set(keys, [item]);
        } else {
          list.push(item);
        }
      }
      return out;
    },
  };
}
