/**
 * The worker pool of one node: a BullMQ Worker per queue shard, running SPROCD_CONCURRENCY executions
 * at once between them (./concurrency-gate.ts), the table of executions running here (for abort, wake,
 * pause and shutdown), and the give-back of unfinished work when the node stops.
 *
 * It is long because it holds the one processor BullMQ calls, and every way an attempt can end (done,
 * failed, timed out, aborted, given back at a stop, refused as at-most-once after a lost node, filed
 * early while its code still runs) is decided there, in one place, so that each is filed exactly once.
 */
import {
  DelayedError,
  UnrecoverableError,
  WaitingError,
  Worker,
  type Job,
  type Telemetry,
  type WorkerOptions,
} from 'bullmq';
import { BatchedWorker } from '../redis/batched-worker.js';
import type { RedisConnection } from '../redis/redis-connection.js';
import type { Logger } from 'pino';
import { AbortedError, SprocdError, describeError } from '../errors.js';
import {
  abortRequested,
  bullQueueKeys,
  hasPauseMark,
  pauseField,
  stopLockRenewal,
  uncountStart,
  wakeMainLoop,
  type BullQueueKeys,
} from '../redis/bullmq-internals.js';
import { settleWithin } from '../redis/connections.js';
import { dropPopped, pauseFlags } from '../redis/scripts.js';
import { QUEUE_NAME, numberOfJobId, type Keys } from '../redis/keys.js';
import type { ShardKeys } from '../redis/shards.js';
import { startSpan, tracingOn } from '../tracing/spans.js';
import type { JsonValue } from '../types.js';
import type { ControlMessage, ExecutionData, Executions } from './executions.js';
import { ConcurrencyGate, type GateHold } from './concurrency-gate.js';
import { ExecutionContext } from './execution-context.js';
import {
  ExecutionRun,
  ExecutionTimeoutError,
  Interruption,
  NodeLostError,
  NodeStoppingError,
  type RunServices,
} from './execution-run.js';
import { ExecutionLogs } from './execution-logs.js';
import { fileEarly, giveUpOn, holdSlot } from './interrupted-code.js';
import { encodeFailure, failureError } from './failure.js';
import { assertJson } from './json.js';
import { isRedisOutage, isRunFenced, outageDelayMs, recoveriesSoFar } from './outage-retry.js';
import { ParamsMismatchError } from './params.js';
import type { ProcessSync } from './process-sync.js';
import { ProcessControl, markSleep } from './processes.js';
import type { LoadedProcedure, ProcedureRegistry } from './registry.js';
import { ThreadPool } from './thread/pool.js';

/** What the pool needs from the node. */
export interface WorkerPoolOptions {
  connection: RedisConnection;
  keys: Keys;
  registry: ProcedureRegistry;
  executions: Executions;
  session: RunServices['session'];
  logger: Logger;
  node: string;
  concurrency: number;
  /** Executions filed and taken in one Redis call (1: BullMQ's Worker, one call each). */
  workerBatch?: number;
  executionLeaseMs: number;
  maxRecoveries: number;
  /** Told when an execution ends here (metrics). */
  observer?: { onEnd(procedure: string, outcome: string, ms: number): void };
  /** Whether another live node has this procedure (this one does not: a rolling deploy). */
  elsewhere?: (procedure: string) => Promise<boolean>;
  /** Told when this node put back an execution whose node died (BullMQ's stalled check). */
  onRecovered?: (number: number | undefined, jobId: string) => void;
  /** BullMQ's tracing (src/tracing): the worker continues the trace each job carries. */
  telemetry?: Telemetry;
  /**
   * Told when an execution that ran (or was refused) here failed for good: BullMQ filed it as failed,
   * with no attempt left or unrecoverably. Not for an abort, a give-back or a retried attempt, nor
   * for a job BullMQ's stalled check failed (its node died). lifecycle/onError runs from here.
   */
  onFailed?: (number: number, job: Job<ExecutionData, JsonValue>) => void;
  /** Signals and semaphores of this node (./process-sync.ts). */
  sync: ProcessSync;
  /** CALL WORKER and KILL WORKER for ctx (./workers/workers.ts). */
  workers?: RunServices['workers'];
}

