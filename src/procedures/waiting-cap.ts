/**
 * SPROCD_MAX_WAITING: a cap on the executions waiting to run (queued, prioritized or delayed), so that
 * a flood of Execute on server requests is refused with QUEUE_FULL instead of filling Redis. Nothing
 * already queued is touched. The count is read from BullMQ's lists before each add; requests that
 * arrive while one read is in flight share it and are counted one by one against it, so the cap
 * holds under a burst too, passed at most by executions other nodes queue at that very moment.
 * See docs/ARCHITECTURE.md#bounded-resources.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { SprocdError } from '../errors.js';
import { bullQueueKeys } from '../redis/bullmq-internals.js';
import type { Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';

/** The queue holds SPROCD_MAX_WAITING executions waiting to run (503). */
export class QueueFullError extends SprocdError {
  constructor(max: number, waiting: number) {
    super(
      'QUEUE_FULL',
      `${waiting} executions are waiting to run, the most SPROCD_MAX_WAITING (${max}) allows; nothing was queued. Retry later.`,
      { details: { max, waiting, retryAfterSeconds: 5 } },
    );
  }
}

/** The cap on waiting executions, checked before each add. */
export class WaitingCap {
  private read: { waiting: Promise<number>; admitted: number } | undefined;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly max: number,
  ) {}

  /**
   * Resolves when `count` more executions (a batch: all or none) may be queued; throws
   * QueueFullError when they would pass the cap.
   */
  async admit(count = 1): Promise<void> {
    let read = this.read;
    if (!read) {
      const fresh = { waiting: this.count(), admitted: 0 };
      this.read = read = fresh;
      void fresh.waiting
        .finally(() => {
          if (this.read === fresh) {
            this.read = undefined;
          }
        })
        .catch(() => undefined);
    }
    const waiting = (await read.waiting) + read.admitted;
    if (waiting + count > this.max) {
      throw new QueueFullError(this.max, waiting);
    }
    read.admitted += count;
  }

  /**
   * Executions waiting to run now: waiting (or paused), prioritized, delayed. With S > 1 queue shards
   * it is the sum of each shard's count, read in parallel, one call per shard (a Cluster cannot span
   * their slots): an approximation, as the shards are not read at one instant (an execution moving
   * meanwhile can be counted in none or, rarely, twice), which a cap does not need to be exact for.
   */
  private async count(): Promise<number> {
    const counts = await Promise.all(this.keys.queues.all.map((shard) => this.countShard(shard)));
    return counts.reduce((a, b) => a + b, 0);
  }

  private async countShard(shard: ShardKeys): Promise<number> {
    const bull = bullQueueKeys(shard);
    const replies =
      (await this.redis
        .pipeline()
        .llen(bull.wait)
        .llen(bull.paused)
        .zcard(bull.prioritized)
        .zcard(bull.delayed)
        .scard(shard.executionIndex.dropped)
        .exec()) ?? [];
    let total = 0;
    replies.forEach(([err, value], i) => {
      if (err) {
        throw err;
      }
      // The last: aborted executions left in the wait list until a worker drops them.
      total += i === replies.length - 1 ? -Number(value) : Number(value);
    });
    return Math.max(0, total);
  }
}
