/**
 * BullMQ's job events as sprocd events, with what the hub remembers of each execution: its procedure
 * (which only the `added` entry carries) and its starts. An execution first seen after its `added`
 * entry (the hub started later) is looked up once, for a whole read in one round trip.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import { entryNumber, fieldsOf, mapBullEntry, type EntryFields, type ExecutionMeta } from './bull-events.js';
import type { Entry } from './entries.js';
import { parseStreamId, type StreamId } from './ids.js';

/** Executions the hub remembers the procedure of. */
const META_CAPACITY = 50_000;

/** Maps BullMQ's entries, remembering executions. */
export class BullMapper {
  private readonly meta = new Map<number, ExecutionMeta>();

  constructor(
    private readonly redis: RedisConnection,
    /** The job hash of execution `number`. */
    private readonly jobKey: (number: number) => string,
  ) {}

  /**
   * Maps BullMQ entries of queue shard `shard`'s stream, looking up the procedure of executions first seen here in one round trip.
   * Live reads use the hub's memory of executions; a catch-up passes its own (`replay`), since
   * replayed `active` entries must not count starts again: a replayed event carries an attempt only
   * when the replay began before its execution was added.
   */
  async map(
    rows: [string, string[]][],
    shard: number,
    replay?: Map<number, ExecutionMeta>,
  ): Promise<Entry[]> {
    if (rows.length === 0) {
      return [];
    }
    const parsed: { sid: StreamId; fields: EntryFields; number: number | undefined }[] = [];
    const unknown = new Set<number>();
    const known = (n: number): ExecutionMeta | undefined => {
      if (!replay) {
        return this.meta.get(n);
      }
      let meta = replay.get(n);
      const shared = meta ? undefined : this.meta.get(n);
      if (shared) {
        meta = { procedure: shared.procedure, attempt: undefined };
        replay.set(n, meta);
      }
      return meta;
    };
    for (const [id, raw] of rows) {
      const sid = parseStreamId(id);
      if (!sid) {
        continue;
      }
      const fields = fieldsOf(raw);
      const number = entryNumber(fields);
      parsed.push({ sid, fields, number });
      if (number === undefined) {
        continue;
      }
      // From its `added` entry on, every start of an execution is in the stream: count them.
      if (fields.event === 'added' && (replay || !this.meta.has(number))) {
        this.remember(number, { procedure: fields.name, attempt: 0 }, replay);
      } else if (!known(number)) {
        unknown.add(number);
      }
    }
    if (unknown.size > 0) {
      await this.lookUp([...unknown], parsed, replay);
    }
    const out: Entry[] = [];
    for (const { sid, fields, number } of parsed) {
      const meta = number === undefined ? undefined : known(number);
      out.push({ stream: 'bull', shard, sid, draft: meta ? mapBullEntry(fields, sid.ms, meta) : undefined });
    }
    return out;
  }

  /** Reads the procedure and starts of executions added before the hub started. */
  private async lookUp(
    numbers: number[],
    parsed: { fields: EntryFields; number?: number }[],
    replay: Map<number, ExecutionMeta> | undefined,
  ): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const n of numbers) {
      pipeline.hmget(this.jobKey(n), 'name', 'ats');
    }
    const res = await pipeline.exec().catch(() => undefined);
    numbers.forEach((n, i) => {
      const [err, value] = res?.[i] ?? [new Error('no answer')];
      const [name, ats] = err ? [] : ((value as (string | null)[] | undefined) ?? []);
      // The starts Redis counts now include the `active` entries of this batch, which count them again.
      const activeHere = parsed.filter((p) => p.number === n && p.fields.event === 'active').length;
      const attempt = replay ? undefined : Math.max(0, Number(ats ?? 0) - activeHere);
      this.remember(n, { procedure: name ?? undefined, attempt }, replay);
    });
  }

  private remember(number: number, meta: ExecutionMeta, replay?: Map<number, ExecutionMeta>): void {
    if (replay) {
      replay.set(number, meta);
      return;
    }
    this.meta.set(number, meta);
    if (this.meta.size > META_CAPACITY) {
      const oldest = this.meta.keys().next();
      if (!oldest.done) {
        this.meta.delete(oldest.value);
      }
    }
  }
}
