/**
 * The snapshot a backup reads: one MULTI takes the session identity, the execution counter and
 * server-side COPYs of the storage entries hash and of BullMQ's unfinished-job lists. That MULTI is
 * the only moment storage commits wait (4D holds writes during a backup the same way); the file's
 * lines are then read from the private copies, in batches, while everything else runs on
 * (docs/ARCHITECTURE.md#backups-and-restore).
 *
 * With queue shards (SPROCD_QUEUE_SHARDS = S > 1) the lists of each shard live under a hash tag of
 * their own, and a MULTI keeps to one slot: the snapshot is then one MULTI for the deployment's keys
 * (identity, counter, entries) and one per shard (its lists, copied beside them under the shard's
 * tag), sent together. Each is a consistent instant, but the instants are moments apart: an execution
 * queued or finished between them may be in one shard's copy and not in another's, as if the backup
 * had been taken a moment earlier or later for that shard. Nothing is lost by it: an execution is in
 * one shard only, and a restore raises the counter past every number the file names. With S = 1 it is
 * the one MULTI above, key for key.
 */
import { Job } from 'bullmq';
import type { RedisConnection } from '../redis/redis-connection.js';
import {
  JOB_FIELDS,
  UNFINISHED_JOB_SETS,
  bullQueueKeys,
  delayedScoreDueAt,
} from '../redis/bullmq-internals.js';
import { jobIdOf, numberOfJobId, type Keys } from '../redis/keys.js';
import { NO_ACKS, type ReplicaAcks, type WriteAcks } from '../redis/replica-acks.js';
import type { ShardKeys } from '../redis/shards.js';
import type { BackupEncoder, BackupHeader, ExecutionLine, SourceList } from './backup-format.js';
import { BackupReadError } from './backup-status.js';
import { SlotSnapshot } from './backup-slots.js';

/** Job ids read per Redis round trip. */
const READ_BATCH = 500;
/** Storage entries asked per HSCAN call. */
const SCAN_BATCH = 100;
/** The copies vanish by themselves after this if a node dies mid-backup. */
const SNAPSHOT_TTL_MS = 3_600_000;
/** Job options a restore puts back (the others are set again from the line itself). */
const KEPT_OPTIONS = ['attempts', 'backoff', 'removeOnComplete', 'removeOnFail', 'deduplication'] as const;

/** The acknowledgements of a backup: a shard's MULTI is confirmed by its own master's replicas. */
export type SnapshotAcks = WriteAcks & Partial<Pick<ReplicaAcks, 'routed'>>;

/** One job list of one queue shard, and where the snapshot copies it. */
interface ListCopy {
  readonly shard: ShardKeys;
  readonly part: SourceList;
  readonly kind: 'list' | 'zset';
  readonly source: string;
  readonly copy: string;
}

/** The keys one MULTI of the snapshot copies: all of one hash tag. */
interface SnapshotGroup {
  /** The deployment's own keys (identity, counter, entries) are in this group. */
  readonly deployment: boolean;
  readonly lists: readonly ListCopy[];
}

/** The consistent moment of backup `number` and the reading of it. */
export class BackupSnapshot {
  private session: Record<string, string> = {};
  private sequence = 0;
  private readonly groups: readonly SnapshotGroup[];

  constructor(
    private readonly redis: RedisConnection,
    private readonly keys: Keys,
    private readonly number: number,
    /** SPROCD_REPLICA_ACKS: the snapshot counts as taken once replicas have it (and all before it). */
    private readonly acks: SnapshotAcks = NO_ACKS,
    /** SPROCD_STORAGE_SLOTS: with more than 1, the entries are copied slot by slot (backup-slots.ts). */
    storageSlots = 1,
  ) {
    this.slots = storageSlots > 1 ? new SlotSnapshot(redis, keys, number, storageSlots) : undefined;
    const shards = keys.queues.all.map((shard) => this.listCopies(shard));
    this.groups =
      shards.length === 1
        ? [{ deployment: true, lists: shards[0]! }]
        : [{ deployment: true, lists: [] }, ...shards.map((lists) => ({ deployment: false, lists }))];
  }

  private readonly slots: SlotSnapshot | undefined;

  /**
   * Takes the snapshot: identity, counter and copies of the entries hash and of the job lists, in
   * one MULTI per hash tag (see the file's comment). Copies of keys that do not exist are simply
   * absent. Throws BackupReadError.
   */
  async take(): Promise<void> {
    // Settled all, so that no MULTI still runs when a failed take's copies are discarded.
    const taken = await Promise.allSettled(this.groups.map((group) => this.takeGroup(group)));
    for (const result of taken) {
      if (result.status === 'rejected') {
        throw result.reason instanceof BackupReadError ? result.reason : new BackupReadError(result.reason);
      }
    }
    if (this.slots !== undefined) {
      // After the MULTI: the entries are a moment later than the identity and the job lists.
      await read(this.slots.take());
    }
  }

