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
 *   node reads that inbox (BLMPOP: every waiting grant at once) and wakes the waiter: no polling, one connection however many wait.
 *   A grant to a waiter of the committing node itself comes back in the commit's reply instead.
 * - A waiter that arrives while its own node holds the key does not queue on its own: it joins the
 *   queue inside that holder's commit (or after {@link RIDE_MAX_MS}, if the holder takes longer).
 *   Queue order stays the order in which waiters reach Redis; a hot key then costs one round trip
 *   per use instead of two.
 * - A holder's lease is renewed by the node's heartbeat (every lease/3), which also keeps the node's
 *   `alive` key. A holder that died stops renewing: its locks expire, and its queued waiters are
 *   skipped once its alive key has expired too. As the dead holder sends no wake-up, each waiter sets
 *   one timer for the moment the lease it waits on should run out and then checks (lockRecheck-4.lua): a
 *   bounded check per lease, not a polling loop.
 * - A commit checks that each lock still carries the holder's token; if any lease ran out meanwhile
 *   nothing is written and the caller gets LockLostError.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RedisUnavailableError, SprocdError } from '../errors.js';
import { isRedisError } from '../redis/errors.js';
import {
  lockAcquire,
  lockCancel,
  lockCommit,
  lockHeartbeat,
  lockRecheck,
  type AcquireReply,
  type CommitEntry,
  type CommitReply,
  type LockTimes,
} from '../redis/scripts.js';
import { LockLostError, LockTimeoutError, SessionClosedError } from './errors.js';
import type { StorageLayout } from './layout.js';

/** A lock taken by a `use`, with the entry's JSON as it was when the lock was taken. */
export interface HeldLock {
  readonly key: string;
  /** "<fencing token>:<waiter id>": what the lock key must still hold at commit. */
  readonly lockValue: string;
  /** The entry's JSON, or undefined when there is no such entry. */
  readonly json: string | undefined;
}

/** What the commit does with one entry. */
export type CommitOp = { readonly op: 'set'; readonly json: string } | { readonly op: 'delete' };

/** Options of {@link LockManager}. */
export interface LockManagerOptions {
  /** Shared command connection (scripts, heartbeat). */
  redis: Redis;
  /** Dedicated connection for the blocking inbox read; the manager owns its loop, not its life. */
  blocking: Redis;
  layout: StorageLayout;
  /** This process's id in waiter ids and in the alive and inbox keys: no "." nor ":" in it. */
  nodeId: string;
  leaseMs: number;
  timeoutMs: number;
  logger: Logger;
  /** Test hook: while it returns true, the heartbeat does not renew lock leases. */
  skipLockRenewal?: () => boolean;
  /** Appended to waiter ids after a ".": who waits (see lock-owner.ts); no "\n" in it. */
  label?: () => string;
}

interface Grant {
  readonly key: string;
  readonly lockValue: string;
  readonly json: string | undefined;
}

interface Waiter {
  readonly id: string;
  /** Sorted, distinct. */
  readonly keys: readonly string[];
  readonly deadline: number;
  readonly held: HeldLock[];
  /**
   * acquiring: lockAcquire-n.lua on its way; deferred: waits to join the queue of `waitingKey` with the
   * commit of this node's holder of it; riding: joining with that commit; waiting: in the queue.
   */
  state: 'acquiring' | 'deferred' | 'riding' | 'waiting' | 'done';
  waitingKey: string | undefined;
  /** A grant that arrived before the reply of the script that queued the waiter. */
  pendingGrant: Grant | undefined;
  timedOut: boolean;
  /** When to check on the lock waited for (its lease should have run out by then), if queued. */
  recheckAt: number | undefined;
  /** One timer per waiter, for the earlier of its deadline and its recheck. */
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  resolve(held: HeldLock[]): void;
  reject(err: unknown): void;
}

/** Most grants one inbox read takes. */
const INBOX_BATCH = 128;

/** Margin after a lease's expected end before a waiter checks on it. */
const RECHECK_MARGIN_MS = 25;

/**
 * Longest a waiter waits to join a queue with its node's holder's commit before joining on its own;
 * it bounds how far such a waiter can fall behind waiters of other nodes that arrived after it.
 */
export const RIDE_MAX_MS = 2;