/** How long an execution of a procedure this node lacks waits before another node may take it. */
const HANDOFF_DELAY_MS = 250;

/** Aborts that arrived before their execution started here; kept briefly (pub/sub and start race). */
const EARLY_ABORT_TTL_MS = 60_000;

type ProcedureWorker = Worker<ExecutionData, JsonValue>;

/** The Worker of one queue shard, and where the locks of its jobs live (for the runs' storage fence). */
interface ShardWorker {
  readonly worker: ProcedureWorker;
  readonly locks: Pick<BullQueueKeys, 'jobLock'>;
}

/** Runs executions from the queue on this node. */
export class WorkerPool {
  /** One per queue shard, in shard order; empty before the start. */
  private shards: ShardWorker[] = [];
  /** With several shards: the node's one concurrency limit across their Workers (none with one). */
  private gate: ConcurrencyGate | undefined;
  private readonly running = new Map<number, ExecutionRun>();

  /** The BullMQ Worker of each queue shard, in shard order (benchmarks count their `completed` events). */
  get bullWorkers(): readonly ProcedureWorker[] {
    return this.shards.map((s) => s.worker);
  }

  private readonly earlyAborts = new Map<number, number>();
  /** Pauses that arrived before their execution started here (kept as early aborts are). */
  private readonly earlyPauses = new Map<number, number>();
  /** Jobs whose attempt failed here (not aborted, not given back), until BullMQ has filed them. */
  private readonly failing = new WeakSet<Job<ExecutionData, JsonValue>>();
  private stopping = false;

  /** What each execution's ctx runs on; worker messages run on it too (./workers/runner.ts). */
  readonly services: RunServices;
  private readonly logs: ExecutionLogs;
  /** Worker threads of `isolation: 'thread'` procedures. */
  private readonly threads: ThreadPool;

  constructor(private readonly opts: WorkerPoolOptions) {
    this.threads = new ThreadPool(opts.logger, opts.concurrency);
    this.logs = new ExecutionLogs(opts.connection, opts.keys, opts.node, (err) =>
      opts.logger.debug({ err }, 'execution log lines not kept'),
    );
    this.services = {
      node: opts.node,
      logger: opts.logger,
      executions: opts.executions,
      session: opts.session,
      logs: this.logs,
      sync: opts.sync,
      workers: opts.workers,
      processes: new ProcessControl(
        () => opts.executions,
        () => opts.connection,
        opts.keys,
      ),
      markSleep: (number, until) => {
        // Process state on other nodes reads it; a mark that fails only makes that answer 0 instead of 1.
        markSleep(opts.connection, opts.keys, number, until).catch((err: unknown) =>
          opts.logger.debug({ err, execution: number }, 'sleep mark not written'),
        );
      },
    };
  }

  /** Number of executions running here now. */
  get activeCount(): number {
    return this.running.size;
  }

  /** Starts taking executions; resolves once the workers' connections are up. */
  async start(): Promise<void> {
    const all = this.opts.keys.queues.all;
    this.shards = all.map((shard, i) => ({
      worker: this.startWorker(shard, i),
      locks: bullQueueKeys(shard),
    }));
    if (all.length > 1) {
      this.gate = new ConcurrencyGate(
        this.opts.concurrency,
        this.shards.map(({ worker }) => ({
          get concurrency() {
            return worker.concurrency;
          },
          set concurrency(value: number) {
            worker.concurrency = value;
          },
          wake: () => wakeMainLoop(worker),
        })),
      );
    }
    // A failed start closes the workers; closing one while it still connects rejects unhandled.
    await Promise.all(this.shards.map(({ worker }) => worker.waitUntilReady()));
  }