  private async takeGroup(group: SnapshotGroup): Promise<void> {
    const keys = this.keys;
    const m = this.redis.multi();
    const sources: [string, string][] = group.lists.map((l): [string, string] => [l.source, l.copy]);
    if (group.deployment) {
      m.hgetall(keys.session).get(keys.sequence);
      sources.unshift([keys.storage.data, this.copy('data')]);
    }
    for (const [source, copy] of sources) {
      m.copy(source, copy, 'REPLACE').pexpire(copy, SNAPSHOT_TTL_MS);
    }
    const shard = group.lists[0]?.shard;
    const acks = group.deployment || !shard ? this.acks : (this.acks.routed?.(shard.tag) ?? this.acks);
    let res: [Error | null, unknown][] | null;
    const ticket = acks.ticket();
    try {
      res = await m.exec();
      // The file then records a state a fail-over cannot take back, and its copies outlive one.
      await acks.confirm(ticket);
    } catch (err) {
      throw new BackupReadError(err);
    }
    if (!res) {
      throw new BackupReadError(new Error('the snapshot transaction was aborted'));
    }
    for (const [err] of res) {
      if (err) {
        throw new BackupReadError(err);
      }
    }
    if (group.deployment) {
      this.session = (res[0]?.[1] ?? {}) as Record<string, string>;
      this.sequence = Number(res[1]?.[1] ?? 0);
    }
  }

  /**
   * How many storage entries and executions the copies hold: the lines still to come (at most: an
   * execution in two lists is written once). Throws BackupReadError.
   */
  async size(): Promise<number> {
    const counts = await Promise.all(
      this.groups.map(async (group) => {
        const m = this.redis.pipeline();
        if (group.deployment) {
          m.hlen(this.copy('data'));
        }
        for (const { copy, kind } of group.lists) {
          if (kind === 'list') {
            m.llen(copy);
          } else {
            m.zcard(copy);
          }
        }
        const res = await read(m.exec());
        return (res ?? []).reduce((sum, [err, n]) => sum + (err ? 0 : Number(n)), 0);
      }),
    );
    const inSlots = this.slots === undefined ? 0 : await read(this.slots.size());
    return counts.reduce((sum, n) => sum + n, inSlots);
  }

  /** Removes the copies (also when {@link take} failed half-way); never throws. */
  async discard(): Promise<void> {
    for (const group of this.groups) {
      // The copies of one group share its hash tag: one UNLINK, on a Cluster too.
      const copies = group.lists.map((l) => l.copy);
      if (group.deployment) {
        copies.unshift(this.copy('data'));
      }
      if (copies.length > 0) {
        await this.redis.unlink(...copies).catch(() => undefined);
      }
    }
    await this.slots?.discard();
  }

  /** The lines of the file, read from the copies in batches; Redis failures throw BackupReadError. */
  async *lines(header: BackupHeader, encoder: BackupEncoder, signal: AbortSignal): AsyncGenerator<Buffer> {
    yield Buffer.concat([
      encoder.line(header),
      encoder.line({ t: 'session', fields: this.session }),
      encoder.line({ t: 'sequence', value: this.sequence }),
    ]);
    yield* this.entryLines(encoder, signal);
    const seen = new Set<number>();
    for (const group of this.groups) {
      for (const list of group.lists) {
        yield* this.executionLines(list, seen, encoder, signal);
      }
    }
    yield encoder.trailer();
  }

  private copy(part: string): string {
    return this.keys.backup.snapshot(this.number, part);
  }

  /**
   * The unfinished-job lists of `shard` and their copies: beside them, under the shard's hash tag
   * (with S = 1 that is the deployment's, and the copies are named as they always were).
   */
  private listCopies(shard: ShardKeys): ListCopy[] {
    const bull = bullQueueKeys(shard);
    const single = this.keys.queues.count === 1;
    return UNFINISHED_JOB_SETS.map(({ part, kind }) => ({
      shard,
      part,
      kind,
      source: bull[part],
      copy: single ? this.copy(part) : `${shard.tag}:backup:snap:${this.number}:${part}`,
    }));
  }

  private async *entryLines(encoder: BackupEncoder, signal: AbortSignal): AsyncGenerator<Buffer> {
    const seen = new Set<string>();
    for (const copy of this.slots?.dataCopies() ?? [this.copy('data')]) {
      yield* this.hashLines(copy, seen, encoder, signal);
    }
  }

