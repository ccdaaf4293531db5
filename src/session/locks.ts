/**
 * Cluster-wide exclusive locks on storage entries, with FIFO hand-off, leases and fencing.
 *
 * - Taking locks (lockAcquire-n.lua) takes every free lock of a `use` in one round trip, in sorted key
 *   order, and returns the entries' JSON with them. When a lock is held, the waiter is appended to
 *   that lock's queue (a Redis list) and waits; it holds the keys before it, never any after it, so
 *   two uses on overlapping keys cannot deadlock.
 * - Releasing (lockCommit-n.lua) writes the changes, deletes the lock and grants it to the next live waiter
 *   in the same script: the grant sets the lock for the waiter (with a fresh fencing token) and pushes
 *   a message with the entry's JSON to the inbox of the waiter's node. One blocking connection per
 *   node reads that inbox (BLMPOP: every waiting grant at once) and wakes the waiter: no polling, one
 *   connection however many wait.
 *   A grant to a waiter of the committing node itself comes back in the commit's reply instead.
 * - A waiter that arrives while its own node holds the key does not queue on its own: it joins the
 *   queue inside that holder's commit (or after RIDE_MAX_MS, if the holder takes longer).
 *   Queue order stays the order in which waiters reach Redis; a hot key then costs one round trip
 *   per use instead of two.
 * - A holder's lease is renewed by the node's heartbeat (every lease/3), which also keeps the node's
 *   `alive` key. A holder that died stops renewing: its locks expire, and its queued waiters are
 *   skipped once its alive key has expired too. As the dead holder sends no wake-up, each waiter sets
 *   one timer for the moment the lease it waits on should run out and then checks (lockRecheck-4.lua): a
 *   bounded check per lease, not a polling loop.
 * - A commit checks that each lock still carries the holder's token; if any lease ran out meanwhile
 *   nothing is written and the caller gets LockLostError.
 *
 * This module is the LockManager: its API and the state machine of its waiters (lock-waiter.ts). The
 * other jobs have a module each, which the manager wires together: lock-inbox.ts (the inbox reader),
 * lock-heartbeat.ts (the alive key and lease renewals), lock-handoff.ts (waiters deferred to ride a
 * commit of their own node), lock-commit.ts (the commit runner), lock-recheck.ts (the check on a dead
 * holder's lease), lock-grant.ts (held locks and grant messages), lock-redis-errors.ts (Redis trouble
 * as REDIS_UNAVAILABLE). See docs/ARCHITECTURE.md, "Storage locks and fencing".
 */
import { NO_ACKS } from '../redis/replica-acks.js';
import {
  lockAcquire,
  lockCancel,
  type AcquireReply,
  type LockTimes,
  type RunFence,
} from '../redis/scripts.js';
import { LockLostError, LockTimeoutError, RunFencedError, SessionClosedError } from './errors.js';
import { LockCommitter, type CommitOp } from './lock-commit.js';
import { parseGrant, type HeldLock } from './lock-grant.js';
import { LocalHandoff } from './lock-handoff.js';
import { LockHeartbeat } from './lock-heartbeat.js';
import { LockInbox } from './lock-inbox.js';
import { LeaseRecheck } from './lock-recheck.js';
import { mapRedisError } from './lock-redis-errors.js';
import { armWaiter, disarmWaiter, newWaiter, type Waiter } from './lock-waiter.js';
import type { LockManagerOptions } from './lock-options.js';
import { TxRunner } from './lock-tx.js';
import { readSlotValues, type SlotValue } from './slot-reads.js';

// What storage.ts and index.ts use of the lock modules, so they import the manager's module only.
export type { LockManagerOptions } from './lock-options.js';
export type { CommitOp } from './lock-commit.js';
export type { RunFence } from '../redis/scripts.js';
export type { HeldLock } from './lock-grant.js';
export { mapRedisError } from './lock-redis-errors.js';

