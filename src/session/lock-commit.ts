/**
 * The commit runner: ends a `use` with one lockCommit-n.lua, which checks that each lock still carries
 * the holder's token (fencing), writes the changes, deletes the locks and grants each to the next live
 * waiter, all or nothing. Waiters of this node deferred on these keys ride the commit: they join the
 * queues in the same script, before the locks are handed on (see lock-handoff.ts and
 * docs/ARCHITECTURE.md, "Storage locks and fencing").
 * With data slots (SPROCD_STORAGE_SLOTS > 1) the script only decides (a tx record, the locks marked
 * with it), and the commit goes on with lock-tx.ts: apply per slot, then finish.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import {
  lockCommit,
  type CommitEntry,
  type CommitReply,
  type LockTimes,
  type RunFence,
  type TxChange,
} from '../redis/scripts.js';
import type { HeldLock } from './lock-grant.js';
import type { LocalHandoff } from './lock-handoff.js';
import { mapRedisError } from './lock-redis-errors.js';
import type { Waiter } from './lock-waiter.js';
import type { StorageLayout } from './layout.js';
import type { TxRunner } from './lock-tx.js';
import type { WriteAcks } from '../redis/replica-acks.js';

/** What the commit does with one entry. */
export type CommitOp = { readonly op: 'set'; readonly json: string } | { readonly op: 'delete' };

/** Options of {@link LockCommitter}. */
export interface LockCommitterOptions {
  redis: RedisConnection;
  layout: StorageLayout;
  times: LockTimes;
  nodeId: string;
  handoff: LocalHandoff;
  /** Stops the heartbeat renewing the lock holding `lockValue`. */
  untrack(lockValue: string): void;
  /** A rider of a commit whose fate is unknown queues on its own. */
  queueAlone(w: Waiter): void;
  /** A rider is now in the queue of `key`, behind a lock whose lease is at most `pttl` ms. */
  queued(w: Waiter, key: string, pttl: number): void;
  /** A grant to a waiter of this node, which came back in the commit's reply. */
  onGrantMessage(message: string): void;
  /** Apply and finish of multi-slot commits (SPROCD_STORAGE_SLOTS > 1). */
  tx: TxRunner;
  /** SPROCD_REPLICA_ACKS on `{prefix}`: a multi-slot commit applies only once replicas have its decide. */
  acks: WriteAcks;
  /** Test hook: runs right after a multi-slot commit was decided, before it is applied. */
  afterDecide?: () => void;
}

/** How a commit ended: written, a lock lost, or the run fence refused (nothing written then). */
export type CommitOutcome = 'written' | { readonly lost: string } | 'fenced';

/** Runs the commits of one node. */
export class LockCommitter {
  private readonly o: LockCommitterOptions;

  constructor(options: LockCommitterOptions) {
    this.o = options;
  }

  /**
   * Writes `ops` (entries not named are left as they are) and releases every lock of `held`; returns
   * the first lost key, or `fenced` when `fence` refused (nothing was written then), or undefined when
   * all was written.
   */
  async run(
    held: readonly HeldLock[],
    ops: ReadonlyMap<string, CommitOp>,
    fence?: RunFence,
  ): Promise<CommitOutcome> {
    const { handoff } = this.o;
    const entries: CommitEntry[] = [];
    const riders: [string, Waiter[]][] = [];
    for (const lock of held) {
      this.o.untrack(lock.lockValue);
      const joining = handoff.takeRiders(lock.key);
      const op = ops.get(lock.key);
      entries.push({
        name: lock.key,
        lockValue: lock.lockValue,
        op: op === undefined ? 'keep' : op.op,
        json: op?.op === 'set' ? op.json : undefined,
        riders: joining.map((w) => w.id),
      });
      riders.push([lock.key, joining]);
    }
    const keys = held.map((lock) => lock.key);
    // With data slots: the commit's token must be above every version read under these locks.
    const floor = Math.max(0, ...held.map((lock) => lock.version ?? 0));
    const ticket = this.o.acks.ticket();
    let reply: CommitReply;
    try {
      reply = await lockCommit(
        this.o.redis,
        this.o.layout,
        this.o.times,
        this.o.nodeId,
        entries,
        fence,
        floor,
      );
    } catch (err) {
      // Whether the script ran is unknown: the riders queue on their own. Should they now be in a
      // queue twice, the second grant finds them done, or holding, and is passed on as an orphan.
      handoff.letGo(keys);
      for (const [, joining] of riders) {
        for (const w of joining) {
          this.o.queueAlone(w);
        }
      }
      throw mapRedisError(err);
    }
    let grants = reply.grants;
    if (reply.tx !== undefined) {
      try {
        grants = await this.completeTx(reply.tx, entries, keys, () => this.o.acks.confirm(ticket));
      } catch (err) {
        // Decided: the changes will be made, by a recovery once the tx lease has run out. The riders
        // are in the queues already (the decide put them there) and wait for that.
        handoff.letGo(keys);
        for (const [key, joining] of riders) {
          for (const w of joining) {
            this.o.queued(w, key, this.o.times.leaseMs);
          }
        }
        throw mapRedisError(err);
      }
    }
    handoff.letGo(keys);
    for (const [key, joining] of riders) {
      for (const w of joining) {
        this.o.queued(w, key, this.o.times.leaseMs);
      }
    }
    // Locks handed to this node's own waiters came back in the reply: wake them now.
    for (const message of grants) {
      this.o.onGrantMessage(message);
    }
    // Waiters that arrived while this commit was on its way, for keys no waiter here holds now.
    for (const key of keys) {
      handoff.flushIfLetGo(key);
    }
    if (reply.ok) {
      return 'written';
    }
    return reply.fenced ? 'fenced' : { lost: reply.lost[0] ?? '' };
  }

  /**
   * Steps 2 and 3 of the multi-slot commit decided as tx `id`. With SPROCD_REPLICA_ACKS each step
   * waits for the replicas of the one before: the decide's before the applies (a decide a fail-over
   * could lose is never applied by this node; a recovery applies it if it survived), and each slot's
   * apply before the finish (an apply a fail-over loses is re-applied from the record by a recovery,
   * as the locks are still marked). A failed confirmation throws NotReplicatedError, the tx unfinished.
   */
  private async completeTx(
    id: string,
    entries: readonly CommitEntry[],
    keys: readonly string[],
    decided: () => Promise<void>,
  ): Promise<string[]> {
    this.o.afterDecide?.();
    await decided();
    const changes: TxChange[] = [];
    for (const e of entries) {
      if (e.op !== 'keep') {
        changes.push([e.name, e.op === 'set' ? 's' : 'd', e.op === 'set' ? (e.json ?? '') : '']);
      }
    }
    const confirms = await this.o.tx.apply(id, changes);
    await Promise.all(confirms.map((confirm) => confirm()));
    const { grants } = await this.o.tx.finish(id, keys, this.o.nodeId);
    return grants;
  }
}
