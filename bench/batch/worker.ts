/**
 * A minimal batched worker for BullMQ's data layout (the prototype of docs/BENCHMARKS.md's "Batched
 * fetch and completion"; a bench tool, not sprocd's worker). It holds up to `k` jobs locally (fetched
 * and locked, not yet filed as finished), runs them on `concurrency` slots, and keeps one round trip
 * in flight: each one files every job finished since the last and takes as many as there is room for.
 *
 *  - mode 'script': that round trip is one EVALSHA of bench/batch/script.ts (BullMQ's moveToFinished
 *    and moveToActive bodies in a loop);
 *  - mode 'pipeline': it is an ioredis pipeline (one socket write) of BullMQ's own scripts, one
 *    moveToFinished per finished job (fetch next while there is room, as BullMQ's Worker asks) and a
 *    moveToActive per further job wanted.
 *
 * Locks: one token for the worker's life (BullMQ uses one per slot); every held job's lock is renewed
 * with BullMQ's extendLocks every lockDuration / 2. The run ends when a take finds the queue empty and
 * every held job is filed (a drain); a real worker would then wait on the marker key. Not done here:
 * stalled checks, retries and backoff of failed jobs, rate-limit and delay waits, pause, closing.
 */
import { createRequire } from 'node:module';
import { Job, type JobJson, type Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Packr } from 'msgpackr';
import { BATCH_KEYS, buildBatchScript } from './script.js';

const require = createRequire(import.meta.url);
// BullMQ's own pre-expanded scripts and its reply decoder (CommonJS build: what `import 'bullmq'` loads).
const scripts = require('bullmq/dist/cjs/scripts/index.js') as Record<
  string,
  { name: string; content: string; keys: number }
>;
const { raw2NextJobData } = require('bullmq/dist/cjs/classes/redis-queue-backend.js') as {
  raw2NextJobData(raw: unknown): [JobJson | null, string, number, number] | [];
};
// msgpack as BullMQ packs its script options.
const packer = new Packr({ useRecords: false, encodeUndefinedAsNil: true });

type Command = (...args: unknown[]) => Promise<unknown>;
type Raw = unknown[];

/** Registers the batch script and the BullMQ scripts the worker calls (idempotent per connection). */
export function defineBatchCommands(redis: Redis): void {
  if ((redis as unknown as Record<string, unknown>).bmqBatch) {
    return;
  }
  redis.defineCommand('bmqBatch', { numberOfKeys: BATCH_KEYS, lua: buildBatchScript() });
  for (const [name, s] of [
    ['bmqMoveToFinished', scripts.moveToFinished],
    ['bmqMoveToActive', scripts.moveToActive],
    ['bmqExtendLocks', scripts.extendLocks],
  ] as const) {
    redis.defineCommand(name, { numberOfKeys: s!.keys, lua: s!.content });
  }
}

export interface BatchWorkerOptions {
  mode: 'script' | 'pipeline';
  /** Jobs held locally at most (taken and locked, not yet filed). */
  k: number;
  concurrency: number;
  /** Round trips in flight at once (default 1): 2 lets the node work while Redis runs a batch. */
  depth?: number;
  lockDuration: number;
  /** BullMQ's worker name (`processedBy`). */
  name?: string;
  processor(job: Job): Promise<unknown>;
}

interface Done {
  job: Job;
  target: 'completed' | 'failed';
  value: string;
}

interface RoundTrip {
  codes: number[];
  jobs: [Raw, string][];
  /** A take found the queue empty (or paused, rate limited, only delayed jobs). */
  empty: boolean;
}

export class BatchWorker {
  readonly token: string;
  readonly stats = { roundTrips: 0, filed: 0, taken: 0, renewals: 0, errors: [] as string[] };
  private readonly held = new Map<string, Job>();
  /** Jobs in the round trip in flight: their locks go with it, so a renewal behind it must skip them. */
  private readonly filing = new Set<string>();
  private readonly local: Job[] = [];
  private done: Done[] = [];
  private running = 0;
  private wake: (() => void) | undefined;
  private scheduled = false;
  private readonly keys: Record<string, string>;
  private readonly finishKeys: string[];
  private readonly activeKeys: string[];
  private readonly packedOpts = new Map<string, Buffer>();
  private readonly activeOpts: Buffer;