/** The locks of one node (one open session service). */
export class LockManager {
  private readonly o: LockManagerOptions;
  private readonly times: LockTimes;
  private readonly waiters = new Map<string, Waiter>();
  private readonly heartbeat: LockHeartbeat;
  private readonly inbox: LockInbox;
  private readonly handoff: LocalHandoff;
  private readonly committer: LockCommitter;
  private readonly recheck: LeaseRecheck;
  private seq = 0;
  private closed = false;
  /** Set by stopWaiting: no new acquisitions, and waiters are sent away. */
  private stopping = false;

  constructor(options: LockManagerOptions) {
    this.o = options;
    this.times = { leaseMs: options.leaseMs, inboxTtlMs: Math.max(10 * options.leaseMs, 60_000) };
    this.heartbeat = new LockHeartbeat(options);
    this.inbox = new LockInbox({
      blocking: options.blocking,
      inbox: options.layout.inbox(options.nodeId),
      logger: options.logger,
      onMessage: (message) => this.onMessage(message),
    });
    this.handoff = new LocalHandoff((w) => this.sendAcquire(w));
    // Apply, finish and recovery of multi-slot commits (SPROCD_STORAGE_SLOTS > 1).
    const tx = new TxRunner({ ...options, times: this.times });
    this.committer = new LockCommitter({
      ...options,
      tx,
      acks: options.acks ?? NO_ACKS,
      times: this.times,
      handoff: this.handoff,
      untrack: (lockValue) => this.heartbeat.untrack(lockValue),
      queueAlone: (w) => this.sendAcquire(w),
      queued: (w, key, pttl) => this.queued(w, key, pttl),
      onGrantMessage: (message) => this.onMessage(message),
    });
    this.recheck = new LeaseRecheck({
      ...options,
      times: this.times,
      closed: () => this.closed,
      arm: (w) => this.arm(w),
      recover: (id, name) => tx.recover(id, name),
    });
  }

  /** Marks the node alive and starts the heartbeat and the inbox reader. */
  async start(): Promise<void> {
    await this.heartbeat.start();
    this.inbox.start();
  }

  /**
   * Takes the locks on `keys` (sorted, distinct), waiting in queue order for those held elsewhere.
   * Rejects with LockTimeoutError after the wait time-out, naming the key it waited for. `label`
   * (see lock-owner.ts; no "\n" in it) is appended to the waiter id: who waits.
   */
  acquire(keys: readonly string[], label?: string): Promise<HeldLock[]> {
    if (this.stopping) {
      return Promise.reject(new SessionClosedError());
    }
    return new Promise<HeldLock[]>((resolve, reject) => {
      const id = `${this.o.nodeId}.${++this.seq}${label ? `.${label}` : ''}`;
      const waiter = newWaiter(id, keys, Date.now() + this.o.timeoutMs, resolve, reject);
      this.waiters.set(waiter.id, waiter);
      this.step(waiter);
    });
  }

  /**
   * Ends a `use`: writes `ops` (entries not named are left as they are) and releases every lock in
   * one script. Throws LockLostError, having written nothing, when any lease ran out, and
   * RunFencedError when `fence`'s key no longer holds its value where the commit ran.
   */
  async commit(
    held: readonly HeldLock[],
    ops: ReadonlyMap<string, CommitOp>,
    fence?: RunFence,
  ): Promise<void> {
    const acks = this.o.acks ?? NO_ACKS;
    const ticket = acks.ticket();
    const outcome = await this.committer.run(held, ops, fence);
    if (outcome === 'fenced') {
      throw new RunFencedError();
    }
    if (outcome !== 'written') {
      throw new LockLostError(outcome.lost);
    }
    if (ops.size > 0) {
      // Written, locks handed on; the `use` returns once replicas have it (NotReplicatedError if not).
      // With data slots each slot's master confirmed its apply already (lock-commit.ts).
      await acks.confirm(ticket);
    }
  }

  /** Releases locks without writing; a lock already lost is not an error here. */
  async release(held: readonly HeldLock[]): Promise<void> {
    if (held.length > 0) {
      await this.committer.run(held, new Map());
    }
  }

  /**
   * Refuses new acquisitions and ends every waiting one with SessionClosedError (taking it out of its
   * queue). Locks already held stay held, and renewed, until they are committed or released.
   */
  async stopWaiting(): Promise<void> {
    this.stopping = true;
    const pending = [...this.waiters.values()].filter((w) => w.state !== 'done');
    await Promise.allSettled(pending.map((w) => this.giveUp(w, new SessionClosedError())));
  }

