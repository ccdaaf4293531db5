/**
 * The storage as the console shows it: every entry with its size, and every lock with its holder,
 * its lease and its queue of waiters, read from Redis (so from any node). Locks on keys that have no
 * entry yet (a `use` creating one) are found with SCAN over the lock keys.
 */
import type { Redis } from 'ioredis';
import type { StorageKeys } from '../redis/keys.js';
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

/** Every entry and every lock of the storage, sorted by key. */
export async function storageReport(redis: Redis, keys: StorageKeys): Promise<EntryReport[]> {
  const lockPrefix = keys.lock('');
  const locked = new Set<string>();
  let cursor = '0';
  do {
    const [next, found] = await redis.scan(
      cursor,
      'MATCH',
      `${escapeGlob(lockPrefix)}*`,
      'COUNT',
      SCAN_COUNT,
    );
    cursor = next;
    for (const k of found) {
      locked.add(k.slice(lockPrefix.length));
    }
  } while (cursor !== '0');
  const names = await redis.hkeys(keys.data);
  const stored = new Set(names);
  const all = [...new Set([...names, ...locked])].sort();
  const pipeline = redis.pipeline();
  for (const name of all) {
    pipeline.hstrlen(keys.data, name);
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
  const out: EntryReport[] = [];
  for (const name of all) {
    const size = Number(next());
    const report: EntryReport = { key: name, size: stored.has(name) ? size : null };
    if (locked.has(name)) {
      const value = next() as string | null;
      const ttl = Number(next());
      const queue = next() as string[];
      const colon = value?.indexOf(':') ?? -1;
      if (value !== null && colon > 0) {
        report.lock = {
          holder: describeWaiter(value.slice(colon + 1)),
          leaseUntil: new Date(now + Math.max(ttl, 0)).toISOString(),
          waiters: queue.map(describeWaiter),
        };
      }
    }
    if (report.size !== null || report.lock) {
      out.push(report);
    }
  }
  return out;
}