/** Maps connection-level failures of ioredis to RedisUnavailableError; leaves anything else alone. */
export function mapRedisError(err: unknown): unknown {
  return err instanceof Error && !(err instanceof SprocdError) && isRedisError(err)
    ? new RedisUnavailableError(err)
    : err;
}

/** The locks of one node (one open session service). */
export class LockManager {
  private readonly o: LockManagerOptions;
  private readonly times: LockTimes;
  private readonly waiters = new Map<string, Waiter>();
  /** Locks this node holds → their entry, for lease renewal. */
  private readonly renewals = new Map<string, string>();
  /** Keys a waiter of this node holds (from its grant to its commit's reply). */
  private readonly localHeld = new Set<string>();
  /** Waiters that will join a key's queue with this node's next commit of that key. */
  private readonly deferred = new Map<string, Waiter[]>();
  private readonly rideTimers = new Map<string, NodeJS.Timeout>();
  private seq = 0;
  private closed = false;
  /** Set by stopWaiting: no new acquisitions, and waiters are sent away. */
  private stopping = false;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatBusy = false;
  private loop: Promise<void> | undefined;
  private endInbox: (() => void) | undefined;

  constructor(options: LockManagerOptions) {
    this.o = options;
    this.times = { leaseMs: options.leaseMs, inboxTtlMs: Math.max(10 * options.leaseMs, 60_000) };
  }