  /** Stops waiting (see {@link stopWaiting}), the heartbeat and the inbox reader. */
  async close(): Promise<void> {
    if (this.closed) {
      return;
    }
    await this.stopWaiting();
    this.closed = true;
    this.heartbeat.stop();
    this.handoff.close();
    // The blocking read ends here; the owner closes its connection after this returns.
    await this.inbox.close();
    // Let other nodes skip whatever this node still had queued (grants in flight, if any, expire).
    await this.heartbeat.leave();
  }

  // ---- acquiring ---------------------------------------------------------------------------------

  /** Goes for the next keys: defers when this node holds the next one, else runs lockAcquire-n.lua. */
  private step(w: Waiter): void {
    const next = w.keys[w.held.length] as string;
    if (this.handoff.holds(next)) {
      this.defer(w, next);
      return;
    }
    this.sendAcquire(w);
  }

  /** Runs lockAcquire-n.lua for the keys `w` does not hold yet. */
  private sendAcquire(w: Waiter): void {
    const rest = w.keys.slice(w.held.length);
    w.state = 'acquiring';
    lockAcquire(this.o.redis, this.o.layout, this.times, w.id, rest).then(
      (reply) => this.onAcquired(w, rest, reply),
      (err: unknown) => this.abandon(w, mapRedisError(err)),
    );
  }

  private onAcquired(w: Waiter, rest: readonly string[], reply: AcquireReply): void {
    const { lockValue, values } = reply;
    for (let i = 0; i < values.length; i++) {
      this.hold(w, { key: rest[i] as string, lockValue, json: values[i] });
    }
    if (reply.complete) {
      this.finish(w);
      return;
    }
    this.queued(w, rest[values.length] as string, reply.pttl);
  }

  /** `w` is now in the queue of `key` (lockAcquire-n.lua or a commit put it there). */
  private queued(w: Waiter, key: string, pttl: number): void {
    w.state = 'waiting';
    w.waitingKey = key;
    if (w.pendingGrant !== undefined) {
      const grant = w.pendingGrant;
      w.pendingGrant = undefined;
      this.onGrant(w, grant);
      return;
    }
    if (this.stopping) {
      void this.cancel(w, new SessionClosedError());
      return;
    }
    if (w.timedOut || Date.now() >= w.deadline) {
      void this.cancel(w, new LockTimeoutError(key, this.o.timeoutMs));
      return;
    }
    this.recheck.schedule(w, pttl);
  }

  /** Parks `w` until this node's holder of `key` commits (it then joins the queue in that script). */
  private defer(w: Waiter, key: string): void {
    w.state = 'deferred';
    w.waitingKey = key;
    this.arm(w);
    this.handoff.defer(w, key);
  }

  private hold(w: Waiter, lock: HeldLock): void {
    w.held.push(lock);
    this.heartbeat.track(lock);
    this.handoff.hold(lock.key);
  }

  private onGrant(w: Waiter, grant: HeldLock): void {
    if (w.state === 'acquiring' || w.state === 'riding') {
      w.pendingGrant = grant;
      return;
    }
    if (w.state !== 'waiting' || grant.key !== w.waitingKey) {
      this.releaseOrphan(grant);
      return;
    }
    this.recheck.clear(w);
    this.hold(w, grant);
    w.waitingKey = undefined;
    if (this.stopping) {
      this.abandon(w, new SessionClosedError());
    } else if (w.timedOut) {
      this.abandon(w, new LockTimeoutError(grant.key, this.o.timeoutMs));
    } else if (w.held.length === w.keys.length) {
      this.finish(w);
    } else {
      this.step(w);
    }
  }

  /** (Re)arms the waiter's one timer (lock-waiter.ts): its deadline, or its recheck. */
  private arm(w: Waiter): void {
    armWaiter(w, (timed) => this.onTimer(timed));
  }

