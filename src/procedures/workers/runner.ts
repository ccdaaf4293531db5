/**
 * The running side of workers on one node (docs/ARCHITECTURE.md#workers): the workers this node
 * owns, each with its lease (an owner key holding this node's token, renewed every lease/3), its
 * `local` object, and one loop that runs its messages one at a time: each message's end and the
 * next message's take are one script. Workers nobody owns are found by a nudge on the channel (a
 * call to an idle worker, a release) or by the periodic scan of the index (a dead owner's lease
 * ended), and taken with a claim script that only one node wins.
 */
import type { RedisConnection } from '../../redis/redis-connection.js';
import type { Logger } from 'pino';
import { describeError } from '../../errors.js';
import type { Keys } from '../../redis/keys.js';
import {
  workerClaim,
  workerDone,
  workerNext,
  workerRelease,
  workerRenew,
  type WorkerTake,
} from '../../redis/scripts.js';
import type { ProcedureRegistry } from '../registry.js';
import { NodeStoppingError, type RunServices } from '../execution-run.js';
import { runMessage, type MessageWorker } from './message-run.js';
import { ownerToken, type StoredMessage } from './workers.js';
import type { ExecutionRun } from '../execution-run.js';

/** What the runner needs from its node. */
export interface WorkerRunnerOptions {
  /** The command connection (the scripts are short; nothing blocks). */
  redis: RedisConnection;
  keys: Keys;
  node: string;
  registry: ProcedureRegistry;
  /** The lease of a worker's owner (SPROCD_EXECUTION_LEASE_MS): a dead node's workers move after it. */
  leaseMs: number;
  /** A message re-run more than this many times after its node died is dropped (SPROCD_MAX_RECOVERIES). */
  maxRecoveries: number;
  logger: Logger;
  /** The services a message's ctx runs on (the worker pool's). */
  services: RunServices;
}

/** Workers a scan looks at per round. */
const SCAN_BATCH = 50;
/** After a Redis error in a worker's loop, how long before it tries again. */
const RETRY_MS = 1000;

/** A worker this node owns. */
class OwnedWorker implements MessageWorker {
  /** ctx.worker of its messages. */
  readonly scope: { readonly name: string; readonly local: Record<string, unknown> };
  /** Its loop is running. */
  busy = false;
  /** The message running now. */
  current: ExecutionRun | undefined;
  /** Settles when its loop ends (for the stop). */
  idle: Promise<void> = Promise.resolve();
  retry: NodeJS.Timeout | undefined;
  readonly services: RunServices;

  constructor(
    readonly name: string,
    readonly token: string,
    base: RunServices,
  ) {
    this.scope = Object.freeze({ name, local: {} });
    this.services = {
      ...base,
      // Locks its messages take name the worker (the console shows who holds a lock).
      session: (_owner, check) => base.session({ owner: `worker ${name}` }, check),
      // A message is not an execution: no log lines kept under a number, no sleep mark.
      logs: undefined,
      markSleep: () => undefined,
    };
  }
}

/** The workers of one node. */
export class WorkerRunner {
  private readonly owned = new Map<string, OwnedWorker>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private ticking = false;

  constructor(private readonly opts: WorkerRunnerOptions) {}

  /** Workers owned here now. */
  get ownedCount(): number {
    return this.owned.size;
  }

  /** Starts the renewal and the scan (every lease/3), with a first scan now. */
  start(): void {
    this.timer = setInterval(() => void this.tick(), Math.max(50, Math.floor(this.opts.leaseMs / 3)));
    this.timer.unref();
    void this.tick();
  }

  /** A nudge: worker `name` has work and maybe nobody looking. */
  onNudge(name: string): void {
    if (this.stopping) {
      return;
    }
    const worker = this.owned.get(name);
    if (worker) {
      this.kick(worker);
    } else {
      void this.claim(name);
    }
  }

  /** After the subscriber reconnected: what a missed nudge would have said, the scan and renewal find. */
  recheck(): void {
    void this.tick();
  }

  /** First step of a stop: no more claims, and no worker takes its next message. */
  beginStop(): void {
    this.stopping = true;
    clearInterval(this.timer);
  }

  /** Fires ctx.signal of every running message (the node is stopping). */
  signalAll(): void {
    for (const worker of this.owned.values()) {
      const run = worker.current;
      if (run && !run.interruption) {
        run.interruption = 'shutdown';
        run.fire(new NodeStoppingError());
      }
    }
  }

