/**
 * The commit runner: ends a `use` with one lockCommit-n.lua, which checks that each lock still carries
 * the holder's token (fencing), writes the changes, deletes the locks and grants each to the next live
 * waiter, all or nothing. Waiters of this node deferred on these keys ride the commit: they join the
 * queues in the same script, before the locks are handed on (see lock-handoff.ts and
 * docs/ARCHITECTURE.md, "Storage locks and fencing").
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import {
  lockCommit,
  type CommitEntry,
  type CommitReply,
  type LockTimes,
  type RunFence,
} from '../redis/scripts.js';
import type { HeldLock } from './lock-grant.js';
import type { LocalHandoff } from './lock-handoff.js';
import { mapRedisError } from './lock-redis-errors.js';
import type { Waiter } from './lock-waiter.js';
import type { StorageLayout } from './layout.js';

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
}

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
  ): Promise<{ lost: string } | 'fenced' | undefined> {
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
    let reply: CommitReply;
    try {
      reply = await lockCommit(this.o.redis, this.o.layout, this.o.times, this.o.nodeId, entries, fence);
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
    handoff.letGo(keys);
    for (const [key, joining] of riders) {
      for (const w of joining) {
        this.o.queued(w, key, this.o.times.leaseMs);
      }
    }
    // Locks handed to this node's own waiters came back in the reply: wake them now.
    for (const message of reply.grants) {
      this.o.onGrantMessage(message);
    }
    // Waiters that arrived while this commit was on its way, for keys no waiter here holds now.
    for (const key of keys) {
      handoff.flushIfLetGo(key);
    }
    if (reply.ok) {
      return undefined;
    }
    return reply.fenced ? 'fenced' : { lost: reply.lost[0] ?? '' };
  }
}
