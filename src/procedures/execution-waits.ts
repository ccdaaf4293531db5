/**
 * Waiting for executions to end (POST /v1/executions with `wait`). One QueueEvents reader per node
 * and queue shard (opened when a wait first needs that shard: a wait is for one execution number,
 * whose shard alone has its events) wakes the waits of the executions that completed or failed; a wait then asks Redis whether its
 * execution is in BullMQ's completed or failed set (two ZSCOREs and an EXISTS, never the job
 * itself). Events are read from a stream, so none is lost once the reader runs; the state is also
 * asked after 1 s, 2 s, 4 s ... (at most every 30 s) in case the execution ended before the reader
 * had started. A wait ends at its deadline, when its signal aborts (the client went away) or when
 * the node stops; then it asks nothing more. See docs/ARCHITECTURE.md#bounded-resources.
 */
import { QueueEvents } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import { settleWithin } from '../redis/connections.js';
import { bullQueueKeys, type BullQueueKeys } from '../redis/bullmq-internals.js';
import { QUEUE_NAME, jobIdOf, type Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';

/** First pause before the state is asked again without an event; it doubles up to the next. */
const FIRST_RECHECK_MS = 1000;
const LAST_RECHECK_MS = 30_000;
/** Longest wait for the event reader to close. */
const CLOSE_WAIT_MS = 2000;

/** The waits of one node for executions to end. */
export class FinishWatch {
  /** Each queue shard's event reader, index = shard. */
  private readonly events: (QueueEvents | undefined)[];
  private readonly wakers = new Map<string, Set<() => void>>();
  /** Each queue shard's BullMQ keys, index = shard. */
  private readonly bull: readonly BullQueueKeys[];
  private waiting = 0;
  private closed = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly openEventsConnection: () => RedisConnection,
  ) {
    this.events = keys.queues.all.map(() => undefined);
    this.bull = keys.queues.all.map((shard) => bullQueueKeys(shard));
  }

  /** Waits in progress now. */
  get size(): number {
    return this.waiting;
  }

  /**
   * Resolves true once execution `number` has ended (or its job is gone), false when `ms` passed,
   * `signal` aborted or the node stops first.
   */
  async until(number: number, ms: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + ms;
    const jobId = jobIdOf(number);
    this.waiting++;
    // Set by an event (or the abort) even while the state is being asked: then it is asked again.
    let woken = false;
    let wake = () => {
      woken = true;
    };
    const waker = () => wake();
    this.addWaker(jobId, waker);
    signal?.addEventListener('abort', waker);
    try {
      // Events from the moment the reader runs are not missed; one that does not connect (Redis away)
      // holds nobody: the state is asked anyway, and again later.
      const shard = this.keys.queues.ofNumber(number);
      await settleWithin(this.reader(shard).waitUntilReady(), Math.min(ms, FIRST_RECHECK_MS));
      let pause = FIRST_RECHECK_MS;
      for (;;) {
        if (this.closed || signal?.aborted) {
          return false;
        }
        woken = false;
        if (await this.ended(shard, jobId)) {
          return true;
        }
        const remaining = deadline - Date.now();
        if (remaining <= 0 || this.closed || signal?.aborted) {
          return false;
        }
        if (woken) {
          continue;
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(remaining, pause));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        wake = () => {
          woken = true;
        };
        pause = Math.min(pause * 2, LAST_RECHECK_MS);
      }
    } finally {
      this.waiting--;
      signal?.removeEventListener('abort', waker);
      this.removeWaker(jobId, waker);
    }
  }

  /** Ends every wait (they answer with what is known) and closes the event reader. */
  async close(): Promise<void> {
    this.closed = true;
    for (const wakers of this.wakers.values()) {
      wakers.forEach((w) => w());
    }
    await settleWithin(Promise.all(this.events.map((events) => events?.close())), CLOSE_WAIT_MS);
  }

  /** Whether the job is in the completed or failed set, or gone (retention removed it at its end). */
  private async ended(shard: ShardKeys, jobId: string): Promise<boolean> {
    const bull = this.bull[shard.shard]!;
    // Three commands, not a pipeline: ioredis builds a pipeline by copying every script defined on
    // the connection (about 80 here), which costs the node more than the three round trips' writes.
    const [completed, failed, exists] = await Promise.all([
      this.redis.zscore(bull.completed, jobId),
      this.redis.zscore(bull.failed, jobId),
      this.redis.exists(bull.job(jobId)),
    ]);
    return completed !== null || failed !== null || exists === 0;
  }

  /** The node's event reader of queue shard `shard`, opened on first use. */
  private reader(shard: ShardKeys): QueueEvents {
    let events = this.events[shard.shard];
    if (!events) {
      events = new QueueEvents(QUEUE_NAME, {
        connection: this.openEventsConnection(),
        prefix: shard.bullPrefix,
      });
      events.on('error', () => undefined);
      // Job ids are execution numbers, each in one shard only: the wakers need no shard of their own.
      const wake = ({ jobId }: { jobId: string }) => this.wakers.get(jobId)?.forEach((w) => w());
      events.on('completed', wake);
      events.on('failed', wake);
      this.events[shard.shard] = events;
    }
    return events;
  }

  private addWaker(jobId: string, waker: () => void): void {
    let set = this.wakers.get(jobId);
    if (!set) {
      set = new Set();
      this.wakers.set(jobId, set);
    }
    set.add(waker);
  }

  private removeWaker(jobId: string, waker: () => void): void {
    const set = this.wakers.get(jobId);
    set?.delete(waker);
    if (set?.size === 0) {
      this.wakers.delete(jobId);
    }
  }
}
