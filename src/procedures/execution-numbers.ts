/**
 * Execution numbers: one counter in Redis for the whole cluster, taken in blocks so that most
 * executions need no round trip of their own. A number is never handed out twice and never passes
 * 2^53 - 1, the largest integer a JSON number (a double) holds exactly: near that end the blocks are
 * cut short, then new executions are refused with EXECUTION_NUMBERS_EXHAUSTED. A block cut short by
 * a stop, or dropped by {@link NumberAllotment.forget}, leaves a gap. A number that turns out to be
 * taken anyway (a node kept a block from before a restore that put back executions with those
 * numbers) is caught after the add by execution-index.ts, which raises the counter past it; the
 * execution then takes a fresh block. See docs/ARCHITECTURE.md#bounded-resources.
 */
import type { Redis } from 'ioredis';
import { SprocdError } from '../errors.js';
import type { Keys } from '../redis/keys.js';
import { numberBlock } from '../redis/scripts.js';

/** A number taken, with the restore counter of its block (see numberBlock-2.lua). */
export interface TakenNumber {
  readonly number: number;
  readonly restores: string;
}

/** Execution numbers a node takes from the cluster's counter at once. */
export const NUMBER_BLOCK = 20;

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
  private next = 0;
  private end = 0;
  private restores = '';
  private refill: Promise<void> | undefined;
  /** Raised by forget(): a block that arrives after it was asked for before is dropped. */
  private generation = 0;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly blockSize = NUMBER_BLOCK,
    private readonly max = MAX_EXECUTION_NUMBER,
  ) {}

  /** The next number; throws NumbersExhaustedError once none is left. */
  take(): Promise<TakenNumber> | TakenNumber {
    if (this.next < this.end) {
      return { number: this.next++, restores: this.restores };
    }
    if (!this.refill) {
      const generation = this.generation;
      this.refill = numberBlock(this.redis, this.keys, this.blockSize, this.max)
        .then((block) => {
          if (!block) {
            throw new NumbersExhaustedError();
          }
          if (generation === this.generation) {
            this.next = block.first;
            this.end = block.last + 1;
            this.restores = block.restores;
          }
        })
        .finally(() => {
          this.refill = undefined;
        });
    }
    return this.refill.then(() => this.take());
  }

  /** Drops the numbers this node holds; the next execution takes a fresh block. */
  forget(): void {
    this.generation++;
    this.next = 0;
    this.end = 0;
  }
}
