/**
 * Steps 2 and 3 of a multi-slot commit (SPROCD_STORAGE_SLOTS > 1), and the recovery of a tx in doubt.
 * lockCommit-n.lua decided the tx (step 1: its record is the commit point); here its changes are
 * applied per data slot (storageApply-2.lua, version-checked, so a repeated or late apply writes
 * nothing newer commits wrote) and then finished (lockFinish-n.lua: the locks are released and
 * handed on). A node that finds a lock marked with a tx whose lease ran out (its committer died or
 * stalled) re-applies the tx from its record and finishes it (docs/ARCHITECTURE.md, "Storage entries
 * in their own slots").
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { NO_ACKS, type AckTicket, type WriteAcks } from '../redis/replica-acks.js';
import { lockFinish, storageApply, type LockTimes, type TxChange } from '../redis/scripts.js';
import type { StorageLayout } from './layout.js';
import type { SlotKeys } from './slots.js';

/** A tx record as lockCommit-n.lua writes it. */
export interface TxRecord {
  /** The commit's fencing token (the tx id). */
  readonly token: string;
  readonly changes: TxChange[];
  /** Every lock of the commit, changed or not. */
  readonly names: string[];
}

/** Options of {@link TxRunner}. */
export interface TxRunnerOptions {
  redis: RedisConnection;
  layout: StorageLayout;
  times: LockTimes;
  /** SPROCD_REPLICA_ACKS for the writes of data slot `slot` (its own master on a Cluster). */
  slotAcks?: (slot: SlotKeys) => WriteAcks;
}

/** Applies and finishes the txs of one node. */
export class TxRunner {
  private readonly o: TxRunnerOptions;

  constructor(options: TxRunnerOptions) {
    this.o = options;
  }

  /**
   * Step 2: writes `changes` with `token` into their slots (one script per slot, in parallel).
   * Returns the confirmations to wait for (SPROCD_REPLICA_ACKS), one per slot written.
   */
  async apply(token: string, changes: readonly TxChange[]): Promise<(() => Promise<void>)[]> {
    const bySlot = this.o.layout.slots.group(changes, (c) => c[0]);
    const confirms: (() => Promise<void>)[] = [];
    await Promise.all(
      [...bySlot].map(async ([slot, list]) => {
        const acks = this.o.slotAcks?.(slot) ?? NO_ACKS;
        const ticket: AckTicket = acks.ticket();
        await storageApply(this.o.redis, slot, token, list);
        confirms.push(() => acks.confirm(ticket));
      }),
    );
    return confirms;
  }

  /** Step 3: releases the locks of `names` still marked with tx `id` and hands them on. */
  finish(
    id: string,
    names: readonly string[],
    node: string,
  ): Promise<{ finished: boolean; grants: string[] }> {
    return lockFinish(this.o.redis, this.o.layout, this.o.times, node, id, names);
  }

  /**
   * Recovery of tx `id` found in doubt on the lock of `name`: re-applies it from its record and finishes
   * it; every grant goes to an inbox. Without a record (finished meanwhile) only that lock is freed,
   * should it still carry the tx.
   */
  async recover(id: string, name: string): Promise<void> {
    const json = await this.o.redis.get(this.o.layout.tx(id));
    if (json === null) {
      await this.finish(id, [name], '');
      return;
    }
    const record = JSON.parse(json) as TxRecord;
    await this.apply(record.token, record.changes);
    await this.finish(id, record.names, '');
  }
}
