/**
 * The storage as the console shows it, page by page: each entry with its size, and each lock with its
 * holder, its lease and its queue of waiters, read from Redis (so from any node) without reading the
 * entries' values. Locks on keys that have no entry yet (a `use` creating one) are found with SCAN
 * over the lock keys, on the first page.
 */
import { scanKeys } from '../redis/cluster.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { ValidationError } from '../errors.js';
import type { StorageKeys } from '../redis/keys.js';
import { storageScan } from '../redis/scripts.js';
import type { SlotRouting } from './slots.js';
import { describeWaiter, type LockParty } from './lock-owner.js';

/** One key of the storage. */
export interface EntryReport {
  key: string;
  /** Bytes of the entry's JSON; null when the key has a lock but no entry. */
  size: number | null;
  lock?: {
    holder: LockParty;
    /** When the holder's lease runs out unless its node renews it. */
    leaseUntil: string;
    /** Oldest first. */
    waiters: LockParty[];
  };
}

/** Keys asked per SCAN call. */
const SCAN_COUNT = 1000;

/** Characters SCAN's MATCH treats as pattern syntax. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** What a page of the storage listing asks for. */
export interface StoragePageQuery {
  /** The previous page's `nextCursor`. */
  cursor?: string;
  /** @defaultValue {@link STORAGE_PAGE_SIZE} */
  limit?: number;
}

/** One page of the storage listing. */
export interface StoragePage {
  items: EntryReport[];
  /** Where the next page starts; absent on the last page. */
  nextCursor?: string;
}

/** Entries a page lists by default, and at most. */
export const STORAGE_PAGE_SIZE = 1000;
export const MAX_STORAGE_PAGE_SIZE = 5000;
/** Entries asked per HSCAN step: the script holds that many values at once, up to the entry size each. */
const HSCAN_COUNT = 50;

/**
 * A page of the storage: about `limit` entries (HSCAN's order, sorted by key within the page) with
 * their sizes and locks; the first page also lists the locks on keys that have no entry yet. An entry
 * written while the pages are read may be listed twice or not at all (HSCAN's guarantee: every entry
 * there the whole time is listed).
 */
export async function storageReport(
  redis: RedisConnection,
  keys: StorageKeys & { readonly slots?: SlotRouting },
  query: StoragePageQuery = {},
): Promise<StoragePage> {
  const limit = query.limit ?? STORAGE_PAGE_SIZE;
  const first = query.cursor === undefined || query.cursor === '';
  const k = keys.slots?.k ?? 1;
  // With data slots (SPROCD_STORAGE_SLOTS > 1) the cursor is "<slot>.<HSCAN cursor>": slot after slot.
  let [slot, cursor] = first ? [0, '0'] : decodeStorageCursor(query.cursor as string, k);
  const sizes = new Map<string, number>();
  let done = false;
  while (!done && sizes.size < limit) {
    const hash = k > 1 && keys.slots ? keys.slots.slot(slot).data : keys.data;
    const step = await storageScan(redis, hash, cursor, Math.min(HSCAN_COUNT, limit));
    cursor = step.next;
    step.entries.forEach((e) => sizes.set(e.name, e.size));
    if (cursor === '0') {
      // This hash is done: the next slot from its start, or the end of the listing.
      done = slot + 1 >= k;
      slot = done ? slot : slot + 1;
    }
  }
  const locked = new Set<string>();
  const check = redis.pipeline();
  for (const name of sizes.keys()) {
    check.exists(keys.lock(name));
  }
  const exists = (await check.exec()) ?? [];
  [...sizes.keys()].forEach((name, i) => {
    if (exists[i]?.[1] === 1) {
      locked.add(name);
    }
  });
  if (first) {
    (await lockedKeys(redis, keys)).forEach((name) => locked.add(name));
  }
  const all = [...new Set([...sizes.keys(), ...locked])].sort();
  const pipeline = redis.pipeline();
  for (const name of all) {
    if (locked.has(name)) {
      pipeline.get(keys.lock(name)).pttl(keys.lock(name)).lrange(keys.queue(name), 0, -1);
    }
  }
  const res = (await pipeline.exec()) ?? [];
  let i = 0;
  const next = (): unknown => {
    const [err, value] = res[i++] ?? [new Error('no answer')];
    if (err) {
      throw err;
    }
    return value;
  };
  const now = Date.now();
  const items: EntryReport[] = [];
  for (const name of all) {
    const report: EntryReport = { key: name, size: sizes.get(name) ?? null };
    if (locked.has(name)) {
      const value = next() as string | null;
      const ttl = Number(next());
      const queue = next() as string[];
      const colon = value?.indexOf(':') ?? -1;
      if (value !== null && colon > 0) {
        report.lock = {
          // "tx:<id>": a multi-slot commit being applied (SPROCD_STORAGE_SLOTS > 1), no waiter's.
          holder: value.startsWith('tx:')
            ? { owner: `commit ${value.slice(3)} (applying)` }
            : describeWaiter(value.slice(colon + 1)),
          leaseUntil: new Date(now + Math.max(ttl, 0)).toISOString(),
          waiters: queue.map(describeWaiter),
        };
      }
    }
    if (report.size !== null || report.lock) {
      items.push(report);
    }
  }
  if (done) {
    return { items };
  }
  const resume = k > 1 ? `${slot}.${cursor}` : cursor;
  return { items, nextCursor: Buffer.from(resume).toString('base64url') };
}

/** The slot and HSCAN cursor a page's `nextCursor` carries. */
function decodeStorageCursor(raw: string, k: number): [number, string] {
  const text = Buffer.from(raw, 'base64url').toString('utf8');
  const match = k > 1 ? /^(\d{1,5})\.(0|[1-9]\d{0,19})$/.exec(text) : /^()([1-9]\d{0,19})$/.exec(text);
  const slot = Number(match?.[1] || 0);
  if (match === null || slot >= k) {
    throw new ValidationError('Bad query: cursor: pass the nextCursor of the previous page as it came.');
  }
  return [slot, match[2] as string];
}

/** The keys that have a lock (SCAN over the lock keys: a `use` creating an entry locks a key it lacks). */
async function lockedKeys(redis: RedisConnection, keys: StorageKeys): Promise<string[]> {
  const lockPrefix = keys.lock('');
  const found: string[] = [];
  for await (const batch of scanKeys(redis, `${escapeGlob(lockPrefix)}*`, SCAN_COUNT)) {
    found.push(...batch.map((k) => k.slice(lockPrefix.length)));
  }
  return found;
}
