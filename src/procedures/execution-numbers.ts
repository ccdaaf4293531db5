/**
 * Execution numbers: one counter in Redis for the whole cluster, taken in blocks so that most
 * executions need no round trip of their own. A number is never handed out twice and never passes
 * 2^53 - 1, the largest integer a JSON number (a double) holds exactly: near that end the blocks are
 * cut short, then new executions are refused with EXECUTION_NUMBERS_EXHAUSTED. A block cut short by
 * a stop, or dropped by {@link NumberAllotment.forget}, leaves a gap. A number that turns out to be
 * taken anyway (a node kept a block from before a restore that put back executions with those
 * numbers) is caught after the add by execution-index.ts, which raises the counter past it; the
 * execution then takes a fresh block. With queue shards a unique name takes the next number of its
 * shard ({@link NumberAllotment.takeFor}); the numbers passed over stay for later takes. See
 * docs/ARCHITECTURE.md#bounded-resources and #queue-shards.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { SprocdError } from '../errors.js';
import type { Keys } from '../redis/keys.js';
import { numberBlock } from '../redis/scripts.js';
import { ShardedBlock } from '../redis/shards.js';

/** A number taken, with the restore counter of its block (see numberBlock-2.lua). */
export interface TakenNumber {
  readonly number: number;
  readonly restores: string;
}

/** Execution numbers a node takes from the cluster's counter at once, at least. */
export const NUMBER_BLOCK = 20;

/**
 * The most a block grows to. A block used up within {@link GROW_WITHIN_MS} of its arrival makes the
 * next one twice as large, so that the requests in flight on a busy node share one refill instead of
 * queueing behind refills of 20; one that lasted longer than {@link SHRINK_AFTER_MS} halves it, so an
 * idle node does not strand many numbers when it stops.
 */
export const MAX_NUMBER_BLOCK = 10_000;
const GROW_WITHIN_MS = 1000;
const SHRINK_AFTER_MS = 10_000;

/** The largest execution number: JSON numbers are doubles, exact up to this. */
export const MAX_EXECUTION_NUMBER = Number.MAX_SAFE_INTEGER;

/** Every execution number up to {@link MAX_EXECUTION_NUMBER} has been handed out. */
export class NumbersExhaustedError extends SprocdError {
  constructor() {
    super(
      'EXECUTION_NUMBERS_EXHAUSTED',
      `Every execution number up to ${MAX_EXECUTION_NUMBER} (2^53 - 1) has been handed out; this deployment takes no new executions. Start a new deployment (another SPROCD_PREFIX).`,
    );
  }
}

/** One node's share of the execution counter. */
export class NumberAllotment {
  /** The numbers held, handed out lowest first, or by queue shard (redis/shards.ts). */
  private readonly block: ShardedBlock;
  private restores = '';
  private refill: Promise<void> | undefined;
  /** Raised by forget(): a block that arrives after it was asked for before is dropped. */
  private generation = 0;
  /** The size of the next block (adapts between blockSize and MAX_NUMBER_BLOCK). */
  private size: number;
  /** When the last block arrived. */
  private filledAt = 0;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly blockSize = NUMBER_BLOCK,
    private readonly max = MAX_EXECUTION_NUMBER,
    private readonly growWithinMs = GROW_WITHIN_MS,
    /** SPROCD_QUEUE_SHARDS: {@link takeFor} hands out numbers of one shard. */
    private readonly shards = 1,
  ) {
    this.size = blockSize;
    this.block = new ShardedBlock(shards);
  }

  /** The next number; throws NumbersExhaustedError once none is left. */
  take(): Promise<TakenNumber> | TakenNumber {
    const number = this.block.take();
    if (number !== undefined) {
      return { number, restores: this.restores };
    }
    return this.refillFor(1).then(() => this.take());
  }

  /**
   * The next number that lives in queue shard `shard` (a unique name's, redis/shards.ts); the ones
   * passed over stay for later takes. A refill of at least S numbers holds one of every shard.
   */
  takeFor(shard: number): Promise<TakenNumber> | TakenNumber {
    const number = this.block.takeFor(shard);
    if (number !== undefined) {
      return { number, restores: this.restores };
    }
    return this.refillFor(this.shards).then(() => this.takeFor(shard));
  }

  /** `count` numbers (a batch), taken with at most one refill of the right size when few are left. */
  async takeMany(count: number): Promise<TakenNumber[]> {
    const out: TakenNumber[] = [];
    for (;;) {
      while (out.length < count) {
        const number = this.block.take();
        if (number === undefined) {
          break;
        }
        out.push({ number, restores: this.restores });
      }
      if (out.length === count) {
        return out;
      }
      await this.refillFor(count - out.length);
    }
  }

  /** The block size now (tests, benchmarks). */
  get nextBlockSize(): number {
    return this.size;
  }

  private refillFor(missing: number): Promise<void> {
    if (!this.refill) {
      const generation = this.generation;
      const asked = Date.now();
      if (this.filledAt > 0 && asked - this.filledAt < this.growWithinMs) {
        this.size = Math.min(MAX_NUMBER_BLOCK, this.size * 2);
      } else if (asked - this.filledAt > SHRINK_AFTER_MS) {
        this.size = Math.max(this.blockSize, Math.floor(this.size / 2));
      }
      // A batch larger than the block gets its numbers and the usual block besides.
      const size = missing > this.size ? missing + this.size : this.size;
      this.refill = numberBlock(this.redis, this.keys, size, this.max)
        .then((block) => {
          if (!block) {
            throw new NumbersExhaustedError();
          }
          if (generation === this.generation) {
            // Numbers passed over by takeFor stay, unless a restore came between their block and this
            // one: they would be handed out with the new count, and their check skipped.
            this.block.refill(block.first, block.last, block.restores === this.restores);
            this.restores = block.restores;
            this.filledAt = Date.now();
          }
        })
        .finally(() => {
          this.refill = undefined;
        });
    }
    return this.refill;
  }

  /** Drops the numbers this node holds; the next execution takes a fresh block. */
  forget(): void {
    this.generation++;
    this.block.clear();
  }
}
