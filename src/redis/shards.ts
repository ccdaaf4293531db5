/**
 * Queue shards (`SPROCD_QUEUE_SHARDS`, docs/ARCHITECTURE.md#queue-shards): where an execution's queue
 * keys live, decided in one place. Execution `n` lives in shard `n mod S`; a unique name in shard
 * `crc32(name) mod S`, so BullMQ's per-queue deduplication sees every execution of one name. With S = 1
 * the one shard is today's layout under `{prefix}`, key for key; with S > 1 shard `i` is under its own
 * hash tag `{prefix:q<i>}` (all shards, 0 included, so no shard shares the slot of the session and the
 * storage). SPROCD_PREFIX allows no `:`, so no other deployment's tag can be a shard tag of this one.
 */
import { crc32 } from 'node:zlib';
import { isCluster, slotOf } from './cluster.js';
import type { RedisConnection } from './redis-connection.js';

/**
 * The indexes of executions: sorted sets of job ids scored by creation time (ms), written beside
 * BullMQ's add and trimmed by a sweep (src/procedures/execution-index.ts).
 */
export interface ExecutionIndexKeys {
  /** Sorted set: the job ids of the executions of procedure `name`. */
  procedure(name: string): string;
  /** Sorted set: the job ids of the executions with process name `name` (none for ""). */
  name(name: string): string;
  /** Sorted set: every index key above, scored by when the sweep looks at it next (ms). */
  readonly sweep: string;
  /** Hash: index key → the rank the sweep's current pass through it reached. */
  readonly sweepAt: string;
  /**
   * Set: job ids of executions aborted while in BullMQ's wait list, left there (taking one out walks
   * the list) until a worker pops and drops it (abortWaiting-8.lua, dropPopped-6.lua).
   */
  readonly dropped: string;
}

/** The execution index's keys under hash tag `tag` (a deployment's, or a queue shard's). */
export function executionIndexKeys(tag: string): ExecutionIndexKeys {
  return {
    procedure: (name) => `${tag}:xi:proc:${name}`,
    name: (name) => `${tag}:xi:name:${name}`,
    sweep: `${tag}:xi:sweep`,
    sweepAt: `${tag}:xi:sweep-at`,
    dropped: `${tag}:xi:dropped`,
  };
}

/** The most shards a deployment may have (SPROCD_QUEUE_SHARDS). */
export const MAX_QUEUE_SHARDS = 64;

/** The keys of one queue shard: BullMQ's prefix and the keys sprocd's scripts touch with its jobs. */
export interface ShardKeys {
  /** The shard's index, 0 ≤ shard < S. */
  readonly shard: number;
  /** Its hash tag, `{prefix}` (S = 1) or `{prefix:q<shard>}`. */
  readonly tag: string;
  /** BullMQ's `prefix` option for the shard's queue. */
  readonly bullPrefix: string;
  /** The execution index and the dropped set of the shard's executions. */
  readonly executionIndex: ExecutionIndexKeys;
}

/** The hash tag of shard `shard` of `shards` for the deployment `prefix`. */
export function shardTag(prefix: string, shard: number, shards: number): string {
  return shards === 1 ? `{${prefix}}` : `{${prefix}:q${shard}}`;
}

/** The SCAN pattern of every shard key of `prefix` when S > 1 (deploymentPattern covers S = 1). */
export function shardPattern(prefix: string): string {
  return `{${prefix}:q*`;
}

/** The shard of execution `number`. */
export function shardOfNumber(number: number, shards: number): number {
  return number % shards;
}

/**
 * The shard of unique name `name`: CRC-32 of its UTF-8 bytes, mod S. CRC-32 is stable across Node
 * versions and machines (zlib's), which is all a shard choice needs; it is no defence against names
 * chosen to pile up in one shard, which would only make that shard busier.
 */
export function shardOfName(name: string, shards: number): number {
  return crc32(Buffer.from(name, 'utf8')) % shards;
}

/** The shard keys of every shard of the deployment `prefix`, index = shard. */
export function createShardKeys(prefix: string, shards: number): readonly ShardKeys[] {
  return Array.from({ length: shards }, (_, shard) => {
    const tag = shardTag(prefix, shard, shards);
    return {
      shard,
      tag,
      bullPrefix: tag,
      executionIndex: executionIndexKeys(tag),
    };
  });
}

/**
 * A block of execution numbers `[next, end)` handed out by shard. `take()` gives the lowest number left;
 * `takeFor(shard)` the lowest with that residue, and the numbers it passes over on the way are kept for
 * later takes (of any shard), so a unique name's choice of shard loses no number of the block.
 */
export class ShardedBlock {
  /** Numbers passed over by takeFor, by residue, each list ascending. */
  private readonly skipped: number[][];
  private skippedCount = 0;

  constructor(
    private readonly shards: number,
    private next = 0,
    private end = 0,
  ) {
    this.skipped = Array.from({ length: shards }, () => []);
  }