  /** The Worker of queue shard `shard` (index `i`), its events wired. */
  private startWorker(shard: ShardKeys, i: number): ProcedureWorker {
    const o = this.opts;
    const processor = (job: Job<ExecutionData, JsonValue>, token?: string) => this.process(i, job, token);
    const options: WorkerOptions = {
      connection: o.connection,
      prefix: shard.bullPrefix,
      concurrency: o.concurrency,
      lockDuration: o.executionLeaseMs,
      stalledInterval: o.executionLeaseMs,
      maxStalledCount: o.maxRecoveries,
      // Retention of finished executions is the worker's, not each job's: a job hash without it stays
      // small (an execution queued by an older node carries its own, which wins).
      removeOnComplete: o.executions.retention,
      removeOnFail: o.executions.retention,
      autorun: true,
      name: o.node,
      ...(o.telemetry ? { telemetry: o.telemetry } : {}),
    };
    const batch = o.workerBatch ?? 1;
    const worker =
      batch > 1
        ? new BatchedWorker<ExecutionData, JsonValue>(QUEUE_NAME, processor, options, {
            batch,
            // With several shards the gate shares the node's slots among their Workers: a Worker
            // taking ahead would hold jobs another shard's Worker has the slots for.
            prefetch: this.opts.keys.queues.all.length === 1,
            bull: bullQueueKeys(shard),
            // sprocd writes no BullMQ job logs (its own are ./execution-logs.ts) and makes no flows.
            jobSideKeys: false,
            onGivenBack: async (jobId) => {
              const number = numberOfJobId(jobId);
              if (number !== undefined) {
                await uncountStart(o.connection, o.keys, number);
              }
            },
          })
        : new Worker<ExecutionData, JsonValue>(QUEUE_NAME, processor, options);
    worker.on('error', (err) => o.logger.debug({ err }, 'worker connection error'));
    worker.on('stalled', (jobId) => {
      o.logger.warn({ execution: numberOfJobId(jobId) }, 'execution of a dead node put back in the queue');
      o.onRecovered?.(numberOfJobId(jobId), jobId);
    });
    // Emitted once BullMQ has moved the job (to failed, or back for a retry), with the processor's job.
    worker.on('failed', (job, err) => {
      if (job) {
        this.onFailedAttempt(job, err);
      }
    });
    return worker;
  }

  /** Handles a control message from any node. */
  onControl(message: ControlMessage): void {
    const running = this.running.get(message.number);
    if (message.op === 'wake') {
      running?.wake();
      return;
    }
    if (message.op === 'delay') {
      running?.redelay(message.ms ?? 0);
      return;
    }
    if (message.op === 'resume') {
      this.earlyPauses.delete(message.number);
      running?.resume();
      return;
    }
    const pause = message.op === 'pause';
    if (running) {
      return pause ? running.pause() : running.abort();
    }
    // Not started here yet (pub/sub and the start race): kept for its start.
    (pause ? this.earlyPauses : this.earlyAborts).set(message.number, Date.now());
    this.pruneEarly();
  }

  /**
   * After the control channel was away (a reconnect): each execution running here takes the pause
   * state Redis holds for it, so a pause or resume whose message was missed still applies.
   */
  async recheckPauses(): Promise<void> {
    const runs = [...this.running.values()];
    const flags = await pauseFlags(this.opts.connection, this.opts.keys, [...this.running.keys()]);
    runs.forEach((run, i) => (flags[i] ? run.pause() : run.paused && run.resume()));
  }

  /** First step of a stop: take no more executions, fire every running execution's signal. */
  async beginStop(): Promise<void> {
    this.stopping = true;
    // Jobs that wait for a slot are handed straight back (process).
    this.gate?.close();
    await Promise.all(this.shards.map(({ worker }) => worker.pause(true).catch(() => undefined)));
  }

  /** Fires ctx.signal of every running execution (the node is stopping). */
  signalAll(): void {
    for (const running of this.running.values()) {
      if (!running.interruption) {
        running.interruption = 'shutdown';
        running.fire(new NodeStoppingError());
      }
    }
  }