  constructor(
    private readonly redis: Redis,
    private readonly queue: Queue,
    private readonly opts: BatchWorkerOptions,
  ) {
    defineBatchCommands(redis);
    this.token = `${crypto.randomUUID()}:batch`;
    this.keys = queue.keys as unknown as Record<string, string>;
    const k = this.keys;
    this.activeKeys = [
      k.wait!,
      k.active!,
      k.prioritized!,
      k.events!,
      k.stalled!,
      k.limiter!,
      k.delayed!,
      k.paused!,
      k.meta!,
      k.pc!,
      k.marker!,
    ];
    this.finishKeys = [
      ...this.activeKeys,
      k.completed!,
      k.failed!,
      queue.toKey('metrics:completed'),
      queue.toKey('metrics:failed'),
    ];
    this.activeOpts = packer.pack({ token: this.token, lockDuration: opts.lockDuration, name: opts.name });
  }

  private command(name: string): Command {
    return (this.redis as unknown as Record<string, Command>)[name]!.bind(this.redis);
  }

  /** Runs until the queue is drained and every taken job is filed. */
  run(): Promise<void> {
    const depth = this.opts.depth ?? 1;
    let empty = false;
    let inflight = 0;
    let pendingTake = 0;
    const renew = setInterval(() => void this.renew(), this.opts.lockDuration / 2);
    return new Promise<void>((resolve, reject) => {
      const fail = (err: unknown) => {
        clearInterval(renew);
        reject(err instanceof Error ? err : new Error(String(err)));
      };
      const step = () => {
        this.scheduled = false;
        while (inflight < depth) {
          // Room: K less the jobs held that no round trip is filing, less those being taken.
          const keep = this.held.size - this.filing.size - this.done.length;
          const take = empty ? 0 : Math.max(0, this.opts.k - keep - pendingTake);
          if (this.done.length === 0 && take === 0) {
            break;
          }
          const finish = this.done;
          this.done = [];
          for (const d of finish) {
            this.filing.add(d.job.id!);
          }
          inflight++;
          pendingTake += take;
          const now = Date.now();
          const call =
            this.opts.mode === 'script'
              ? this.viaScript(finish, take, now)
              : this.viaPipeline(finish, take, now);
          call.then((trip) => {
            inflight--;
            pendingTake -= take;
            this.apply(finish, trip, now);
            empty ||= trip.empty;
            this.pump();
            step();
          }, fail);
        }
        if (empty && inflight === 0 && this.held.size === 0) {
          clearInterval(renew);
          resolve();
        }
      };
      // A finished job wakes the loop once the completions already due have landed (one microtask
      // turn later), so that they go in one round trip.
      this.wake = () => {
        if (!this.scheduled) {
          this.scheduled = true;
          queueMicrotask(step);
        }
      };
      step();
    });
  }

  private apply(finish: Done[], trip: RoundTrip, now: number): void {
    this.stats.roundTrips++;
    trip.codes.forEach((code, i) => {
      const job = finish[i]!.job;
      if (code !== 0) {
        this.stats.errors.push(`moveToFinished ${job.id}: ${code}`);
      }
      job.finishedOn = now;
      this.held.delete(job.id!);
      this.filing.delete(job.id!);
    });
    this.stats.filed += finish.length;
    for (const [raw, id] of trip.jobs) {
      const [json] = raw2NextJobData([raw, id, 0, 0]);
      const job = Job.fromJSON(this.queue, json!, id);
      job.token = this.token;
      this.held.set(id, job);
      this.local.push(job);
    }
    this.stats.taken += trip.jobs.length;
  }

  private pump(): void {
    while (this.running < this.opts.concurrency && this.local.length > 0) {
      const job = this.local.shift()!;
      this.running++;
      this.opts.processor(job).then(
        (value) => this.finished({ job, target: 'completed', value: JSON.stringify(value) ?? 'null' }),
        (err: unknown) =>
          this.finished({ job, target: 'failed', value: err instanceof Error ? err.message : String(err) }),
      );
    }
  }

  private finished(done: Done): void {
    this.running--;
    this.done.push(done);
    this.pump();
    this.wake?.();
  }

