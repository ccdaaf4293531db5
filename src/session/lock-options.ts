/**
 * The options of the LockManager (locks.ts), on their own so that the manager's module stays about its
 * protocol.
 */
import type { Logger } from 'pino';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { WriteAcks } from '../redis/replica-acks.js';
import type { StorageLayout } from './layout.js';
import type { SlotKeys } from './slots.js';

/** Options of {@link LockManager}. */
export interface LockManagerOptions {
  /** Shared command connection (scripts, heartbeat). */
  redis: RedisConnection;
  /** Dedicated connection for the blocking inbox read; the manager owns its loop, not its life. */
  blocking: RedisConnection;
  layout: StorageLayout;
  /** This process's id in waiter ids and in the alive and inbox keys: no "." nor ":" in it. */
  nodeId: string;
  leaseMs: number;
  timeoutMs: number;
  logger: Logger;
  /** Test hook: while it returns true, the heartbeat does not renew lock leases. */
  skipLockRenewal?: () => boolean;
  /** SPROCD_REPLICA_ACKS: a commit that wrote returns once replicas have it (src/redis/replica-acks.ts). */
  acks?: WriteAcks;
  /** SPROCD_REPLICA_ACKS for the writes of a data slot (SPROCD_STORAGE_SLOTS > 1). */
  slotAcks?: (slot: SlotKeys) => WriteAcks;
  /** Test hook: runs right after a multi-slot commit was decided, before it is applied. */
  afterDecide?: () => void;
}