  /**
   * Waits up to `graceMs` for running executions to end, gives the rest back to the queue (as
   * waiting, not counted as failed), and closes the worker.
   */
  async stop(graceMs: number, settleMs: number): Promise<{ finished: number; givenBack: number }> {
    this.stopping = true;
    const deadline = Date.now() + graceMs;
    const before = this.running.size;
    while (this.running.size > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
    }
    const runs = [...this.running.values()];
    const givenBack = runs.filter((r) => !r.outcomeDecided).length;
    giveUpOn(runs, this.opts.logger);
    // The processors settle right away now; give them a moment to move their jobs back. With Redis
    // away that cannot happen: their leases run out instead and another node (or the next start)
    // recovers them, so wait no longer than a Redis time-out.
    const settle = Date.now() + settleMs;
    while (this.running.size > 0 && Date.now() < settle) {
      await new Promise((r) => setTimeout(r, 20));
    }
    await this.closeWorker(settleMs);
    return { finished: before - givenBack, givenBack };
  }

  /** Closes the worker without the stop sequence (tests, failed starts). */
  async close(): Promise<void> {
    await this.closeWorker(2000);
  }

  private async closeWorker(ms: number): Promise<void> {
    this.gate?.close();
    await settleWithin(Promise.all(this.shards.map(({ worker }) => worker.close(true))), ms);
    await settleWithin(this.threads.close(), ms);
    // The last lines of executions that just ended, before the node closes the connection.
    await settleWithin(this.logs.flush(), ms);
  }

  /** An attempt failed and BullMQ filed it: tells `onFailed` when that was the execution's last. */
  private onFailedAttempt(job: Job<ExecutionData, JsonValue>, err: Error): void {
    if (!this.failing.delete(job)) {
      return; // an abort, or the stalled check's job (its node died)
    }
    const number = numberOfJobId(job.id);
    // BullMQ's own rule (Job.shouldRetryJob), after moveToFailed counted this attempt.
    const final = err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (final && number !== undefined) {
      this.opts.onFailed?.(number, job);
    }
  }

  private pruneEarly(): void {
    const cutoff = Date.now() - EARLY_ABORT_TTL_MS;
    for (const early of [this.earlyAborts, this.earlyPauses]) {
      for (const [number, at] of early) {
        if (at < cutoff) {
          early.delete(number);
        }
      }
    }
  }

  /** BullMQ's processor for the Worker of shard `i` (not async itself: one promise less per execution). */
  private process(
    i: number,
    job: Job<ExecutionData, JsonValue>,
    token: string | undefined,
  ): Promise<JsonValue> {
    const shard = this.shards[i] as ShardWorker;
    const hold = this.gate?.hold(i);
    if (!hold) {
      return this.take(shard, job, token);
    }
    return this.takeHeld(shard, job, token, hold);
  }

  private async takeHeld(
    shard: ShardWorker,
    job: Job<ExecutionData, JsonValue>,
    token: string | undefined,
    hold: GateHold,
  ): Promise<JsonValue> {
    try {
      return await this.take(shard, job, token, hold);
    } finally {
      hold.end();
    }
  }