  /** BullMQ's moveToFinished opts for a job (Scripts.moveToFinishedArgs), packed once per shape. */
  private finishOpts(job: Job, target: Done['target']): Buffer {
    const o = job.opts;
    const shouldRemove = target === 'completed' ? o.removeOnComplete : o.removeOnFail;
    const key = `${target}|${JSON.stringify(shouldRemove)}|${o.attempts}|${o.failParentOnFailure}|${o.continueParentOnFailure}|${o.ignoreDependencyOnFailure}|${o.removeDependencyOnFailure}`;
    let packed = this.packedOpts.get(key);
    if (!packed) {
      // getKeepJobs with no worker-level removeOn*: as the bench's BullMQ Worker has none.
      const keepJobs =
        typeof shouldRemove === 'object'
          ? shouldRemove
          : typeof shouldRemove === 'number'
            ? { count: shouldRemove }
            : { count: shouldRemove ? 0 : -1 };
      packed = packer.pack({
        token: this.token,
        name: this.opts.name,
        keepJobs,
        limiter: undefined,
        lockDuration: this.opts.lockDuration,
        attempts: o.attempts,
        maxMetricsSize: '',
        fpof: !!o.failParentOnFailure,
        cpof: !!o.continueParentOnFailure,
        idof: !!o.ignoreDependencyOnFailure,
        rdof: !!o.removeDependencyOnFailure,
      });
      this.packedOpts.set(key, packed);
    }
    return packed;
  }

  private async viaScript(finish: Done[], take: number, now: number): Promise<RoundTrip> {
    const blobs: Buffer[] = [];
    const index = new Map<Buffer, number>();
    const entries: (string | number)[] = [];
    for (const d of finish) {
      const packed = this.finishOpts(d.job, d.target);
      let i = index.get(packed);
      if (i === undefined) {
        blobs.push(packed);
        i = blobs.length;
        index.set(packed, i);
      }
      entries.push(d.job.id!, d.target, d.value, i);
    }
    const reply = (await this.command('bmqBatch')(
      ...this.finishKeys,
      this.keys['']!,
      now,
      finish.length,
      take,
      this.activeOpts,
      blobs.length,
      ...blobs,
      ...entries,
    )) as [number[], unknown[], unknown[]];
    const [codes, flat, tail] = reply;
    const jobs: [Raw, string][] = [];
    for (let i = 0; i < flat.length; i += 2) {
      jobs.push([flat[i] as Raw, String(flat[i + 1])]);
    }
    return { codes, jobs, empty: tail.length > 0 };
  }

  private async viaPipeline(finish: Done[], take: number, now: number): Promise<RoundTrip> {
    const p = this.redis.pipeline() as unknown as Record<string, (...args: unknown[]) => unknown> & {
      exec(): Promise<[Error | null, unknown][] | null>;
    };
    let fetches = 0;
    for (const d of finish) {
      const next = fetches < take ? 1 : 0;
      fetches += next;
      const keys = [...this.activeKeys.slice(0, 10)];
      keys.push(
        d.target === 'completed' ? this.keys.completed! : this.keys.failed!,
        this.queue.toKey(d.job.id!),
        this.queue.toKey(`metrics:${d.target}`),
        this.keys.marker!,
      );
      p.bmqMoveToFinished!(
        ...keys,
        d.job.id,
        now,
        d.target === 'completed' ? 'returnvalue' : 'failedReason',
        d.value,
        d.target,
        next,
        this.keys['']!,
        this.finishOpts(d.job, d.target),
      );
    }
    const extra = take - fetches;
    for (let i = 0; i < extra; i++) {
      p.bmqMoveToActive!(...this.activeKeys, this.keys['']!, now, this.activeOpts);
    }
    const results = (await p.exec()) ?? [];
    const trip: RoundTrip = { codes: [], jobs: [], empty: false };
    results.forEach(([err, r], i) => {
      if (err) {
        throw err;
      }
      const finishing = i < finish.length;
      const asked = finishing ? i < take : true;
      if (finishing) {
        trip.codes.push(typeof r === 'number' ? r : 0);
      }
      if (Array.isArray(r) && r[0]) {
        trip.jobs.push([r[0] as Raw, String(r[1])]);
      } else if (asked) {
        trip.empty = true;
      }
    });
    return trip;
  }

  /** BullMQ's extendLocks for every held job (taken, not yet filed), as its LockManager does. */
  private async renew(): Promise<void> {
    const ids = [...this.held.keys()].filter((id) => !this.filing.has(id));
    if (ids.length === 0) {
      return;
    }
    const failed = (await this.command('bmqExtendLocks')(
      this.keys.stalled!,
      this.keys['']!,
      packer.pack(ids.map(() => this.token)),
      packer.pack(ids),
      this.opts.lockDuration,
    )) as string[];
    this.stats.renewals++;
    for (const id of failed) {
      this.stats.errors.push(`extendLocks ${id}`);
    }
  }
}