  private onTimer(w: Waiter): void {
    w.timer = undefined;
    if (w.state === 'done') {
      return;
    }
    if (Date.now() >= w.deadline) {
      this.onTimeout(w);
    } else if (w.recheckAt !== undefined && Date.now() >= w.recheckAt) {
      w.recheckAt = undefined;
      this.arm(w);
      void this.recheck.run(w);
    } else {
      this.arm(w);
    }
  }

  private onTimeout(w: Waiter): void {
    w.timedOut = true;
    void this.giveUp(w, new LockTimeoutError(w.waitingKey ?? w.keys[w.held.length] ?? '', this.o.timeoutMs));
  }

  /** Ends a waiter that has not got all its keys, wherever it is. */
  private async giveUp(w: Waiter, err: unknown): Promise<void> {
    w.timedOut = true;
    if (w.state === 'waiting') {
      await this.cancel(w, err);
    } else if (w.state === 'deferred') {
      this.handoff.remove(w, w.waitingKey as string);
      this.abandon(w, err);
    }
    // 'acquiring' and 'riding': queued() sees timedOut or stopping when the script's reply comes.
  }

  /**
   * Leaves the queue and ends the waiter with `err`. When the lock was granted meanwhile, the cancel
   * script hands it on at once, and the grant message, when it comes, finds no waiter (orphan).
   */
  private async cancel(w: Waiter, err: unknown): Promise<void> {
    const key = w.waitingKey;
    if (w.state !== 'waiting' || key === undefined) {
      return;
    }
    w.timedOut = true;
    this.recheck.clear(w);
    try {
      await lockCancel(this.o.redis, this.o.layout, this.times, key, w.id);
    } catch (cancelErr) {
      this.o.logger.warn(
        { err: cancelErr, key },
        'session: could not leave a lock queue; the entry is skipped once this node is gone',
      );
    }
    this.abandon(w, err);
  }

  /**
   * Resolves `w`, which holds every key. With data slots the lock scripts bring no values: they are
   * read now (a commit applies its changes before it releases its locks, so they are current); a
   * time-out or a stop that comes meanwhile no longer applies, as every lock is held.
   */
  private finish(w: Waiter, values?: Map<string, SlotValue>): void {
    if (w.state === 'done') {
      return;
    }
    if (this.o.layout.slots.k > 1 && values === undefined) {
      w.state = 'acquiring';
      readSlotValues(this.o.redis, this.o.layout, w.keys).then(
        (read) => this.finish(w, read),
        (err: unknown) => this.abandon(w, mapRedisError(err)),
      );
      return;
    }
    w.state = 'done';
    this.forget(w);
    w.resolve(values ? w.held.map((lock) => ({ ...lock, ...values.get(lock.key) })) : w.held);
  }

  /** Ends a waiter with `err`, releasing whatever it holds. */
  private abandon(w: Waiter, err: unknown): void {
    if (w.state === 'done') {
      return;
    }
    w.state = 'done';
    this.forget(w);
    if (w.held.length > 0) {
      this.release(w.held).catch((releaseErr: unknown) =>
        this.o.logger.warn(
          { err: releaseErr },
          'session: could not release locks; they expire with their lease',
        ),
      );
    }
    w.reject(err);
  }

  private forget(w: Waiter): void {
    this.waiters.delete(w.id);
    disarmWaiter(w);
  }

  // ---- grants -------------------------------------------------------------------------------------

  /** A grant message, from the inbox or from a commit's reply. */
  private onMessage(message: string): void {
    const grant = parseGrant(message);
    if (grant === undefined) {
      this.o.logger.error({ message: message.slice(0, 200) }, 'session: malformed grant message');
      return;
    }
    const w = this.waiters.get(grant.waiterId);
    if (w === undefined) {
      this.releaseOrphan(grant.lock);
    } else {
      this.onGrant(w, grant.lock);
    }
  }

  /** A grant nobody waits for any more: hand the lock straight on. */
  private releaseOrphan(grant: HeldLock): void {
    this.release([grant]).catch((err: unknown) =>
      this.o.logger.warn(
        { err, key: grant.key },
        'session: could not pass on a lock; it expires with its lease',
      ),
    );
  }
}
