/**
 * How many executions the queue holds in each state, as the API names them: prioritized ones count
 * as waiting, and aborted ones as aborted, not failed, although BullMQ files both in its failed set.
 * With queue shards, each shard's counts are read and summed: each shard's at its own instant.
 */
import type { Queue } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import { JOB_FIELDS, bullQueueKeys } from '../redis/bullmq-internals.js';
import type { Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';
import type { ExecutionState } from '../types.js';
import { decodeFailure } from './failure.js';

/** Counts executions by state for the metrics and the API. */
export class ExecutionCounts {
  /** Failed jobs already read, by shard: `jobId@finish time` → aborted. */
  private abortedJobs = new Map<number, Map<string, boolean>>();

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    /** The queue of each shard, index = shard. */
    private readonly queues: readonly Pick<Queue, 'getJobCounts'>[],
  ) {}

  /** The number of executions in each state now. */
  async counts(): Promise<Record<ExecutionState, number>> {
    const total: Record<ExecutionState, number> = {
      waiting: 0,
      delayed: 0,
      active: 0,
      completed: 0,
      failed: 0,
      aborted: 0,
    };
    const shards = await Promise.all(this.keys.queues.all.map((shard) => this.shardCounts(shard)));
    for (const counts of shards) {
      for (const state of Object.keys(total) as ExecutionState[]) {
        total[state] += counts[state];
      }
    }
    return total;
  }

  private async shardCounts(shard: ShardKeys): Promise<Record<ExecutionState, number>> {
    const [bull, aborted, dropped] = await Promise.all([
      this.queues[shard.shard]!.getJobCounts(
        'waiting',
        'prioritized',
        'delayed',
        'active',
        'completed',
        'failed',
      ),
      this.countAborted(shard),
      // Aborted while waiting and still in the wait list until a worker drops them (abortWaiting-8.lua).
      this.redis.scard(shard.executionIndex.dropped),
    ]);
    return {
      waiting: Math.max(0, (bull.waiting ?? 0) - dropped) + (bull.prioritized ?? 0),
      delayed: bull.delayed ?? 0,
      active: bull.active ?? 0,
      completed: bull.completed ?? 0,
      failed: Math.max(0, (bull.failed ?? 0) - aborted),
      aborted,
    };
  }

  /**
   * How many of BullMQ's failed jobs are aborted executions. Only a job's failedReason tells, so each
   * job is read once: what was learned is kept by job id and finish time until the job leaves the
   * failed set (retention, or a retry that files it again). A count then reads the set's ids (at
   * most SPROCD_KEEP_FINISHED) and the reasons of the jobs that failed since the last count.
   */
  private async countAborted(shard: ShardKeys): Promise<number> {
    const queueKeys = bullQueueKeys(shard);
    const seen = this.abortedJobs.get(shard.shard);
    const entries = await this.redis.zrange(queueKeys.failed, 0, -1, 'WITHSCORES');
    const known = new Map<string, boolean>();
    const unknown: { key: string; jobId: string }[] = [];
    for (let i = 0; i + 1 < entries.length; i += 2) {
      const jobId = entries[i] as string;
      const key = `${jobId}@${entries[i + 1]}`;
      const aborted = seen?.get(key);
      if (aborted === undefined) {
        unknown.push({ key, jobId });
      } else {
        known.set(key, aborted);
      }
    }
    if (unknown.length > 0) {
      const pipeline = this.redis.pipeline();
      for (const { jobId } of unknown) {
        pipeline.hget(queueKeys.job(jobId), JOB_FIELDS.failedReason);
      }
      const replies = (await pipeline.exec()) ?? [];
      unknown.forEach(({ key }, i) => {
        const reason = replies[i]?.[1];
        known.set(key, decodeFailure(typeof reason === 'string' ? reason : undefined)?.code === 'ABORTED');
      });
    }
    this.abortedJobs.set(shard.shard, known);
    let count = 0;
    for (const aborted of known.values()) {
      count += aborted ? 1 : 0;
    }
    return count;
  }
}
