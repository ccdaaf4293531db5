/**
 * A node's lock heartbeat: every lease/3 it keeps the node's `alive` key and renews the lease of each
 * lock the node still holds, with the lock's own value, so a lock lost meanwhile is not taken back. A
 * node that dies stops beating: its locks expire, and the lock scripts skip its queued waiters once its
 * alive key has expired too (see docs/ARCHITECTURE.md, "Storage locks and fencing").
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { lockHeartbeat } from '../redis/scripts.js';
import type { HeldLock } from './lock-grant.js';
import type { StorageLayout } from './layout.js';
import { mapRedisError } from './lock-redis-errors.js';

/** Options of {@link LockHeartbeat}. */
export interface LockHeartbeatOptions {
  redis: RedisConnection;
  layout: StorageLayout;
  nodeId: string;
  leaseMs: number;
  logger: Logger;
  /** Test hook: while it returns true, the heartbeat does not renew lock leases. */
  skipLockRenewal?: () => boolean;
}

/** The heartbeat of one node, and the locks it renews. */
export class LockHeartbeat {
  private readonly o: LockHeartbeatOptions;
  /** Locks this node holds: lock value → key. */
  private readonly renewals = new Map<string, string>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;
  private stopped = false;

  constructor(options: LockHeartbeatOptions) {
    this.o = options;
  }

  /** Marks the node alive (throwing when Redis cannot be reached), then beats every lease/3. */
  async start(): Promise<void> {
    await this.beat(true);
    const every = Math.max(Math.floor(this.o.leaseMs / 3), 10);
    this.timer = setInterval(() => void this.beat(false), every);
    this.timer.unref();
  }

  /** Renews `lock` from now on, until {@link untrack}. */
  track(lock: HeldLock): void {
    this.renewals.set(lock.lockValue, lock.key);
  }

  /** Stops renewing the lock holding `lockValue` (its commit is on its way). */
  untrack(lockValue: string): void {
    this.renewals.delete(lockValue);
  }

  /** Stops beating; the locks still held expire with their lease. */
  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) {
      clearInterval(this.timer);
    }
  }

  /** Deletes the alive key, so other nodes skip whatever this node still had queued at once. */
  async leave(): Promise<void> {
    await this.o.redis.del(this.o.layout.alive(this.o.nodeId)).catch(() => undefined);
  }

  private async beat(first: boolean): Promise<void> {
    if (this.busy || (this.stopped && !first)) {
      return;
    }
    this.busy = true;
    const renew = this.o.skipLockRenewal?.() === true ? [] : [...this.renewals];
    try {
      const lost = await lockHeartbeat(
        this.o.redis,
        this.o.layout,
        this.o.leaseMs,
        this.o.nodeId,
        renew.map(([lockValue, name]) => ({ name, lockValue })),
      );
      for (const index of lost) {
        const entry = renew[index];
        if (entry !== undefined && this.renewals.has(entry[0])) {
          this.o.logger.warn(
            { key: entry[1] },
            'session: a lock lease ran out before it was renewed; the use holding it cannot commit',
          );
        }
      }
    } catch (err) {
      if (first) {
        throw mapRedisError(err);
      }
      this.o.logger.warn(
        { err },
        'session: heartbeat failed; locks expire unless it recovers within the lease',
      );
    } finally {
      this.busy = false;
    }
  }
}
