/**
 * The storage part of a restore when the entries live in data slots (SPROCD_STORAGE_SLOTS > 1): the
 * entries are staged per slot (a hash next to each slot's entries), and after restoreSwap-5.lua put
 * back the identity and the counter under `{prefix}`:
 * 1. the `restoring` key is set: until step 4 no multi-slot commit decides (lockCommit-n.lua counts
 *    its locks as lost: LOCK_LOST, nothing written); every storage lock is broken, and the restore
 *    takes a fencing token F;
 * 2. each slot's staged hash replaces its entries, its versions are cleared and its floor becomes F:
 *    no tx decided before step 1 (token < F) is applied after the swap, by its committer or by a
 *    recovery;
 * 3. the locks are broken once more: a `use` that took a lock before the swaps ended, and so may have
 *    read an entry from before the restore, finds it gone at its decide;
 * 4. the `restoring` key is deleted (it has a lease of 2 minutes should the node die before).
 * The slots are swapped one by one: a read outside `use` during those milliseconds may see some
 * slots restored and others not (docs/ARCHITECTURE.md, "Storage entries in their own slots").
 */
import { scanKeys } from '../redis/cluster.js';
import type { Keys } from '../redis/keys.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { storageSlotSwap } from '../redis/scripts.js';
import { slotRouting, type SlotKeys, type SlotRouting } from '../session/slots.js';

/** How long commits stay refused should the restoring node die in the middle of its swaps. */
const RESTORING_LEASE_MS = 120_000;

/** The staged entries of one restore, slot by slot. */
export class SlotStaging {
  private readonly routing: SlotRouting;
  private readonly staged = new Set<SlotKeys>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly token: string,
    k: number,
    private readonly ttlMs: number,
  ) {
    this.routing = slotRouting(keys.storage, k);
  }

  private stagedOf(slot: SlotKeys): string {
    return this.keys.storage.slotStaged(slot.slot, this.token);
  }

  /** Stages `flat` (name, JSON, name, JSON, ...): one MULTI per slot. */
  async stage(flat: readonly string[]): Promise<void> {
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) {
      pairs.push([flat[i] as string, flat[i + 1] as string]);
    }
    for (const [slot, list] of this.routing.group(pairs, (p) => p[0])) {
      const key = this.stagedOf(slot);
      await this.redis
        .multi()
        .hset(key, ...list.flat())
        .pexpire(key, this.ttlMs)
        .exec();
      this.staged.add(slot);
    }
  }

  /** Distinct entries staged. */
  async count(): Promise<number> {
    const counts = await Promise.all([...this.staged].map((slot) => this.redis.hlen(this.stagedOf(slot))));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Steps 1 to 3 above. */
  async swap(): Promise<void> {
    const { storage } = this.keys;
    await this.redis.set(storage.restoring, '1', 'PX', RESTORING_LEASE_MS);
    try {
      await this.breakLocks();
      const token = await this.redis.incr(storage.fence);
      for (const slot of this.routing.all()) {
        await storageSlotSwap(this.redis, slot, this.stagedOf(slot), this.staged.has(slot), token);
      }
      await this.breakLocks();
    } finally {
      await this.redis.del(storage.restoring);
    }
  }

  /** Removes what is still staged; never throws. */
  async discard(): Promise<void> {
    for (const slot of this.staged) {
      await this.redis.unlink(this.stagedOf(slot)).catch(() => undefined);
    }
  }

  /** Deletes every storage lock (all under `{prefix}`: one DEL per batch). */
  private async breakLocks(): Promise<void> {
    const prefix = this.keys.storage.lock('');
    const pattern = `${prefix.replace(/[*?[\]\\]/g, '\\$&')}*`;
    for await (const batch of scanKeys(this.redis, pattern, 1000)) {
      await this.redis.del(...batch);
    }
  }
}