  /**
   * Waits up to `graceMs` for running messages to end, interrupts the rest (their worker keeps the
   * message as its current one, so the node that takes it next runs it again), and gives every
   * worker back at once, nudging the other nodes, instead of leaving them until the lease ends.
   */
  async stop(graceMs: number): Promise<{ released: number }> {
    this.beginStop();
    const loops = Promise.all([...this.owned.values()].map((w) => w.idle));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([loops, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
    clearTimeout(timer);
    for (const worker of this.owned.values()) {
      worker.current?.interrupt('giveback');
      clearTimeout(worker.retry);
    }
    await loops;
    const workers = [...this.owned.values()];
    this.owned.clear();
    const released = await Promise.all(
      workers.map((w) =>
        workerRelease(this.opts.redis, this.opts.keys, w.name, w.token).catch((err: unknown) => {
          this.opts.logger.warn(
            { err, worker: w.name },
            'worker not given back; another node takes it after its lease',
          );
          return false;
        }),
      ),
    );
    return { released: released.filter(Boolean).length };
  }

  /** Renews the workers owned here, then takes due ones nobody owns. */
  private async tick(): Promise<void> {
    if (this.ticking) {
      return;
    }
    this.ticking = true;
    try {
      await this.renew();
      if (!this.stopping) {
        await this.scan();
      }
    } catch (err) {
      this.opts.logger.debug({ err }, 'worker renewal or scan failed; next round retries');
    } finally {
      this.ticking = false;
    }
  }

  private async renew(): Promise<void> {
    const workers = [...this.owned.values()];
    if (workers.length === 0) {
      return;
    }
    const codes = await workerRenew(this.opts.redis, this.opts.keys, this.opts.leaseMs, workers);
    codes.forEach((code, i) => {
      const worker = workers[i] as OwnedWorker;
      if (code === 'lost') {
        this.lose(worker, 'worker lease lost (this node stalled past it, or the worker was killed)');
      } else if (code === 'pending' && !this.stopping) {
        this.kick(worker); // a nudge this node missed
      }
    });
  }

  private async scan(): Promise<void> {
    const due = await this.opts.redis.zrangebyscore(
      this.opts.keys.workers.index,
      '-inf',
      Date.now(),
      'LIMIT',
      0,
      SCAN_BATCH,
    );
    await Promise.all(due.filter((name) => !this.owned.has(name)).map((name) => this.claim(name)));
  }

  /** Tries to take worker `name`; runs its loop when taken. */
  private async claim(name: string): Promise<void> {
    if (this.stopping || this.owned.has(name)) {
      return;
    }
    const token = ownerToken(this.opts.node);
    try {
      if (!(await workerClaim(this.opts.redis, this.opts.keys, name, token, this.opts.leaseMs))) {
        return;
      }
    } catch (err) {
      this.opts.logger.debug({ err, worker: name }, 'worker claim failed; the scan tries again');
      return;
    }
    if (this.stopping) {
      // The stop began while the claim was on its way: give the worker back now, not after the lease.
      await workerRelease(this.opts.redis, this.opts.keys, name, token).catch(() => undefined);
      return;
    }
    const worker = new OwnedWorker(name, token, this.opts.services);
    this.owned.set(name, worker);
    this.opts.logger.info({ worker: name }, 'worker taken');
    this.kick(worker);
  }

  private kick(worker: OwnedWorker): void {
    if (worker.busy || this.stopping) {
      return;
    }
    worker.busy = true;
    worker.idle = this.loop(worker);
  }

  /** The worker no longer belongs to this node (lease lost, killed, ended). */
  private lose(worker: OwnedWorker, why?: string): void {
    if (this.owned.get(worker.name) !== worker) {
      return;
    }
    this.owned.delete(worker.name);
    clearTimeout(worker.retry);
    if (why) {
      this.opts.logger.warn({ worker: worker.name }, why);
    }
  }

  /** Runs the worker's messages one at a time until it has none, ends, or is no longer this node's. */
  private async loop(worker: OwnedWorker): Promise<void> {
    const { redis, keys } = this.opts;
    try {
      let take: WorkerTake = await workerNext(redis, keys, worker.name, worker.token);
      for (;;) {
        if (take.code === -1 || take.code === -2) {
          this.lose(worker);
          if (!this.stopping) {
            // Killed while idle, or ended: calls made since make a new worker of that name.
            void this.claim(worker.name);
          }
          return;
        }
        if (take.code === 0 || take.message === undefined) {
          return; // idle: the next call nudges it
        }
        const outcome = await this.run(worker, take.code, JSON.parse(take.message) as StoredMessage);
        if (outcome === 'given back') {
          return; // the node stops: the message stays current, for the next owner
        }
        take = await workerDone(redis, keys, worker.name, worker.token, {
          failed: outcome === 'failed',
          next: !this.stopping,
        });
      }
    } catch (err) {
      this.opts.logger.warn({ err, worker: worker.name }, 'worker loop failed on Redis; it tries again');
      if (!this.stopping && this.owned.get(worker.name) === worker) {
        worker.retry = setTimeout(() => this.kick(worker), RETRY_MS);
      }
    } finally {
      worker.busy = false;
    }
  }

  /** Runs one message; answers how it ended. */
  private async run(
    worker: OwnedWorker,
    attempt: number,
    message: StoredMessage,
  ): Promise<'completed' | 'failed' | 'given back'> {
    const o = this.opts;
    const log = { worker: worker.name, procedure: message.p, message: message.i, attempt };
    if (attempt > o.maxRecoveries + 1) {
      o.logger.warn(
        log,
        'worker message dropped: its nodes died running it too many times (SPROCD_MAX_RECOVERIES)',
      );
      return 'failed';
    }
    const definition = o.registry.get(message.p);
    if (!definition) {
      o.logger.error(log, `worker message failed: no procedure "${message.p}" on node ${o.node}`);
      return 'failed';
    }
    const started = Date.now();
    const ended = await runMessage(worker, definition, message, attempt, (run) => (worker.current = run));
    worker.current = undefined;
    if (ended.outcome === 'failed') {
      o.logger.warn(
        { ...log, err: describeError(ended.error), durationMs: Date.now() - started },
        'worker message threw',
      );
    } else if (ended.outcome === 'given back') {
      o.logger.info(log, 'worker message given back: the node stops');
    }
    return ended.outcome;
  }
}
