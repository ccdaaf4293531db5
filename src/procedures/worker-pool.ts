/**
 * The worker pool of one node: a BullMQ Worker running SPROCD_CONCURRENCY executions at once, the
 * table of executions running here (for abort, wake and shutdown), and the give-back of unfinished
 * work when the node stops.
 */
import { UnrecoverableError, WaitingError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { AbortedError, SprocdError, describeError } from '../errors.js';
import { QUEUE_NAME, numberOfJobId, type Keys } from '../redis/keys.js';
import type { ExecuteOptions, JsonValue, ProcedureContext, Session } from '../types.js';
import type { ControlMessage, ExecutionData, Executions } from './executions.js';
import { encodeFailure } from './failure.js';
import { assertJson } from './json.js';
import type { ProcedureRegistry } from './registry.js';

/** Raised into a running execution's signal when its node stops. */
export class NodeStoppingError extends SprocdError {
  constructor() {
    super(
      'NODE_STOPPING',
      'The node is stopping; the execution goes back to the queue unless it ends in time.',
    );
  }
}

/** Raised when an execution runs past its procedure's timeoutMs. */
export class ExecutionTimeoutError extends SprocdError {
  constructor(ms: number) {
    super('EXECUTION_TIMEOUT', `The execution ran longer than its timeoutMs (${ms} ms).`);
  }
}

/** One execution running on this node. */
interface Running {
  number: number;
  job: Job<ExecutionData, JsonValue>;
  token: string;
  /** Made on first use of ctx.signal or ctx.delay: most executions never look at it. */
  controller?: AbortController;
  /** Why the signal fired (or will fire, once made). */
  reason?: Error;
  /** Why it was interrupted: a user's abort, or the node stopping. */
  interruption?: 'abort' | 'shutdown';
  /** Settles the processor's race at once (abort or give-back). */
  interrupt: (kind: 'abort' | 'giveback') => void;
  /** Wakes the current ctx.delay, if any. */
  wakers: Set<() => void>;
}

/** What the pool needs from the node. */
export interface WorkerPoolOptions {
  redisUrl: string;
  connection: Redis;
  keys: Keys;
  registry: ProcedureRegistry;
  executions: Executions;
  session: () => Session;
  logger: Logger;
  node: string;
  concurrency: number;
  executionLeaseMs: number;
  maxRecoveries: number;
  /** Told when this node put back an execution whose node died (BullMQ's stalled check). */
  onRecovered?: (number: number | undefined, jobId: string) => void;
}

/** Aborts that arrived before their execution started here; kept briefly (pub/sub and start race). */
const EARLY_ABORT_TTL_MS = 60_000;

/** Runs executions from the queue on this node. */
export class WorkerPool {
  private worker: Worker<ExecutionData, JsonValue> | undefined;
  private readonly running = new Map<number, Running>();
  private readonly earlyAborts = new Map<number, number>();
  private stopping = false;

  constructor(private readonly opts: WorkerPoolOptions) {}

  /** Number of executions running here now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Starts taking executions; resolves once the worker's connections are up. */
  async start(): Promise<void> {
    const o = this.opts;
    this.worker = new Worker<ExecutionData, JsonValue>(QUEUE_NAME, (job, token) => this.process(job, token), {
      connection: o.connection,
      prefix: o.keys.bullPrefix,
      concurrency: o.concurrency,
      lockDuration: o.executionLeaseMs,
      stalledInterval: o.executionLeaseMs,
      maxStalledCount: o.maxRecoveries,
      // Retention is set per job when it is queued; the worker must not override it.
      autorun: true,
      name: o.node,
    });
    this.worker.on('error', (err) => o.logger.debug({ err }, 'worker connection error'));
    this.worker.on('stalled', (jobId) => {
      o.logger.warn({ execution: numberOfJobId(jobId) }, 'execution of a dead node put back in the queue');
      o.onRecovered?.(numberOfJobId(jobId), jobId);
    });
    // A failed start closes the worker; closing it while it still connects rejects unhandled.
    await this.worker.waitUntilReady();
  }

  /** Handles a control message from any node. */
  onControl(message: ControlMessage): void {
    const running = this.running.get(message.number);
    if (message.op === 'wake') {
      running?.wakers.forEach((wake) => wake());
      return;
    }
    if (running) {
      this.interrupt(running, 'abort');
    } else {
      this.earlyAborts.set(message.number, Date.now());
      this.pruneEarlyAborts();
    }
  }

  /** First step of a stop: take no more executions, fire every running execution's signal. */
  async beginStop(): Promise<void> {
    this.stopping = true;
    await this.worker?.pause(true).catch(() => undefined);
  }

  /** Fires ctx.signal of every running execution (the node is stopping). */
  signalAll(): void {
    for (const running of this.running.values()) {
      if (!running.interruption) {
        running.interruption = 'shutdown';
        fire(running, new NodeStoppingError());
      }
    }
  }

  /**
   * Waits up to `graceMs` for running executions to end, gives the rest back to the queue (as
   * waiting, not counted as failed), and closes the worker.
   */
  async stop(graceMs: number): Promise<{ finished: number; givenBack: number }> {
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    const before = this.running.size;
    while (this.running.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    const givenBack = this.running.size;
    for (const running of this.running.values()) {
      running.interrupt('giveback');
    }
    // The processors settle right away now; give them a moment to move their jobs back.
    const settle = Date.now() + 5000;
    while (this.running.size > 0 && Date.now() < settle) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.worker?.close(true).catch(() => undefined);
    return { finished: before - givenBack, givenBack };
  }

  /** Closes the worker without the stop sequence (tests, failed starts). */
  async close(): Promise<void> {
    await this.worker?.close(true).catch(() => undefined);
  }

  private interrupt(running: Running, kind: 'abort'): void {
    if (running.interruption === 'abort') {
      return;
    }
    running.interruption = kind;
    fire(running, new AbortedError());
    running.interrupt('abort');
  }

  private pruneEarlyAborts(): void {
    const cutoff = Date.now() - EARLY_ABORT_TTL_MS;
    for (const [number, at] of this.earlyAborts) {
      if (at < cutoff) {
        this.earlyAborts.delete(number);
      }
    }
  }

  private async process(job: Job<ExecutionData, JsonValue>, token: string | undefined): Promise<JsonValue> {
    const o = this.opts;
    const number = numberOfJobId(job.id);
    if (number === undefined || token === undefined) {
      throw new UnrecoverableError(encodeFailure(new Error(`Foreign job ${job.id} on the sprocd queue`)));
    }
    if (this.stopping) {
      // Fetched while the node began to stop: hand it straight back.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const definition = o.registry.get(job.data.procedure);
    if (!definition) {
      throw new UnrecoverableError(
        encodeFailure(
          new SprocdError('UNKNOWN_PROCEDURE', `No procedure "${job.data.procedure}" on node ${o.node}.`),
        ),
      );
    }
    let settle!: (kind: 'abort' | 'giveback' | 'timeout') => void;
    const interrupted = new Promise<'abort' | 'giveback' | 'timeout'>((resolve) => (settle = resolve));
    const running: Running = {
      number,
      job,
      token,
      interrupt: (kind) => settle(kind),
      wakers: new Set(),
    };
    this.running.set(number, running);
    const started = Date.now();
    const attempt = job.attemptsStarted;
    const logLines = o.logger.isLevelEnabled('info');
    if (logLines) {
      o.logger.info(
        { execution: number, procedure: job.data.procedure, attempt, name: job.data.name || undefined },
        'execution started',
      );
    }

    let outcome = 'completed';
    let timer: NodeJS.Timeout | undefined;
    try {
      if (this.earlyAborts.delete(number) || (attempt > 1 && (await this.abortFlagged(number)))) {
        this.interrupt(running, 'abort');
      }
      if (definition.timeoutMs) {
        const ms = definition.timeoutMs;
        timer = setTimeout(() => {
          fire(running, new ExecutionTimeoutError(ms));
          settle('timeout');
        }, ms);
      }
      const ctx = this.contextFor(job, number, running);
      const work = (async () => {
        const params = definition.params ? definition.params.parse(job.data.params) : job.data.params;
        return definition.run(params, ctx);
      })();
      const raced = await Promise.race([
        work.then((value) => ({ value })),
        interrupted.then((kind) => ({ kind })),
      ]);
      if ('kind' in raced) {
        // The procedure is still running; its result no longer counts.
        work.catch(() => undefined);
        if (raced.kind === 'timeout') {
          throw new ExecutionTimeoutError(definition.timeoutMs ?? 0);
        }
        throw raced.kind === 'giveback' ? new NodeStoppingError() : new AbortedError();
      }
      if (running.interruption === 'abort') {
        throw new AbortedError();
      }
      const result = raced.value === undefined ? null : raced.value;
      assertJson(result, 'result');
      return result as JsonValue;
    } catch (err) {
      if (running.interruption === 'abort') {
        outcome = 'aborted';
        throw new UnrecoverableError(encodeFailure(new AbortedError()));
      }
      if (running.interruption === 'shutdown' || err instanceof NodeStoppingError) {
        outcome = 'given back';
        await job.moveToWait(token);
        throw new WaitingError();
      }
      outcome = 'failed';
      const described = describeError(err);
      o.logger.warn({ execution: number, procedure: job.data.procedure, err: described }, 'execution threw');
      if (err instanceof UnrecoverableError) {
        throw new UnrecoverableError(encodeFailure(err));
      }
      const wrapped = new Error(encodeFailure(err));
      throw wrapped;
    } finally {
      clearTimeout(timer);
      this.running.delete(number);
      if (logLines) {
        o.logger.info(
          {
            execution: number,
            procedure: job.data.procedure,
            durationMs: Date.now() - started,
            outcome,
            attempt,
          },
          'execution ended',
        );
      }
    }
  }

  private async abortFlagged(number: number): Promise<boolean> {
    return (await this.opts.connection.hget(this.opts.keys.job(number), 'sprocdAbort')) === '1';
  }

  private contextFor(job: Job<ExecutionData, JsonValue>, number: number, running: Running): ProcedureContext {
    const o = this.opts;
    let log: Logger | undefined;
    return {
      get session() {
        return o.session();
      },
      get log() {
        log ??= o.logger.child({ execution: number, procedure: job.data.procedure });
        return log;
      },
      get signal() {
        return signalOf(running);
      },
      node: o.node,
      process: {
        number,
        id: job.data.id,
        name: job.data.name,
        procedure: job.data.procedure,
        attempt: job.attemptsStarted,
      },
      executeOnServer: async (procedure: string, params?: unknown, options?: ExecuteOptions) => {
        const { execution, existing } = await o.executions.execute(procedure, params, options);
        return { ...execution, existing };
      },
      progress: async (value) => {
        if (!(
          (typeof value === 'number' && value >= 0 && value <= 100) ||
          (typeof value === 'object' && value !== null)
        )) {
          throw new TypeError('ctx.progress takes a number from 0 to 100 or a JSON object.');
        }
        assertJson(value, 'progress');
        await job.updateProgress(value as number | object);
      },
      delay: (ms: number) =>
        new Promise<void>((resolve, reject) => {
          const signal = signalOf(running);
          if (signal.aborted) {
            reject(signal.reason);
            return;
          }
          const done = () => {
            clearTimeout(timer);
            running.wakers.delete(done);
            signal.removeEventListener('abort', onAbort);
            resolve();
          };
          const onAbort = () => {
            clearTimeout(timer);
            running.wakers.delete(done);
            reject(signal.reason);
          };
          const timer = setTimeout(done, Math.max(0, ms));
          running.wakers.add(done);
          signal.addEventListener('abort', onAbort, { once: true });
        }),
    };
  }
}

/** The execution's AbortSignal, made on first use (already fired if it was interrupted before). */
function signalOf(running: Running): AbortSignal {
  if (!running.controller) {
    running.controller = new AbortController();
    if (running.reason) {
      running.controller.abort(running.reason);
    }
  }
  return running.controller.signal;
}

/** Fires the execution's signal with `reason` (or remembers it until the signal is made). */
function fire(running: Running, reason: Error): void {
  if (running.reason) {
    return;
  }
  running.reason = reason;
  running.controller?.abort(reason);
}