  private async *hashLines(
    copy: string,
    seen: Set<string>,
    encoder: BackupEncoder,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    let cursor = '0';
    do {
      signal.throwIfAborted();
      const [next, flat] = await read(this.redis.hscan(copy, cursor, 'COUNT', SCAN_BATCH));
      cursor = next;
      const chunk: Buffer[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const key = flat[i] as string;
        const json = flat[i + 1] as string;
        if (seen.has(key)) {
          continue; // HSCAN may return an element twice
        }
        seen.add(key);
        try {
          JSON.parse(json);
        } catch {
          throw new BackupReadError(new Error(`storage entry "${key}" does not hold JSON`));
        }
        chunk.push(encoder.entry(key, json));
      }
      if (chunk.length > 0) {
        yield Buffer.concat(chunk);
      }
    } while (cursor !== '0');
  }

  private async *executionLines(
    list: ListCopy,
    seen: Set<number>,
    encoder: BackupEncoder,
    signal: AbortSignal,
  ): AsyncGenerator<Buffer> {
    const { copy, kind } = list;
    for (let start = 0; ; start += READ_BATCH) {
      signal.throwIfAborted();
      const stop = start + READ_BATCH - 1;
      let ids: string[];
      let scores: number[] | undefined;
      if (kind === 'list') {
        ids = await read(this.redis.lrange(copy, start, stop));
      } else {
        const flat = await read(this.redis.zrange(copy, start, stop, 'WITHSCORES'));
        ids = [];
        scores = [];
        for (let i = 0; i + 1 < flat.length; i += 2) {
          ids.push(flat[i] as string);
          scores.push(Number(flat[i + 1]));
        }
      }
      if (ids.length === 0) {
        return;
      }
      const lines = await read(this.readJobs(ids, scores, list, seen));
      if (lines.length > 0) {
        yield Buffer.concat(lines.map((line) => encoder.execution(line)));
      }
      if (ids.length < READ_BATCH) {
        return;
      }
    }
  }

  /**
   * Reads the job hashes of `ids` in one pipeline and turns them into execution lines. The hashes are
   * read in the queue of the list that names them: one shard's, so the pipeline keeps to its slot.
   */
  private async readJobs(
    ids: string[],
    scores: number[] | undefined,
    list: ListCopy,
    seen: Set<number>,
  ): Promise<ExecutionLine[]> {
    const from = list.part;
    const bull = bullQueueKeys(list.shard);
    const numbers = ids.map((id) => numberOfJobId(id));
    const pipe = this.redis.pipeline();
    for (const n of numbers) {
      if (n !== undefined) {
        pipe.hgetall(bull.job(jobIdOf(n)));
      }
    }
    const replies = (await pipe.exec()) ?? [];
    const lines: ExecutionLine[] = [];
    let r = 0;
    for (let i = 0; i < ids.length; i++) {
      const n = numbers[i];
      if (n === undefined) {
        continue; // not an execution (foreign job id)
      }
      const [err, raw] = replies[r++] ?? [null, null];
      if (err) {
        throw err;
      }
      const hash = raw as Record<string, string> | null;
      const data = hash?.[JOB_FIELDS.data];
      if (seen.has(n) || !hash || data === undefined) {
        continue; // gone since the snapshot (its retention dropped it once it finished)
      }
      if (hash[JOB_FIELDS.finishedOn] !== undefined) {
        continue; // aborted while waiting, left in the wait list until a worker drops it
      }
      seen.add(n);
      const opts = Job.optsFromJSON(hash[JOB_FIELDS.opts]) as Record<string, unknown>;
      const kept: Record<string, unknown> = {};
      for (const option of KEPT_OPTIONS) {
        if (opts[option] !== undefined) {
          kept[option] = opts[option];
        }
      }
      const line: ExecutionLine = {
        t: 'execution',
        n,
        state: from === 'delayed' ? 'delayed' : 'waiting',
        from,
        name: hash[JOB_FIELDS.name] ?? '',
        data: JSON.parse(data) as unknown,
        opts: kept,
        timestamp: Number(hash[JOB_FIELDS.timestamp] ?? 0),
      };
      const score = scores?.[i];
      if (from === 'delayed' && score !== undefined) {
        line.dueAt = delayedScoreDueAt(score);
      }
      const priority = Number(hash[JOB_FIELDS.priority] ?? 0);
      if (priority > 0) {
        line.priority = priority;
      }
      lines.push(line);
    }
    return lines;
  }
}

/** A Redis read of the snapshot: its failure is the backup's Redis failure (1407). */
async function read<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw new BackupReadError(err);
  }
}