  /** How many numbers are left. */
  get size(): number {
    return this.end - this.next + this.skippedCount;
  }

  /**
   * Replaces the block's range with `[first, last]`. The numbers the old one passed over are kept,
   * unless `keepSkipped` is false (they came with another restore count than the new block's).
   */
  refill(first: number, last: number, keepSkipped = true): void {
    if (!keepSkipped) {
      this.clear();
    }
    this.next = first;
    this.end = last + 1;
  }

  /** Drops every number, skipped ones included. */
  clear(): void {
    this.next = 0;
    this.end = 0;
    for (const list of this.skipped) {
      list.length = 0;
    }
    this.skippedCount = 0;
  }

  /** The lowest number left, or undefined when the block is used up. */
  take(): number | undefined {
    if (this.skippedCount === 0) {
      return this.next < this.end ? this.next++ : undefined;
    }
    let best = -1;
    for (let r = 0; r < this.shards; r++) {
      const first = this.skipped[r]![0];
      if (first !== undefined && (best < 0 || first < this.skipped[best]![0]!)) {
        best = r;
      }
    }
    if (best >= 0) {
      this.skippedCount--;
      return this.skipped[best]!.shift();
    }
    return this.next < this.end ? this.next++ : undefined;
  }

  /** The lowest number left that lives in `shard`, or undefined when the block has none. */
  takeFor(shard: number): number | undefined {
    const kept = this.skipped[shard]!;
    if (kept.length > 0) {
      this.skippedCount--;
      return kept.shift();
    }
    // At most S - 1 numbers are passed over before one with the residue comes.
    while (this.next < this.end) {
      const n = this.next++;
      if (n % this.shards === shard) {
        return n;
      }
      this.skipped[n % this.shards]!.push(n);
      this.skippedCount++;
    }
    return undefined;
  }
}

/** Where one shard's tag lives on a Cluster: its slot and the master serving it now. */
export interface ShardPlacement {
  readonly shard: number;
  readonly tag: string;
  readonly slot: number;
  /** `host:port` of the master serving the slot as the client knows it; undefined on a single Redis. */
  readonly master: string | undefined;
}

/**
 * Which master serves each shard (docs/ARCHITECTURE.md#queue-shards): shards buy capacity only when
 * their tags land on different masters, and `SPROCD_PREFIX` decides that.
 */
export function shardPlacement(connection: RedisConnection, shards: readonly ShardKeys[]): ShardPlacement[] {
  return shards.map(({ shard, tag }) => {
    const slot = slotOf(tag);
    return { shard, tag, slot, master: isCluster(connection) ? connection.slots[slot]?.[0] : undefined };
  });
}

/** A deployment's queue shards: what every part asks to find the shard of an execution or a name. */
export class QueueShards {
  /** Every shard, index = shard. */
  readonly all: readonly ShardKeys[];

  constructor(
    prefix: string,
    /** S, SPROCD_QUEUE_SHARDS. */
    readonly count: number,
  ) {
    if (!Number.isInteger(count) || count < 1 || count > MAX_QUEUE_SHARDS) {
      throw new RangeError(`queue shards: ${count} is not a whole number from 1 to ${MAX_QUEUE_SHARDS}`);
    }
    this.all = createShardKeys(prefix, count);
  }

  /** The shard of execution `number`. */
  ofNumber(number: number): ShardKeys {
    return this.all[shardOfNumber(number, this.count)]!;
  }

  /** The shard of unique name `name`. */
  ofName(name: string): ShardKeys {
    return this.all[shardOfName(name, this.count)]!;
  }

  /**
   * Calls `each` once per shard that holds any of `items` (an item's shard is that of its execution
   * number, `numberOf`), all at once, with that shard's items in the order given; its answers, one per
   * item, come back in the order of `items`. A script or a Cluster pipeline keeps to one slot, so work
   * on many executions goes one call per shard. With S = 1: one call with every item; no items, no call.
   */
  async mapByShard<T, R>(
    items: readonly T[],
    numberOf: (item: T, index: number) => number,
    each: (group: T[], shard: ShardKeys) => Promise<readonly R[]>,
  ): Promise<R[]> {
    const groups = new Map<ShardKeys, { group: T[]; positions: number[] }>();
    items.forEach((item, i) => {
      const shard = this.ofNumber(numberOf(item, i));
      const found = groups.get(shard);
      if (found) {
        found.group.push(item);
        found.positions.push(i);
      } else {
        groups.set(shard, { group: [item], positions: [i] });
      }
    });
    const answers = new Array<R>(items.length);
    await Promise.all(
      [...groups].map(async ([shard, { group, positions }]) => {
        const found = await each(group, shard);
        positions.forEach((at, i) => (answers[at] = found[i]!));
      }),
    );
    return answers;
  }
}
