/**
 * The local hand-off of one node: a waiter that arrives while its own node holds the key does not
 * queue on its own, it is deferred and joins the key's queue inside that holder's commit (it "rides"
 * the commit), or on its own after {@link RIDE_MAX_MS} if the holder takes longer. Queue order stays the
 * order in which waiters reach Redis, and a hot key costs one round trip per use instead of two.
 */
import type { Waiter } from './lock-waiter.js';

/**
 * Longest a waiter waits to join a queue with its node's holder's commit before joining on its own;
 * it bounds how far such a waiter can fall behind waiters of other nodes that arrived after it.
 */
export const RIDE_MAX_MS = 2;

/** Which keys a waiter of this node holds, and the waiters deferred on them. */
export class LocalHandoff {
  /** Keys a waiter of this node holds (from its grant to its commit's reply). */
  private readonly held = new Set<string>();
  /** Waiters that will join a key's queue with this node's next commit of that key. */
  private readonly deferred = new Map<string, Waiter[]>();
  private readonly rideTimers = new Map<string, NodeJS.Timeout>();
  private readonly queueAlone: (w: Waiter) => void;

  /** `queueAlone` sends a deferred waiter to queue on its own (lockAcquire-n.lua). */
  constructor(queueAlone: (w: Waiter) => void) {
    this.queueAlone = queueAlone;
  }

  /** Whether a waiter of this node holds `key`. */
  holds(key: string): boolean {
    return this.held.has(key);
  }

  /** A waiter of this node got `key`. */
  hold(key: string): void {
    this.held.add(key);
  }

  /** The commit of `keys` has its reply: no waiter of this node holds them now (but those it granted). */
  letGo(keys: Iterable<string>): void {
    for (const key of keys) {
      this.held.delete(key);
    }
  }

  /** Parks `w` (already marked deferred on `key`) until this node's holder of `key` commits. */
  defer(w: Waiter, key: string): void {
    const list = this.deferred.get(key);
    if (list === undefined) {
      this.deferred.set(key, [w]);
    } else {
      list.push(w);
    }
    if (!this.rideTimers.has(key)) {
      const timer = setTimeout(() => {
        this.rideTimers.delete(key);
        this.flush(key);
      }, RIDE_MAX_MS);
      this.rideTimers.set(key, timer);
    }
  }

  /** Takes `w` out of the waiters deferred on `key` (it gave up). */
  remove(w: Waiter, key: string): void {
    const list = this.deferred.get(key);
    const at = list?.indexOf(w) ?? -1;
    if (list !== undefined && at >= 0) {
      list.splice(at, 1);
    }
  }

  /** The waiters deferred on `key` that ride the commit now on its way, marked riding. */
  takeRiders(key: string): Waiter[] {
    const riders = this.take(key).filter((w) => w.state === 'deferred');
    for (const w of riders) {
      w.state = 'riding';
    }
    return riders;
  }

  /**
   * After a commit of `key`: the waiters that arrived while it was on its way queue on their own,
   * unless a waiter of this node got `key` from that commit (they then ride its commit).
   */
  flushIfLetGo(key: string): void {
    if (!this.held.has(key)) {
      this.flush(key);
    }
  }

  /** Stops the ride timers. */
  close(): void {
    for (const timer of this.rideTimers.values()) {
      clearTimeout(timer);
    }
  }

  /** The holder is taking long, or let the key go: the deferred waiters queue on their own, in order. */
  private flush(key: string): void {
    for (const w of this.take(key)) {
      if (w.state === 'deferred') {
        this.queueAlone(w);
      }
    }
  }

  /** Takes the waiters deferred on `key` (to ride a commit, or to queue on their own). */
  private take(key: string): Waiter[] {
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
}
