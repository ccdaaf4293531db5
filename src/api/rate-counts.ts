/**
 * The per-caller request counts of the rate limit (./limits.ts): one counter per caller and fixed
 * window in Redis, shared by every node, without a Redis round trip per request.
 *
 * Each node counts its callers' requests locally and adds them to the shared counter in batches
 * (`rateLimitAdd-1.lua`, one INCRBY per caller every {@link FLUSH_MS} ms, or at once when half a
 * batch is waiting); each answer tells it the cluster's count. A request is admitted on the spot
 * while the last count heard from Redis plus what this node has not had answered yet stays under
 * 80 % of the limit ({@link LOCAL_SHARE}) and below one batch ({@link BATCH_SHARE} of the limit,
 * 1 %) of unanswered requests. Past either, the request goes to Redis itself and is admitted when
 * the counter, with it (and the node's waiting requests) added, is at most the limit: near the limit
 * the count is exact. Once Redis has said the window is used up, the node refuses the caller's
 * requests itself until the window ends. With a limit under 100 the batch is 0 and every request is
 * counted in Redis, as before.
 *
 * How far over the limit a cluster can go: a node admits on the spot only while fewer than one
 * batch of its requests are unanswered, and its commands reach Redis in order, so after the first
 * of its requests that lands past the limit it admits at most a batch before the answer stops it.
 * The requests admitted in one window are therefore at most `limit + nodes × batch` (limit 3000,
 * 2 nodes: 3060), the slack coming only from nodes that had not yet heard the count run out; a
 * single node never exceeds the limit by more than its batch. Requests admitted at the very end of
 * a window may be added to the next one (they count against it, never for an extra request).
 * When Redis does not answer, requests pass uncounted (./limits.ts), and the batches that got no
 * answer are dropped.
 */

/** A request's count: requests in the window, this one included (past the limit: refused), and ms left. */
export interface Counted {
  readonly current: number;
  readonly ttlMs: number;
}

/** How the counts reach Redis. */
export interface RateCountsOptions {
  /** SPROCD_RATE_LIMIT: requests per caller per window. */
  readonly limit: number;
  /** SPROCD_RATE_LIMIT_WINDOW_MS. */
  readonly windowMs: number;
  /**
   * Adds `n` requests to `key`'s counter in its current window; resolves to the counter after it
   * and the ms until the window ends, rejects when Redis does not answer (in time).
   */
  add(key: string, n: number): Promise<{ count: number; ttlMs: number }>;
}

/** How often the requests admitted locally are added to the shared counters. */
export const FLUSH_MS = 50;
/** A node admits on the spot while fewer than this share of the limit are unanswered: its batch. */
export const BATCH_SHARE = 0.01;
/** Above this share of the limit (as last heard, plus the unanswered), every request asks Redis. */
export const LOCAL_SHARE = 0.8;

/** One caller's count on this node. */
interface Entry {
  /** When its window ends by this node's clock: the send time plus Redis' PTTL, never later than Redis. */
  ends: number;
  /** The caller's count in the window as Redis last answered (this node's answered batches in it). */
  known: number;
  /** Admitted here, not sent yet. */
  pending: number;
  /** Sent, not answered yet. */
  sending: number;
  /** A batch of this caller is on its way (one at a time). */
  flushing: boolean;
}

/** The counts of one node. */
export class RateCounts {
  /** Requests a node may have unanswered and still admit on the spot (0: every request asks Redis). */
  readonly batch: number;
  private readonly limit: number;
  private readonly windowMs: number;
  private readonly local: number;
  private readonly flushAt: number;
  private readonly add: RateCountsOptions['add'];
  private readonly entries = new Map<string, Entry>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: RateCountsOptions) {
    this.limit = options.limit;
    this.windowMs = options.windowMs;
    this.add = options.add;
    this.batch = Math.floor(options.limit * BATCH_SHARE);
    this.local = Math.floor(options.limit * LOCAL_SHARE);
    this.flushAt = Math.max(1, Math.ceil(this.batch / 2));
  }

  /**
   * Counts one request of `key` (`weight` requests' worth: a batch of executions): at once when it is decided here, else once Redis answered (a
   * rejection when it did not: the request passes uncounted). `current > limit` refuses it.
   */
  count(key: string, weight = 1): Counted | Promise<Counted> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry !== undefined && now < entry.ends) {
      const unsynced = entry.pending + entry.sending;
      if (entry.known >= this.limit) {
        return { current: entry.known + unsynced + weight, ttlMs: entry.ends - now };
      }
      if (unsynced + weight <= this.batch && entry.known + unsynced + weight <= this.local) {
        entry.pending += weight;
        if (entry.pending >= this.flushAt && !entry.flushing) {
          void this.flush(key, entry);
        }
        return { current: entry.known + unsynced + weight, ttlMs: entry.ends - now };
      }
    }
    return this.ask(key, entry ?? this.create(key), weight);
  }

  /** Sends what waits (after the last requests, at close); never rejects. */
  async flushAll(): Promise<void> {
    await Promise.all(
      [...this.entries].map(([key, entry]) =>
        entry.pending > 0 && !entry.flushing ? this.flush(key, entry) : undefined,
      ),
    );
  }

  /** Stops the timer; what is still waiting is sent by {@link flushAll} or dropped. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private create(key: string): Entry {
    const entry: Entry = { ends: 0, known: 0, pending: 0, sending: 0, flushing: false };
    this.entries.set(key, entry);
    this.schedule();
    return entry;
  }

  /** This request and what waits of its caller, added in Redis now; the answer decides. */
  private async ask(key: string, entry: Entry, weight: number): Promise<Counted> {
    const { count, ttlMs } = await this.send(entry, key, entry.pending + weight);
    return { current: count, ttlMs };
  }

  /** The caller's waiting requests, added in Redis; a failure drops them (they passed uncounted). */
  private async flush(key: string, entry: Entry): Promise<void> {
    entry.flushing = true;
    try {
      await this.send(entry, key, entry.pending);
    } catch {
      // Dropped: ./limits.ts pauses counting when Redis does not answer.
    } finally {
      entry.flushing = false;
    }
  }

  private async send(entry: Entry, key: string, n: number): Promise<{ count: number; ttlMs: number }> {
    entry.pending = 0;
    entry.sending += n;
    const sentAt = Date.now();
    try {
      const answer = await this.add(key, n);
      this.learn(entry, answer.count, sentAt + answer.ttlMs);
      return answer;
    } finally {
      entry.sending -= n;
    }
  }

  /** Takes in an answer: the count of the window ending at `ends`. */
  private learn(entry: Entry, count: number, ends: number): void {
    // A later window ends at least a window later (less the round trips); the same one within them.
    if (Date.now() >= entry.ends || ends > entry.ends + this.windowMs / 2) {
      entry.known = count;
      entry.ends = ends;
    } else {
      entry.known = Math.max(entry.known, count);
      entry.ends = Math.min(entry.ends, ends);
    }
  }

  private schedule(): void {
    if (this.timer === undefined && !this.closed) {
      this.timer = setTimeout(() => this.tick(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Sends each caller's waiting requests, and forgets the callers whose window ended. */
  private tick(): void {
    this.timer = undefined;
    const now = Date.now();
    for (const [key, entry] of this.entries) {
      if (entry.pending > 0) {
        if (!entry.flushing) {
          void this.flush(key, entry);
        }
      } else if (entry.sending === 0 && now >= entry.ends) {
        this.entries.delete(key);
      }
    }
    if (this.entries.size > 0) {
      this.schedule();
    }
  }
}