  /** Marks the node alive and starts the heartbeat and the inbox reader. */
  async start(): Promise<void> {
    await this.heartbeat(true);
    const every = Math.max(Math.floor(this.o.leaseMs / 3), 10);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(false), every);
    this.heartbeatTimer.unref();
    this.loop = this.readInbox();
  }

  /**
   * Takes the locks on `keys` (sorted, distinct), waiting in queue order for those held elsewhere.
   * Rejects with LockTimeoutError after the wait time-out, naming the key it waited for.
   */
  acquire(keys: readonly string[]): Promise<HeldLock[]> {
    if (this.stopping) {
      return Promise.reject(new SessionClosedError());
    }
    return new Promise<HeldLock[]>((resolve, reject) => {
      const waiter: Waiter = {
        id: `${this.o.nodeId}.${++this.seq}${this.o.label ? `.${this.o.label()}` : ''}`,
        keys,
        deadline: Date.now() + this.o.timeoutMs,
        held: [],
        state: 'acquiring',
        waitingKey: undefined,
        pendingGrant: undefined,
        timedOut: false,
        recheckAt: undefined,
        timer: undefined,
        timerAt: 0,
        resolve,
        reject,
      };
      this.waiters.set(waiter.id, waiter);
      this.step(waiter);
    });
  }

  /**
   * Ends a `use`: writes `ops` (entries not named are left as they are) and releases every lock in
   * one script. Throws LockLostError, having written nothing, when any lease ran out.
   */
  async commit(held: readonly HeldLock[], ops: ReadonlyMap<string, CommitOp>): Promise<void> {
    const lost = await this.runCommit(held, ops);
    if (lost !== undefined) {
      throw new LockLostError(lost);
    }
  }

  /** Releases locks without writing; a lock already lost is not an error here. */
  async release(held: readonly HeldLock[]): Promise<void> {
    if (held.length > 0) {
      await this.runCommit(held, new Map());
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
    if (this.heartbeatTimer !== undefined) {
      clearInterval(this.heartbeatTimer);
    }
    for (const timer of this.rideTimers.values()) {
      clearTimeout(timer);
    }
    // The blocking read ends here; the owner closes its connection after this returns.
    this.endInbox?.();
    this.o.blocking.disconnect();
    await this.loop;
    // Let other nodes skip whatever this node still had queued (grants in flight, if any, expire).
    await this.o.redis.del(this.o.layout.alive(this.o.nodeId)).catch(() => undefined);
  }

  // ---- acquiring ---------------------------------------------------------------------------------

  /** Goes for the next keys: defers when this node holds the next one, else runs lockAcquire-n.lua. */
  private step(w: Waiter): void {
    const next = w.keys[w.held.length] as string;
    if (this.localHeld.has(next)) {
      this.defer(w, next);
      return;
    }
    this.sendAcquire(w);
  }

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
    this.scheduleRecheck(w, pttl);
  }

  /** Parks `w` until this node's holder of `key` commits (it then joins the queue in that script). */
  private defer(w: Waiter, key: string): void {
    w.state = 'deferred';
    w.waitingKey = key;
    const list = this.deferred.get(key);
    if (list === undefined) {
      this.deferred.set(key, [w]);
    } else {
      list.push(w);
    }
    this.arm(w);
    if (!this.rideTimers.has(key)) {
      const timer = setTimeout(() => {
        this.rideTimers.delete(key);
        this.flushDeferred(key);
      }, RIDE_MAX_MS);
      this.rideTimers.set(key, timer);
    }
  }

  /** Takes the waiters deferred on `key` (to ride a commit, or to queue on their own). */
  private takeDeferred(key: string): Waiter[] {
    const list = this.deferred.get(key);
    if (list === undefined) {
      return [];
    }
    this.deferred.delete(key);
    const timer = this.rideTimers.get(key);
    if (timer !== undefined) {
      clearTimeout(timer);
      this.rideTimers.delete(key);
    }
    return list;
  }

  /** The holder is taking long, or let the key go: the deferred waiters queue on their own, in order. */
  private flushDeferred(key: string): void {
    for (const w of this.takeDeferred(key)) {
      if (w.state === 'deferred') {
        this.sendAcquire(w);
      }
    }
  }

  private hold(w: Waiter, lock: HeldLock): void {
    w.held.push(lock);
    this.renewals.set(lock.lockValue, lock.key);
    this.localHeld.add(lock.key);
  }

  private onGrant(w: Waiter, grant: Grant): void {
    if (w.state === 'acquiring' || w.state === 'riding') {
      w.pendingGrant = grant;
      return;
    }
    if (w.state !== 'waiting' || grant.key !== w.waitingKey) {
      this.releaseOrphan(grant);
      return;
    }
    this.clearRecheck(w);
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

  /** (Re)arms the waiter's one timer for the earlier of its deadline and its recheck. */
  private arm(w: Waiter): void {
    const at = Math.min(w.deadline, w.recheckAt ?? Infinity);
    if (w.timer !== undefined) {
      if (w.timerAt === at) {
        return;
      }
      clearTimeout(w.timer);
    }
    w.timerAt = at;
    w.timer = setTimeout(() => this.onTimer(w), Math.max(0, at - Date.now()));
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
      void this.recheck(w);
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
      const list = this.deferred.get(w.waitingKey as string);
      const at = list?.indexOf(w) ?? -1;
      if (list !== undefined && at >= 0) {
        list.splice(at, 1);
      }
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
    this.clearRecheck(w);
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

  private finish(w: Waiter): void {
    if (w.state === 'done') {
      return;
    }
    w.state = 'done';
    this.forget(w);
    w.resolve(w.held);
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
    w.recheckAt = undefined;
    if (w.timer !== undefined) {
      clearTimeout(w.timer);
      w.timer = undefined;
    }
  }

  // ---- lease expiry of a dead holder --------------------------------------------------------------

  private scheduleRecheck(w: Waiter, pttl: number): void {
    const wait = Math.max(0, Math.min(pttl < 0 ? this.o.leaseMs : pttl, this.o.leaseMs)) + RECHECK_MARGIN_MS;
    w.recheckAt = Date.now() + wait;
    this.arm(w);
  }

  private clearRecheck(w: Waiter): void {
    w.recheckAt = undefined;
  }

  private async recheck(w: Waiter): Promise<void> {
    const key = w.waitingKey;
    if (w.state !== 'waiting' || key === undefined || this.closed) {
      return;
    }
    try {
      const { granted, pttl } = await lockRecheck(this.o.redis, this.o.layout, this.times, key, w.id);
      if (!granted && w.state === 'waiting' && w.waitingKey === key) {
        this.scheduleRecheck(w, pttl);
      }
    } catch (err) {
      this.o.logger.warn({ err, key }, 'session: lock re-check failed; trying again after a lease');
      if (w.state === 'waiting' && w.waitingKey === key) {
        this.scheduleRecheck(w, this.o.leaseMs);
      }
    }
  }

  // ---- inbox --------------------------------------------------------------------------------------

  private async readInbox(): Promise<void> {
    const inbox = this.o.layout.inbox(this.o.nodeId);
    // disconnect() does not always settle a command queued while the connection was reconnecting,
    // so the loop also ends on its own signal rather than waiting for that.
    const closing = new Promise<null>((resolve) => {
      this.endInbox = () => resolve(null);
    });
    // BLMPOP (Redis 7) hands over every grant waiting in the inbox at once, where BLPOP takes one per
    // round trip; with many keys contended across nodes, that round trip was the bottleneck.
    let batch = true;
    while (!this.closed) {
      let messages: string[] | null;
      try {
        const read: Promise<string[] | null> = batch
          ? (
              this.o.blocking.call('BLMPOP', 5, 1, inbox, 'LEFT', 'COUNT', INBOX_BATCH) as Promise<
                [string, string[]] | null
              >
            ).then((r) => (r === null ? null : r[1]))
          : this.o.blocking.blpop(inbox, 5).then((r) => (r === null ? null : [r[1]]));
        read.catch(() => undefined);
        messages = await Promise.race([read, closing]);
      } catch (err) {
        if (this.closed) {
          break;
        }
        if (batch && err instanceof Error && /unknown command/i.test(err.message)) {
          batch = false; // Redis before 7: one grant per read
          continue;
        }
        this.o.logger.warn({ err }, 'session: inbox read failed; retrying');
        await new Promise((r) => setTimeout(r, 200));
        continue;
      }
      if (messages !== null) {
        for (const message of messages) {
          this.onMessage(message);
        }
      }
    }
  }

  private onMessage(message: string): void {
    const a = message.indexOf('\n');
    const b = message.indexOf('\n', a + 1);
    const c = message.indexOf('\n', b + 1);
    if (a < 0 || b < 0 || c < 0) {
      this.o.logger.error({ message: message.slice(0, 200) }, 'session: malformed grant message');
      return;
    }
    const waiterId = message.slice(0, a);
    const grant: Grant = {
      lockValue: message.slice(a + 1, b),
      key: JSON.parse(message.slice(b + 1, c)) as string,
      json: c + 1 < message.length ? message.slice(c + 1) : undefined,
    };
    const w = this.waiters.get(waiterId);
    if (w === undefined) {
      this.releaseOrphan(grant);
    } else {
      this.onGrant(w, grant);
    }
  }

  /** A grant nobody waits for any more: hand the lock straight on. */
  private releaseOrphan(grant: Grant): void {
    this.release([grant]).catch((err: unknown) =>
      this.o.logger.warn(
        { err, key: grant.key },
        'session: could not pass on a lock; it expires with its lease',
      ),
    );
  }

  // ---- committing and renewing --------------------------------------------------------------------

  /**
   * Runs lockCommit-n.lua; returns the first lost key, or undefined when all was written. Waiters deferred
   * on these keys join their queues in the same script, before the locks are handed on.
   */
  private async runCommit(
    held: readonly HeldLock[],
    ops: ReadonlyMap<string, CommitOp>,
  ): Promise<string | undefined> {
    const entries: CommitEntry[] = [];
    const riders: [string, Waiter[]][] = [];
    for (const lock of held) {
      this.renewals.delete(lock.lockValue);
      const joining = this.takeDeferred(lock.key).filter((w) => w.state === 'deferred');
      for (const w of joining) {
        w.state = 'riding';
      }
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
    let reply: CommitReply;
    try {
      reply = await lockCommit(this.o.redis, this.o.layout, this.times, this.o.nodeId, entries);
    } catch (err) {
      // Whether the script ran is unknown: the riders queue on their own. Should they now be in a
      // queue twice, the second grant finds them done, or holding, and is passed on as an orphan.
      for (const lock of held) {
        this.localHeld.delete(lock.key);
      }
      for (const [, joining] of riders) {
        for (const w of joining) {
          this.sendAcquire(w);
        }
      }
      throw mapRedisError(err);
    }
    for (const lock of held) {
      this.localHeld.delete(lock.key);
    }
    for (const [key, joining] of riders) {
      for (const w of joining) {
        this.queued(w, key, this.o.leaseMs);
      }
    }
    // Locks handed to this node's own waiters came back in the reply: wake them now.
    for (const message of reply.grants) {
      this.onMessage(message);
    }
    // Waiters that arrived while this commit was on its way, for keys no waiter here holds now.
    for (const lock of held) {
      if (!this.localHeld.has(lock.key)) {
        this.flushDeferred(lock.key);
      }
    }
    return reply.ok ? undefined : reply.lost[0];
  }

  private async heartbeat(first: boolean): Promise<void> {
    if (this.heartbeatBusy || (this.closed && !first)) {
      return;
    }
    this.heartbeatBusy = true;
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
      this.heartbeatBusy = false;
    }
  }
}
