/**
 * The storage part of a backup's snapshot when the entries live in data slots (SPROCD_STORAGE_SLOTS >
 * 1): each slot is copied on its own master (COPY of its entries and versions, in one MULTI per slot),
 * one slot after the other. A multi-slot commit running meanwhile may be in one copy and not yet in
 * another; so, once every slot is copied, the records of the txs of that moment (those in flight, and
 * those finished within the last 10 minutes: lockFinish-n.lua keeps them) are applied to the copies,
 * with the same version check as the commits themselves (storageApply-3.lua). Every tx of which any
 * part is in the copies is then in them whole, and the copies hold a state some order of the commits
 * reaches (docs/ARCHITECTURE.md, "Storage entries in their own slots").
 */
import { scanKeys } from '../redis/cluster.js';
import type { Keys } from '../redis/keys.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import { storageApply } from '../redis/scripts.js';
import type { TxRecord } from '../session/lock-tx.js';
import { slotRouting, type SlotKeys, type SlotRouting } from '../session/slots.js';

/** The copies vanish by themselves after this if a node dies mid-backup. */
const SNAPSHOT_TTL_MS = 3_600_000;

/** The slot copies of backup `number`. */
export class SlotSnapshot {
  private readonly routing: SlotRouting;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly number: number,
    k: number,
  ) {
    this.routing = slotRouting(keys.storage, k);
  }

  /**
   * The copy of slot `j`: its `data` and `ver` hashes, and the slot's own floor (a restore's: the txs
   * from before it, whose finished records may still be around, are not rolled into the copies).
   */
  copyOf(slot: SlotKeys): SlotKeys {
    const { storage } = this.keys;
    return {
      slot: slot.slot,
      data: storage.slotSnapshot(slot.slot, this.number, 'data'),
      versions: storage.slotSnapshot(slot.slot, this.number, 'ver'),
      floor: slot.floor,
    };
  }

  /** The entries hash of each copy, slot after slot. */
  dataCopies(): string[] {
    return this.routing.all().map((slot) => this.copyOf(slot).data);
  }

  /** Copies every slot, then rolls the txs of that moment forward in the copies. */
  async take(): Promise<void> {
    for (const slot of this.routing.all()) {
      const copy = this.copyOf(slot);
      const res = await this.redis
        .multi()
        .copy(slot.data, copy.data, 'REPLACE')
        .pexpire(copy.data, SNAPSHOT_TTL_MS)
        .copy(slot.versions, copy.versions, 'REPLACE')
        .pexpire(copy.versions, SNAPSHOT_TTL_MS)
        .exec();
      for (const [err] of res ?? []) {
        if (err) {
          throw err;
        }
      }
    }
    for (const record of await this.txRecords()) {
      const bySlot = this.routing.group(record.changes, (c) => c[0]);
      for (const [slot, changes] of bySlot) {
        await storageApply(this.redis, this.copyOf(slot), record.token, changes);
      }
    }
  }

  /** Entries in the copies. */
  async size(): Promise<number> {
    const counts = await Promise.all(this.dataCopies().map((copy) => this.redis.hlen(copy)));
    return counts.reduce((sum, n) => sum + n, 0);
  }

  /** Removes the copies; never throws. */
  async discard(): Promise<void> {
    for (const slot of this.routing.all()) {
      const copy = this.copyOf(slot);
      // Two keys of one slot: one UNLINK, on a Cluster too.
      await this.redis.unlink(copy.data, copy.versions).catch(() => undefined);
    }
  }

  /** The records of the txs in flight and of those finished lately, oldest first. */
  private async txRecords(): Promise<TxRecord[]> {
    const { storage } = this.keys;
    const names: string[] = [];
    for (const pattern of [`${storage.tx('')}*`, `${storage.txDone('')}*`]) {
      for await (const batch of scanKeys(this.redis, pattern, 1000)) {
        names.push(...batch);
      }
    }
    const records: TxRecord[] = [];
    for (const name of names) {
      const json = await this.redis.get(name);
      if (json !== null) {
        records.push(JSON.parse(json) as TxRecord);
      }
    }
    return records.sort((a, b) => Number(a.token) - Number(b.token));
  }
}
