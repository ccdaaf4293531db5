/**
 * The cluster's recent history for the console: executions finished and their run time, per 10-second
 * bucket, for the last hours, kept in Redis so that every node shows the same charts and a restart
 * keeps them. Each node counts in memory and adds its counts to the bucket's hash every
 * {@link STEP_MS} (HINCRBY, one round trip), so an execution costs no Redis work of its own.
 *
 * Run times go into a histogram with bins a quarter of a power of two wide; percentiles read from it
 * are within about 10 % of the exact figure, and merge across nodes by adding the bins.
 */
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';

/** Width of a bucket. */
export const STEP_MS = 10_000;
/** How long Redis keeps a bucket. */
export const KEEP_MS = 2 * 3600_000;
/** Most minutes GET /v1/stats looks back. */
export const MAX_MINUTES = 120;

/** The outcomes a bucket counts (a given-back execution is not an end). */
const OUTCOMES = ['completed', 'failed', 'aborted'] as const;
type Outcome = (typeof OUTCOMES)[number];

/** Bins per doubling of the run time. */
const BINS_PER_OCTAVE = 4;
/** The last bin holds every run time from about 2^24 ms (4.6 hours) on. */
const MAX_BIN = 24 * BINS_PER_OCTAVE;

/** The bin of a run time of `ms`. */
export function binOf(ms: number): number {
  return Math.min(MAX_BIN, Math.max(0, Math.floor(Math.log2(Math.max(ms, 0) + 1) * BINS_PER_OCTAVE)));
}

/** The run time a bin stands for: the geometric middle of its bounds. */
export function msOfBin(bin: number): number {
  const low = 2 ** (bin / BINS_PER_OCTAVE) - 1;
  const high = 2 ** ((bin + 1) / BINS_PER_OCTAVE) - 1;
  return Math.round(Math.sqrt(Math.max(low, 0.01) * high) * 100) / 100;
}

/** The `p` percentile (0-100) of a histogram (bin → count), or null when it is empty. */
export function percentileOf(histogram: ReadonlyMap<number, number>, p: number): number | null {
  let total = 0;
  for (const n of histogram.values()) {
    total += n;
  }
  if (total === 0) {
    return null;
  }
  const rank = Math.ceil((p / 100) * total);
  let seen = 0;
  for (const bin of [...histogram.keys()].sort((a, b) => a - b)) {
    seen += histogram.get(bin) ?? 0;
    if (seen >= rank) {
      return msOfBin(bin);
    }
  }
  return null;
}

/** One bucket as GET /v1/stats shows it. */
export interface StatsPoint {
  /** Bucket start (epoch ms). */
  t: number;
  completed: number;
  failed: number;
  aborted: number;
  /** Run time percentiles of the executions that finished in the bucket (ms), null when none did. */
  p50Ms: number | null;
  p99Ms: number | null;
}

interface Pending {
  counts: Record<Outcome, number>;
  bins: Map<number, number>;
  /** `<outcome>:<procedure>` → count (the procedures' failure rates). */
  byProcedure: Map<string, number>;
}

