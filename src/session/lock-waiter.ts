/**
 * One `use` waiting for its storage locks, as the lock modules share it: where it stands in the lock
 * protocol, and its one timer. LockManager (locks.ts) moves it from state to state; the local hand-off
 * (lock-handoff.ts) and the commit runner (lock-commit.ts) carry waiters that ride a commit.
 */
import type { HeldLock } from './lock-grant.js';

/**
 * acquiring: lockAcquire-n.lua on its way; deferred: waits to join the queue of `waitingKey` with the
 * commit of this node's holder of it; riding: joining with that commit; waiting: in the queue; done:
 * resolved or rejected.
 */
export type WaiterState = 'acquiring' | 'deferred' | 'riding' | 'waiting' | 'done';

/** A `use` waiting for the locks on its keys. */
export interface Waiter {
  /** "<node id>.<n>[.<label>]": how the lock scripts and the queues name it. */
  readonly id: string;
  /** Sorted, distinct. */
  readonly keys: readonly string[];
  readonly deadline: number;
  readonly held: HeldLock[];
  state: WaiterState;
  waitingKey: string | undefined;
  /** A grant that arrived before the reply of the script that queued the waiter. */
  pendingGrant: HeldLock | undefined;
  timedOut: boolean;
  /** When to check on the lock waited for (its lease should have run out by then), if queued. */
  recheckAt: number | undefined;
  /** One timer per waiter, for the earlier of its deadline and its recheck. */
  timer: NodeJS.Timeout | undefined;
  timerAt: number;
  resolve(held: HeldLock[]): void;
  reject(err: unknown): void;
}

/** A waiter for `keys` (sorted, distinct), about to acquire. */
export function newWaiter(
  id: string,
  keys: readonly string[],
  deadline: number,
  resolve: (held: HeldLock[]) => void,
  reject: (err: unknown) => void,
): Waiter {
  return {
    id,
    keys,
    deadline,
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
}

/** (Re)arms the waiter's one timer for the earlier of its deadline and its recheck. */
export function armWaiter(w: Waiter, onTimer: (w: Waiter) => void): void {
  const at = Math.min(w.deadline, w.recheckAt ?? Infinity);
  if (w.timer !== undefined) {
    if (w.timerAt === at) {
      return;
    }
    clearTimeout(w.timer);
  }
  w.timerAt = at;
  w.timer = setTimeout(() => onTimer(w), Math.max(0, at - Date.now()));
}

/** Stops the waiter's timer and forgets its recheck. */
export function disarmWaiter(w: Waiter): void {
  w.recheckAt = undefined;
  if (w.timer !== undefined) {
    clearTimeout(w.timer);
    w.timer = undefined;
  }
}
