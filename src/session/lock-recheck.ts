/**
 * Lease expiry of a dead holder: a holder that died sends no wake-up, so each queued waiter checks on
 * the lock it waits for once, when that lock's lease should have run out (lockRecheck-4.lua hands the
 * lock on if so, and puts back a waiter dropped from the queue because its own node stalled). One
 * bounded check per lease, not a polling loop (see docs/ARCHITECTURE.md, "Storage locks and fencing").
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { lockRecheck, type LockTimes } from '../redis/scripts.js';
import type { Waiter } from './lock-waiter.js';
import type { StorageLayout } from './layout.js';

/** Margin after a lease's expected end before a waiter checks on it. */
const RECHECK_MARGIN_MS = 25;

/** Options of {@link LeaseRecheck}. */
export interface LeaseRecheckOptions {
  redis: RedisConnection;
  layout: StorageLayout;
  times: LockTimes;
  logger: Logger;
  /** Whether the lock manager is closed (no check then). */
  closed(): boolean;
  /** (Re)arms the waiter's timer, which calls {@link LeaseRecheck.run} at `recheckAt`. */
  arm(w: Waiter): void;
  /** Re-applies and finishes tx `id`, found in doubt on the lock of `name` (lock-tx.ts). */
  recover(id: string, name: string): Promise<void>;
}

/** The rechecks of the queued waiters of one node. */
export class LeaseRecheck {
  private readonly o: LeaseRecheckOptions;

  constructor(options: LeaseRecheckOptions) {
    this.o = options;
  }

  /** Checks on `w`'s lock when its lease, `pttl` ms now (negative: unknown), should have run out. */
  schedule(w: Waiter, pttl: number): void {
    const { leaseMs } = this.o.times;
    const wait = Math.max(0, Math.min(pttl < 0 ? leaseMs : pttl, leaseMs)) + RECHECK_MARGIN_MS;
    w.recheckAt = Date.now() + wait;
    this.o.arm(w);
  }

  /** No check for `w` any more (it got its lock, or leaves the queue). */
  clear(w: Waiter): void {
    w.recheckAt = undefined;
  }

  /** Runs lockRecheck-4.lua for `w`, and schedules the next check if the lock is still held. */
  async run(w: Waiter): Promise<void> {
    const key = w.waitingKey;
    if (w.state !== 'waiting' || key === undefined || this.o.closed()) {
      return;
    }
    try {
      const { granted, pttl, inDoubt } = await lockRecheck(
        this.o.redis,
        this.o.layout,
        this.o.times,
        key,
        w.id,
      );
      if (inDoubt !== undefined) {
        // The committer of a multi-slot commit stopped after deciding it: finish its work. The lock
        // then goes to the head of the queue; check again at once in case that is `w`'s turn.
        this.o.logger.warn({ key, tx: inDoubt }, 'session: recovering a storage commit in doubt');
        await this.o.recover(inDoubt, key);
      }
      if (!granted && w.state === 'waiting' && w.waitingKey === key) {
        this.schedule(w, pttl);
      }
    } catch (err) {
      this.o.logger.warn({ err, key }, 'session: lock re-check failed; trying again after a lease');
      if (w.state === 'waiting' && w.waitingKey === key) {
        this.schedule(w, this.o.times.leaseMs);
      }
    }
  }
}