/** Counts this node's ended executions and adds them to Redis every {@link STEP_MS}. */
export class SeriesRecorder {
  private pending = new Map<number, Pending>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisConnection,
    /** The key of the bucket starting at `t`. */
    private readonly keyOf: (t: number) => string,
    private readonly logger?: Logger,
  ) {}

  /** Starts the periodic flush. */
  start(): void {
    this.timer ??= setInterval(() => void this.flush(), STEP_MS);
    this.timer.unref();
  }

  /** An execution ended here with `outcome` after `ms` (the worker pool's observer). */
  onEnd(procedure: string, outcome: string, ms: number): void {
    if (!(OUTCOMES as readonly string[]).includes(outcome)) {
      return;
    }
    const t = Math.floor(Date.now() / STEP_MS) * STEP_MS;
    let bucket = this.pending.get(t);
    if (!bucket) {
      bucket = { counts: { completed: 0, failed: 0, aborted: 0 }, bins: new Map(), byProcedure: new Map() };
      this.pending.set(t, bucket);
    }
    bucket.counts[outcome as Outcome] += 1;
    const bin = binOf(ms);
    bucket.bins.set(bin, (bucket.bins.get(bin) ?? 0) + 1);
    const field = `${outcome}:${procedure}`;
    bucket.byProcedure.set(field, (bucket.byProcedure.get(field) ?? 0) + 1);
  }

  /** Adds what was counted to Redis (also at stop); counts are kept for the next try when Redis fails. */
  async flush(): Promise<void> {
    if (this.pending.size === 0) {
      return;
    }
    const batch = this.pending;
    this.pending = new Map();
    const pipeline = this.redis.pipeline();
    for (const [t, bucket] of batch) {
      const key = this.keyOf(t);
      for (const outcome of OUTCOMES) {
        if (bucket.counts[outcome] > 0) {
          pipeline.hincrby(key, outcome, bucket.counts[outcome]);
        }
      }
      for (const [bin, n] of bucket.bins) {
        pipeline.hincrby(key, `h${bin}`, n);
      }
      for (const [field, n] of bucket.byProcedure) {
        pipeline.hincrby(key, field, n);
      }
      pipeline.pexpire(key, KEEP_MS);
    }
    try {
      const res = await pipeline.exec();
      if (res?.some(([err]) => err)) {
        throw res.find(([err]) => err)?.[0];
      }
    } catch (err) {
      this.logger?.debug({ err }, 'execution statistics not written; kept for the next flush');
      for (const [t, bucket] of batch) {
        if (t >= Date.now() - KEEP_MS) {
          this.merge(t, bucket);
        }
      }
    }
  }

  /** Stops the timer and writes what is left. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.flush();
  }

  private merge(t: number, bucket: Pending): void {
    const into = this.pending.get(t);
    if (!into) {
      this.pending.set(t, bucket);
      return;
    }
    for (const outcome of OUTCOMES) {
      into.counts[outcome] += bucket.counts[outcome];
    }
    for (const [bin, n] of bucket.bins) {
      into.bins.set(bin, (into.bins.get(bin) ?? 0) + n);
    }
    for (const [field, n] of bucket.byProcedure) {
      into.byProcedure.set(field, (into.byProcedure.get(field) ?? 0) + n);
    }
  }
}

/** The buckets of the last `minutes` (oldest first, one per {@link STEP_MS}, empty ones included). */
export async function readSeries(
  redis: RedisConnection,
  keyOf: (t: number) => string,
  minutes: number,
  now = Date.now(),
): Promise<StatsPoint[]> {
  const last = Math.floor(now / STEP_MS) * STEP_MS;
  const count = Math.round((minutes * 60_000) / STEP_MS);
  const starts = Array.from({ length: count }, (_, i) => last - (count - 1 - i) * STEP_MS);
  const pipeline = redis.pipeline();
  for (const t of starts) {
    pipeline.hgetall(keyOf(t));
  }
  const res = (await pipeline.exec()) ?? [];
  return starts.map((t, i) => {
    const [err, raw] = res[i] ?? [];
    if (err) {
      throw err;
    }
    const hash = (raw ?? {}) as Record<string, string>;
    const bins = new Map<number, number>();
    for (const [field, value] of Object.entries(hash)) {
      if (field.startsWith('h')) {
        bins.set(Number(field.slice(1)), Number(value));
      }
    }
    return {
      t,
      completed: Number(hash.completed ?? 0),
      failed: Number(hash.failed ?? 0),
      aborted: Number(hash.aborted ?? 0),
      p50Ms: percentileOf(bins, 50),
      p99Ms: percentileOf(bins, 99),
    };
  });
}

/** Executions of one procedure that ended, by outcome. */
export type ProcedureOutcomes = Record<Outcome, number>;

/** Per procedure, the executions that ended in the last `minutes` (all nodes), by outcome. */
export async function readProcedureOutcomes(
  redis: RedisConnection,
  keyOf: (t: number) => string,
  minutes: number,
  now = Date.now(),
): Promise<Map<string, ProcedureOutcomes>> {
  const last = Math.floor(now / STEP_MS) * STEP_MS;
  const count = Math.round((minutes * 60_000) / STEP_MS);
  const pipeline = redis.pipeline();
  for (let i = 0; i < count; i++) {
    pipeline.hgetall(keyOf(last - i * STEP_MS));
  }
  const out = new Map<string, ProcedureOutcomes>();
  for (const [err, raw] of (await pipeline.exec()) ?? []) {
    if (err) {
      throw err;
    }
    for (const [field, value] of Object.entries((raw ?? {}) as Record<string, string>)) {
      const colon = field.indexOf(':');
      const outcome = field.slice(0, colon) as Outcome;
      if (colon < 0 || !(OUTCOMES as readonly string[]).includes(outcome)) {
        continue;
      }
      const procedure = field.slice(colon + 1);
      let counts = out.get(procedure);
      if (!counts) {
        counts = { completed: 0, failed: 0, aborted: 0 };
        out.set(procedure, counts);
      }
      counts[outcome] += Number(value);
    }
  }
  return out;
}

/** failed / (completed + failed), null when none ended (aborted ones are not failures). */
export function failureRateOf(outcomes: ProcedureOutcomes | undefined): number | null {
  const ended = (outcomes?.completed ?? 0) + (outcomes?.failed ?? 0);
  return ended === 0 ? null : (outcomes?.failed ?? 0) / ended;
}
