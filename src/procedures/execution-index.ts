/**
 * The indexes of executions by procedure and by process name, so that GET /v1/executions?procedure=
 * or ?name= reads the executions it shows instead of scanning every job of every state
 * (./indexed-pages.ts). Each index is a sorted set of job ids scored by creation time.
 *
 * BullMQ's add cannot be hooked, so an execution is indexed right after its add, by one script
 * (executionIndex-n.lua) that also checks the job is the execution this node added: BullMQ keeps
 * the job it has when an id is taken and answers as if it had added it, so a number in use shows
 * there (see ./execution-numbers.ts). The adds of a moment share one call of the script.
 *
 * Retention: BullMQ removes finished jobs by count and age, and the indexes follow lazily: a listing
 * takes out the gone ones it meets, and each call of the script sweeps a slice of one index, every
 * index once a minute at most, deleting an index left empty (process names come and go).
 * See docs/ARCHITECTURE.md#the-execution-index.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Keys } from '../redis/keys.js';
import { executionIndex, type AddedExecution, type IndexSweep } from '../redis/scripts.js';

/** How the indexes are swept: a pass over each at most every minute, 100 members per call. */
export const INDEX_SWEEP: IndexSweep = { pauseMs: 60_000, batch: 100 };

/** Most executions one call of the script checks. */
const MAX_BATCH = 500;

interface Pending {
  added: AddedExecution;
  resolve(owned: boolean): void;
  reject(err: unknown): void;
}

/**
 * Indexes the executions a node adds, batching those added at the same moment, with one call of the
 * script in flight at a time: what is added meanwhile goes in the next call (a group commit). Under
 * load the batches grow instead of the calls; Redis, not the node, limits the queue's throughput,
 * and each call costs it about as much as a dozen executions' share of the work.
 */
export class ExecutionIndexWriter {
  private pending: Pending[] = [];
  private scheduled = false;
  private inFlight = false;

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly sweep: IndexSweep = INDEX_SWEEP,
  ) {}

  /**
   * Indexes an execution BullMQ just added. Resolves false, indexing nothing, when its job holds
   * another execution: its number was already taken (the counter is then past it).
   */
  record(added: AddedExecution): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.pending.push({ added, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (!this.scheduled && !this.inFlight) {
      this.scheduled = true;
      // The replies of adds sent together arrive together: one turn later they are all here.
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending.splice(0, MAX_BATCH);
    this.inFlight = true;
    executionIndex(
      this.redis,
      this.keys,
      batch.map((p) => p.added),
      this.sweep,
      Date.now(),
    )
      .then(
        (owned) => batch.forEach((p, i) => p.resolve(owned[i] ?? true)),
        (err: unknown) => batch.forEach((p) => p.reject(err)),
      )
      .finally(() => {
        this.inFlight = false;
        if (this.pending.length > 0) {
          this.schedule();
        }
      });
  }
}

/**
 * Indexes executions added by other means than Execute on server (a restore queues the executions
 * of its file again). Returns, per execution, whether its job holds it.
 */
export async function indexExecutions(
  redis: RedisConnection,
  keys: Keys,
  added: readonly AddedExecution[],
): Promise<boolean[]> {
  const owned: boolean[] = [];
  for (let i = 0; i < added.length; i += MAX_BATCH) {
    owned.push(
      ...(await executionIndex(redis, keys, added.slice(i, i + MAX_BATCH), INDEX_SWEEP, Date.now())),
    );
  }
  return owned;
}
