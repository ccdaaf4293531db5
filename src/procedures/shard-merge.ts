/**
 * Merging the executions of every queue shard into one listing (SPROCD_QUEUE_SHARDS > 1): each shard
 * is read on its own (a Cluster cannot span slots in one call), all of them in parallel, a chunk at a
 * time, and the chunks are merged by a key. Each shard keeps its own position, so a cursor made of the
 * S positions resumes exactly where the page stopped in every shard: an execution is taken only when
 * its shard's position moves past it, and no shard's position moves past one not taken.
 */

/** One execution read from a shard, with the shard's position just past it. */
export interface MergeEntry<P, T> {
  /** Compared element by element, the larger first; undefined: it passes no filter, skipped as met. */
  key: readonly number[] | undefined;
  item: T;
  /** The shard's position once this entry is taken or skipped. */
  after: P;
}

/** The entries of shard `shard` past position `at` (undefined: from its start); `done`: none after them. */
export type ShardRead<P, T> = (
  shard: number,
  at: P | undefined,
) => Promise<{ entries: MergeEntry<P, T>[]; done: boolean }>;

/** A shard's position: undefined at its start, null once it has nothing left. */
export type ShardPosition<P> = P | undefined | null;

interface Source<P, T> {
  at: ShardPosition<P>;
  buffer: MergeEntry<P, T>[];
  done: boolean;
}

function compareKeys(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) {
      return d;
    }
  }
  return 0;
}

/** The merged listing of S shards from their positions. */
export class ShardMerge<P, T> {
  private readonly sources: Source<P, T>[];
  /** Entries taken or skipped so far. */
  examined = 0;

  constructor(
    private readonly read: ShardRead<P, T>,
    start: readonly ShardPosition<P>[],
  ) {
    this.sources = start.map((at) => ({ at, buffer: [], done: at === null }));
  }

  /** Each shard's position now (the cursor's part). */
  positions(): ShardPosition<P>[] {
    return this.sources.map((s) => (s.done && s.buffer.length === 0 ? null : s.at));
  }

  /** Whether every shard has nothing left. */
  get exhausted(): boolean {
    return this.sources.every((s) => s.done && s.buffer.length === 0);
  }

  /**
   * Up to `want` items in merged order, looking at no more entries once `examined` reaches
   * `maxExamined`; fewer only when the shards run out or the cap is reached.
   */
  async take(want: number, maxExamined: number): Promise<T[]> {
    const taken: T[] = [];
    while (taken.length < want && this.examined < maxExamined) {
      // A shard with nothing buffered but more to read must be read before the merge can go on.
      const empty = this.sources
        .map((s, shard) => ({ s, shard }))
        .filter(({ s }) => s.buffer.length === 0 && !s.done);
      await Promise.all(
        empty.map(async ({ s, shard }) => {
          const { entries, done } = await this.read(shard, s.at ?? undefined);
          s.buffer = entries;
          s.done = done;
        }),
      );
      if (this.exhausted) {
        break;
      }
      this.mergeBuffered(taken, want, maxExamined);
    }
    return taken;
  }

  /** Takes from the buffers while every shard that has more has some buffered. */
  private mergeBuffered(taken: T[], want: number, maxExamined: number): void {
    while (taken.length < want && this.examined < maxExamined) {
      let best: Source<P, T> | undefined;
      for (const s of this.sources) {
        this.skipUnkeyed(s, maxExamined);
        if (s.buffer.length === 0) {
          if (!s.done) {
            return;
          }
          continue;
        }
        const head = s.buffer[0] as MergeEntry<P, T>;
        if (!best || compareKeys(head.key ?? [], (best.buffer[0] as MergeEntry<P, T>).key ?? []) > 0) {
          best = s;
        }
      }
      if (!best || this.examined >= maxExamined) {
        return;
      }
      const entry = best.buffer.shift() as MergeEntry<P, T>;
      best.at = entry.after;
      this.examined++;
      taken.push(entry.item);
    }
  }

  private skipUnkeyed(s: Source<P, T>, maxExamined: number): void {
    while (s.buffer.length > 0 && s.buffer[0]?.key === undefined && this.examined < maxExamined) {
      s.at = (s.buffer.shift() as MergeEntry<P, T>).after;
      this.examined++;
    }
  }
}
