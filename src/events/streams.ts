/** The Redis streams the event hub reads (./hub.ts), named for a deployment. */
import { bullQueueKeys, executionJobKey } from '../redis/bullmq-internals.js';
import { isCluster, slotOf } from '../redis/cluster.js';
import type { Keys } from '../redis/keys.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { StreamName } from './types.js';

/** The streams the hub reads, and how to find an execution's job hash. */
export interface HubStreams {
  /** BullMQ's events stream of each queue shard's procedures queue, index = shard. */
  readonly bull: readonly string[];
  /** sprocd's event log (one per deployment). */
  readonly log: string;
  /** The job hash of execution `number` (its `name` is the procedure, `ats` its starts). */
  job(number: number): string;
}

/** The streams of the deployment `keys`. */
export function hubStreams(keys: Keys): HubStreams {
  return {
    bull: keys.queues.all.map((shard) => bullQueueKeys(shard).events),
    log: keys.eventLog,
    job: (n) => executionJobKey(keys, n),
  };
}

/** One stream of the hub: which, and its key. */
export interface StreamRef {
  readonly stream: StreamName;
  /** The queue shard of a `bull` stream (0 for the log). */
  readonly shard: number;
  readonly key: string;
}

/** Every stream, the shards' in shard order, then the log (the order of an SSE id's parts). */
export function streamRefs(streams: HubStreams): StreamRef[] {
  return [
    ...streams.bull.map((key, shard) => ({ stream: 'bull' as const, shard, key })),
    { stream: 'log', shard: 0, key: streams.log },
  ];
}

/**
 * The streams in groups one command (an XREAD, a pipeline) may name together: all of them on a
 * single Redis, those of one hash slot on a Cluster (a command cannot span slots there). With one
 * queue shard, bull and log share the deployment's tag, so there is one group either way.
 */
export function slotGroups(redis: RedisConnection, streams: HubStreams): StreamRef[][] {
  const refs = streamRefs(streams);
  if (!isCluster(redis)) {
    return [refs];
  }
  const bySlot = new Map<number, StreamRef[]>();
  for (const ref of refs) {
    const slot = slotOf(ref.key);
    bySlot.set(slot, [...(bySlot.get(slot) ?? []), ref]);
  }
  return [...bySlot.values()];
}
