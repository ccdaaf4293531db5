/**
 * One concurrency limit for a node that takes executions through several BullMQ Workers (one per queue
 * shard): each Worker has its own `concurrency`, and S Workers of concurrency C would run up to S × C
 * procedures. The gate keeps the node at C two ways:
 *
 * - it counts the jobs each member (Worker) holds and, after each take and each end, gives every member
 *   the concurrency `max(1, itsHeld + (C - totalHeld))`, so a Worker fetches only while the node has a
 *   free slot (at least 1, BullMQ's minimum: an idle member keeps one fetch waiting);
 * - a procedure runs only with one of C permits. The few jobs that race past the first rule (Workers
 *   fetch at the same moment, or an idle member's one fetch) find none free; the pool hands such a job
 *   back to the queue (for a node with room) and its hold waits for a permit only to keep its Worker
 *   from fetching again until the node has room (worker-pool.ts).
 *
 * Permits go first come, first served, so a busy shard cannot starve the others of slots.
 */

/** What the gate steers of a member: a BullMQ Worker's concurrency, and a wake for its fetch loop. */
export interface GateMember {
  concurrency: number;
  /** Makes the member look at its raised concurrency now instead of after one of its own jobs ends. */
  wake(): void;
}

/** A job a member holds, from its take to its end. */
export interface GateHold {
  /** Takes a run permit if one is free now: true then, false (nothing taken) when the node is full or the gate closed. */
  tryPermit(): boolean;
  /** Waits for a run permit: true once granted, false when the gate closed first (nothing granted). */
  permit(): Promise<boolean>;
  /** The job ended: its permit (if granted) and its count go back. Only the first call counts. */
  end(): void;
}

export class ConcurrencyGate {
  private readonly held: number[];
  private totalHeld = 0;
  private permitsOut = 0;
  private readonly waiters: ((granted: boolean) => void)[] = [];
  private closed = false;

  constructor(
    private readonly limit: number,
    private readonly members: readonly GateMember[],
  ) {
    if (!Number.isInteger(limit) || limit < 1) {
      throw new RangeError(`concurrency limit must be a whole number ≥ 1, not ${limit}`);
    }
    this.held = members.map(() => 0);
    this.rebalance();
  }

  /** Procedures running now (permits granted). */
  get running(): number {
    return this.permitsOut;
  }

  /** Jobs held now, running or waiting for a permit. */
  get holding(): number {
    return this.totalHeld;
  }

  /** Member `member` took a job. */
  hold(member: number): GateHold {
    this.count(member, 1);
    let granted = false;
    let ended = false;
    return {
      tryPermit: () => {
        if (!ended && !granted && !this.closed && this.waiters.length === 0 && this.permitsOut < this.limit) {
          this.permitsOut++;
          granted = true;
        }
        return granted;
      },
      permit: async () => {
        granted = await this.acquire();
        if (granted && ended) {
          this.release(); // ended while it waited: the permit it got is not used
          granted = false;
        }
        return granted;
      },
      end: () => {
        if (ended) {
          return;
        }
        ended = true;
        if (granted) {
          this.release();
        }
        this.count(member, -1);
      },
    };
  }

  /** Grants no more permits: the waiting and later holds get false (the node stops). */
  close(): void {
    this.closed = true;
    for (const waiter of this.waiters.splice(0)) {
      waiter(false);
    }
  }

  private acquire(): Promise<boolean> {
    if (this.closed) {
      return Promise.resolve(false);
    }
    if (this.permitsOut < this.limit) {
      this.permitsOut++;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private release(): void {
    const next = this.waiters.shift();
    if (next) {
      next(true); // the permit passes on: permitsOut stays
    } else {
      this.permitsOut--;
    }
  }

  private count(member: number, by: number): void {
    this.held[member] = (this.held[member] ?? 0) + by;
    this.totalHeld += by;
    this.rebalance();
  }

  private rebalance(): void {
    const free = this.limit - this.totalHeld;
    this.members.forEach((m, i) => {
      const next = Math.max(1, (this.held[i] ?? 0) + free);
      const before = m.concurrency;
      if (next !== before) {
        m.concurrency = next;
        if (next > before) {
          m.wake();
        }
      }
    });
  }
}