  /** Runs (or drops, parks, hands back) a job its shard's Worker took; `hold` is its place in the gate. */
  private async take(
    shard: ShardWorker,
    job: Job<ExecutionData, JsonValue>,
    token: string | undefined,
    hold?: GateHold,
  ): Promise<JsonValue> {
    const o = this.opts;
    const number = numberOfJobId(job.id);
    if (number === undefined || token === undefined) {
      throw new UnrecoverableError(encodeFailure(new Error(`Foreign job ${job.id} on the sprocd queue`)));
    }
    // Read from what the pop brought, so a job that is to run costs no further call here.
    if (job.finishedOn !== undefined || typeof job.data?.procedure !== 'string' || hasPauseMark(job)) {
      // Aborted while it waited (left in the wait list: abortWaiting-8.lua), or removed since: the
      // pop is undone and it never runs. Paused while it waited (left there, marked:
      // pauseExecution-5.lua): the pop is undone and it is parked until resumed.
      const popped = await dropPopped(o.connection, o.keys, job.id as string);
      if (popped === 'dropped') {
        throw new WaitingError();
      }
      if (popped === 'parked') {
        throw new DelayedError();
      }
    }
    if ((hold && !(await this.permitOrHandBack(hold, job, token, number, shard.worker))) || this.stopping) {
      // Fetched while the node began to stop (or waited for a slot until then): hand it straight back.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const definition = o.registry.get(job.data.procedure);
    if (!definition && (await o.elsewhere?.(job.data.procedure))) {
      // A rolling deploy: the procedure is newer than this node. Hand the execution to the queue again
      // for a node that has it; the hand-off is not a start, so the start count is put back.
      o.logger.info(
        { execution: number, procedure: job.data.procedure },
        'execution handed over: another node has its procedure',
      );
      await job.moveToDelayed(Date.now() + HANDOFF_DELAY_MS, token);
      await uncountStart(o.connection, o.keys, number);
      throw new DelayedError();
    }
    if (!definition) {
      this.failing.add(job);
      throw new UnrecoverableError(
        encodeFailure(
          new SprocdError('UNKNOWN_PROCEDURE', `No procedure "${job.data.procedure}" on node ${o.node}.`),
        ),
      );
    }
    if (definition.delivery === 'at-most-once' && job.stalledCounter > 0) {
      // BullMQ's stalled check put it back: it was running on a node that died (or that lost its
      // lease), and may have done part or all of its work there. It never runs twice.
      this.failing.add(job);
      o.logger.warn(
        { execution: number, procedure: job.data.procedure },
        'at-most-once execution of a dead node failed instead of run again',
      );
      throw new UnrecoverableError(encodeFailure(new NodeLostError()));
    }
    // Its storage commits check its job lock where they land (lockCommit-n.lua): a run whose job is
    // no longer its own there (a lapsed lease, a master replaced under it) writes nothing.
    const running = new ExecutionRun(number, job, token, shard.locks.jobLock(job.id as string));
    this.running.set(number, running);
    try {
      return await this.attempt(running, job, definition, shard.worker);
    } catch (err) {
      throw running.codeDone
        ? err
        : await fileEarly(running, err, {
            job,
            worker: shard.worker,
            logger: o.logger,
            onFiled: (failed) => this.onFailedAttempt(job, failed),
          });
    } finally {
      if (!running.codeDone) {
        await holdSlot(running, o.logger);
      }
      this.running.delete(number);
    }
  }

  /**
   * A job beyond the node's concurrency (its shards' Workers fetched at the same moment, or an idle
   * shard's one waiting fetch took it while the node was full) goes back to the queue, where a node
   * with room takes it; its Worker's slot stays taken until one frees here, so that Worker does not
   * fetch it straight back. The hand-back is not a start (its count is put back, as for a hand-off).
   * Answers whether it may run now; false: the node stops (the caller hands it back).
   */
  private async permitOrHandBack(
    hold: GateHold,
    job: Job<ExecutionData, JsonValue>,
    token: string,
    number: number,
    worker: ProcedureWorker,
  ): Promise<boolean> {
    if (hold.tryPermit()) {
      return true;
    }
    if (this.stopping) {
      return false;
    }
    try {
      await job.moveToWait(token);
    } catch (err) {
      // Redis is away: it waits here for a slot instead, its lock renewed.
      this.opts.logger.debug({ err, execution: number }, 'execution beyond the concurrency not handed back');
      return hold.permit();
    }
    stopLockRenewal(worker, job.id);
    await uncountStart(this.opts.connection, this.opts.keys, number).catch((err: unknown) =>
      this.opts.logger.debug({ err, execution: number }, 'start of a handed-back execution still counted'),
    );
    await hold.permit();
    throw new WaitingError();
  }

  /** Runs one attempt of the execution and decides its outcome (what BullMQ files). */
  private async attempt(
    running: ExecutionRun,
    job: Job<ExecutionData, JsonValue>,
    definition: LoadedProcedure,
    worker: ProcedureWorker,
  ): Promise<JsonValue> {
    const o = this.opts;
    const { token, number } = running;
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
    let failure: unknown;
    let ctx: ExecutionContext | undefined;
    // The execution's span, under BullMQ's `process` span: the procedure's code runs in it, so its
    // executeOnServer children, storage.use and log lines join the trace.
    const span = tracingOn()
      ? startSpan(`execution ${job.data.procedure}`, {
          'sprocd.execution.number': number,
          'sprocd.execution.name': job.data.name || undefined,
          'sprocd.execution.attempt': attempt,
          'sprocd.procedure': job.data.procedure,
          'sprocd.node': o.node,
        })
      : undefined;
    try {
      if (
        this.earlyAborts.delete(number) ||
        (attempt > 1 && (await abortRequested(o.connection, o.keys, number)))
      ) {
        running.abort();
      }
      // Paused (PAUSE PROCESS) before it started here, or while an earlier attempt ran (its node died):
      // it starts paused, and stops at its first checkpoint or delay.
      if (
        this.earlyPauses.delete(number) ||
        (attempt > 1 && (await pauseField(o.connection, o.keys, number)) !== undefined)
      ) {
        running.pause();
      }
      const context = (ctx = new ExecutionContext(running, this.services));
      const runner = definition.isolation === 'thread' ? this.threads.runner(definition, running) : undefined;
      if (span) {
        span.with(() => running.start(definition, context, runner));
      } else {
        running.start(definition, context, runner);
      }
      const value = await running.outcome;
      if (running.interruption === 'abort') {
        throw new Interruption('abort');
      }
      const result = value === undefined ? null : value;
      assertJson(result, 'result');
      return result as JsonValue;
    } catch (err) {
      if (running.interruption === 'abort') {
        outcome = 'aborted';
        throw new UnrecoverableError(encodeFailure(new AbortedError()));
      }
      if (running.interruption === 'shutdown' || (err instanceof Interruption && err.kind === 'giveback')) {
        if (definition.delivery === 'at-most-once') {
          // Handing it back would run it again: it ends here, aborted, as 4D ends a process at quit.
          outcome = 'aborted';
          throw new UnrecoverableError(
            encodeFailure(
              new AbortedError(
                'The node stopped before the execution ended; an at-most-once execution is aborted rather than run again.',
              ),
            ),
          );
        }
        outcome = 'given back';
        await job.moveToWait(token);
        throw new WaitingError();
      }
      if (isRunFenced(err)) {
        // Its job is not its own where its commit landed (a lapsed lease, a master replaced under
        // it): filing an end here would be refused or lost. The job is left to the run or the
        // stalled check that holds it now, which runs it again.
        outcome = 'lost';
        o.logger.warn(
          { execution: number, procedure: job.data.procedure, err: describeError(err) },
          'execution lost its job before its commit; it runs again from its job',
        );
        stopLockRenewal(worker, job.id);
        throw new WaitingError();
      }
      const recoveries = recoveriesSoFar(job);
      if (definition.delivery !== 'at-most-once' && isRedisOutage(err) && recoveries < o.maxRecoveries) {
        outcome = 'put back';
        o.logger.warn(
          { execution: number, procedure: job.data.procedure, err: describeError(err), recoveries },
          'execution cut by Redis; it runs again without using up an attempt',
        );
        try {
          await job.moveToDelayed(Date.now() + outageDelayMs(recoveries), token);
        } catch {
          // Redis is still away: BullMQ's stalled check puts it back once its lease runs out.
          stopLockRenewal(worker, job.id);
          throw new WaitingError();
        }
        throw new DelayedError();
      }
      outcome = 'failed';
      this.failing.add(job);
      const cause = err instanceof Interruption ? new ExecutionTimeoutError(definition.timeoutMs ?? 0) : err;
      failure = cause;
      o.logger.warn(
        { execution: number, procedure: job.data.procedure, err: describeError(cause) },
        'execution threw',
      );
      // Retrying cannot help these: the procedure said so, or its stored params no longer fit.
      if (cause instanceof UnrecoverableError || cause instanceof ParamsMismatchError) {
        throw failureError(cause, UnrecoverableError);
      }
      throw failureError(cause, Error);
    } finally {
      running.finish();
      // Its semaphores are freed before its end is known (completed, failed, aborted, given back).
      const ending = ctx?.endSync();
      if (ending) {
        await ending.catch((err: unknown) =>
          o.logger.warn(
            { err, execution: number },
            'semaphores of an ended execution not freed; they expire with their lease',
          ),
        );
      }
      ctx?.endLog(outcome, Date.now() - started, failure);
      o.observer?.onEnd(job.data.procedure, outcome, Date.now() - started);
      span?.set({ 'sprocd.execution.outcome': outcome });
      span?.end(failure);
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
}
