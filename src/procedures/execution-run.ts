/**
 * One execution while it runs on this node: its outcome (the procedure's, or an interruption that
 * wins over it), its AbortSignal and its ctx.delay sleepers; the `ctx` the procedure gets is
 * execution-context.ts.
 *
 * Both are classes with their methods on the prototype, and what most procedures never touch
 * (the signal, the child logger, bound ctx functions) is made on first use: this runs once per
 * execution, on the hot path of every node. The file is long because abort, time-out, pause and
 * DELAY PROCESS all act on the same few fields (the signal, the pause gate, the sleepers, the outcome)
 * and must change them together.
 */
import type { Job } from 'bullmq';
import type { Logger } from 'pino';
import { AbortedError } from '../errors.js';
import type { LockOwner } from '../session/lock-owner.js';
import type { RunFence } from '../redis/scripts.js';
import type {
  ErrCallHandler,
  JsonValue,
  ProcedureContext,
  Processes,
  Session,
  WorkerScope,
} from '../types.js';
import type { ProcedureDefinition } from './define.js';
import type { ExecutionLogs } from './execution-logs.js';
import type { ExecutionData, Executions } from './executions.js';
import { runParams } from './params.js';
import { PauseGate } from './pause-gate.js';
import type { ProcessSync } from './process-sync.js';

/** What ctx.checkpoint() answers while nothing stops the execution: one promise for every call. */
const SETTLED: Promise<void> = Promise.resolve();

export { ExecutionTimeoutError, Interruption, NodeLostError, NodeStoppingError } from './run-endings.js';
import { ExecutionTimeoutError, Interruption } from './run-endings.js';

/** What a run reads of its BullMQ job (a worker message makes one of its own: ./workers/runner.ts). */
export type RunJob = Pick<
  Job<ExecutionData, JsonValue>,
  'data' | 'attemptsStarted' | 'processedOn' | 'updateProgress'
>;

/** ctx.callWorker's and ctx.killWorker's way to the workers (./workers/workers.ts). */
export interface WorkerCalls {
  call(name: string, procedure: string, params: unknown, caller: number): Promise<unknown>;
  /** KILL WORKER that takes a worker that does not exist for one that ended. */
  killQuietly(name: string): Promise<void>;
}

/** What a run needs from its node. */
export interface RunServices {
  readonly node: string;
  readonly logger: Logger;
  readonly executions: Executions;
  /**
   * The session as `owner` sees it: the storage locks it takes name it, and `check` (throwing to
   * refuse) runs before each `use` takes its locks and before it commits.
   */
  session(owner: LockOwner, check?: () => void, fence?: RunFence): Session;
  /** Where the lines of ctx.log are kept for the console (./execution-logs.ts); none: not kept. */
  readonly logs?: ExecutionLogs;
  /** Signals and semaphores (./process-sync.ts). */
  readonly sync: ProcessSync;
  /** ctx.processes (./processes.ts). */
  readonly processes: Processes;
  /** Marks an execution asleep in ctx.delay until a time (ms), or awake: Process state reads it. */
  markSleep(number: number, until: number | undefined): void;
  /** CALL WORKER and KILL WORKER; absent: ctx.callWorker and ctx.killWorker throw NOT_READY. */
  readonly workers?: WorkerCalls;
}

/** An execution running here. */
export class ExecutionRun {
  /** Why it was interrupted: a user's abort, or the node stopping. */
  interruption: 'abort' | 'shutdown' | undefined;
  /** Settles with the procedure's result, or rejects with its error or an {@link Interruption}. */
  readonly outcome: Promise<unknown>;
  /** Whether {@link outcome} has settled. */
  outcomeDecided = false;
  private settleOutcome!: (value: unknown) => void;
  private failOutcome!: (reason: unknown) => void;
  private controller: AbortController | undefined;
  private reason: Error | undefined;
  private sleepers: Set<Sleeper> | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Set while paused (PAUSE PROCESS): ctx.checkpoint and ctx.delay wait at it. */
  private gate: PauseGate | undefined;
  /** Told of each pause and resume: a thread run's checkpoint waits on the node only while paused. */
  onPauseChange: ((paused: boolean) => void) | undefined;
  /** Told when the run falls asleep in ctx.delay (until, ms) and when it wakes (undefined). */
  sleepMarker: ((until: number | undefined) => void) | undefined;
  /** ON ERR CALL of this run (ctx.onErrCall); none: an error fails the execution. */
  errCall: ErrCallHandler | undefined;
  /** ctx.worker: set when this run is a worker's message (./workers/runner.ts). */
  worker: WorkerScope | undefined;
  /**
   * Stops the procedure's code by force, when it can be (a thread procedure: its worker thread is
   * terminated). Called on every interruption: abort, time-out, give-back at a stop.
   */
  kill: (() => void) | undefined;
  /** Whether the procedure's code (its run, and its ON ERR CALL handler) has settled. */
  codeDone = false;
  /**
   * Resolves once the code settled, or once {@link release} gave up waiting for it. Made only when
   * someone waits while the code still runs (an interrupted run): most runs end with their code.
   */
  private codeEnd: Promise<void> | undefined;
  private endCode: (() => void) | undefined;
  /** Whether {@link release} gave up waiting for the code. */
  private released = false;

  constructor(
    readonly number: number,
    readonly job: RunJob,
    readonly token: string,
    /** Its job's lock key (none: a worker message): its storage commits write only where that holds its token. */
    private readonly jobLock?: string,
  ) {
    this.outcome = new Promise((resolve, reject) => {
      this.settleOutcome = resolve;
      this.failOutcome = reject;
    });
  }

  /** What its storage commits check where they land (lockCommit-n.lua): its job lock still holding its token. */
  get fence(): RunFence | undefined {
    return this.jobLock === undefined ? undefined : { key: this.jobLock, value: this.token };
  }

  /**
   * Resolves once the procedure's code has settled (or {@link release} gave up on it). The worker
   * keeps the execution's slot until then, even when an abort or a time-out decided its outcome
   * earlier: a node never runs more code at once than its concurrency.
   */
  codeSettled(): Promise<void> {
    if (this.codeDone || this.released) {
      return SETTLED;
    }
    return (this.codeEnd ??= new Promise((resolve) => {
      this.endCode = resolve;
    }));
  }

  /** Stops waiting for the code (a stopping node does not wait past its grace for code that ignores its signal). */
  release(): void {
    this.released = true;
    this.endCode?.();
  }

  private settleCode(): void {
    this.codeDone = true;
    this.endCode?.();
  }

  private resolveOutcome(value: unknown): void {
    this.outcomeDecided = true;
    this.settleOutcome(value);
  }

  private rejectOutcome(reason: unknown): void {
    this.outcomeDecided = true;
    this.failOutcome(reason);
  }

  /**
   * Starts the procedure; its settlement decides the outcome unless an interruption came first.
   * `runner` replaces the definition's own run (a thread procedure runs in a worker thread).
   */
  start(
    definition: ProcedureDefinition<unknown, unknown>,
    ctx: ProcedureContext,
    runner?: (params: unknown, ctx: ProcedureContext) => Promise<unknown>,
  ): void {
    if (definition.timeoutMs) {
      this.timer = setTimeout(this.onTimeout, definition.timeoutMs, this, definition.timeoutMs);
    }
    let params: unknown;
    try {
      const data = this.job.data;
      params = runParams(data.procedure, definition.params, data.params);
    } catch (err) {
      this.settleCode();
      this.rejectOutcome(err);
      return;
    }
    let result: unknown;
    try {
      result = runner ? runner(params, ctx) : definition.run(params, ctx);
    } catch (err) {
      this.onRunError(err, ctx);
      return;
    }
    // Later settlements of an interrupted procedure land on a settled promise: no unhandled rejection.
    Promise.resolve(result).then(
      (value) => {
        this.settleCode();
        this.resolveOutcome(value);
      },
      (err: unknown) => this.onRunError(err, ctx),
    );
  }

  /**
   * What the procedure's run threw: its ON ERR CALL handler (ctx.onErrCall) decides, if it set one
   * and the signal has not fired (after an abort, a time-out or the node stopping, the interruption
   * decides, and what the run throws then is most likely that interruption's reason).
   */
  private onRunError(err: unknown, ctx: ProcedureContext): void {
    const handler = this.errCall;
    if (!handler || this.reason) {
      this.settleCode();
      this.rejectOutcome(err);
      return;
    }
    let handled: unknown;
    try {
      handled = handler(err, ctx);
    } catch (thrown) {
      this.settleCode();
      this.rejectOutcome(thrown);
      return;
    }
    Promise.resolve(handled).then(
      (value) => {
        this.settleCode();
        this.resolveOutcome(value);
      },
      (thrown: unknown) => {
        this.settleCode();
        this.rejectOutcome(thrown);
      },
    );
  }

  /**
   * Ends the wait for the procedure's outcome now (its result no longer counts), and stops its code
   * by force when it can ({@link kill}); otherwise the code may go on until it settles.
   */
  interrupt(kind: Interruption['kind']): void {
    this.rejectOutcome(new Interruption(kind));
    this.kill?.();
  }

  /** Clears the timeout timer. */
  finish(): void {
    clearTimeout(this.timer);
  }

  /** The execution's AbortSignal, made on first use (already fired if it was interrupted before). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.reason) {
        this.controller.abort(this.reason);
      }
    }
    return this.controller.signal;
  }

  /** Fires the signal with `reason` (the first reason wins). */
  fire(reason: Error): void {
    if (this.reason) {
      return;
    }
    this.reason = reason;
    this.controller?.abort(reason);
  }

  /**
   * Throws ABORTED once the execution was aborted: its code may go on running, but what it would
   * change then (a storage commit, an execution it starts) is refused.
   */
  assertNotAborted(): void {
    if (this.interruption === 'abort') {
      throw new AbortedError(
        'The execution was aborted: what its code does after the abort is refused (storage writes, executeOnServer, signal triggers).',
      );
    }
  }

  /** A user's abort: fires the signal and ends the wait at once. */
  abort(): void {
    if (this.interruption === 'abort') {
      return;
    }
    this.interruption = 'abort';
    this.fire(new AbortedError());
    this.interrupt('abort');
  }

  /** Ends the current ctx.delay, if any (DELAY PROCESS with 0); not while paused: the pause holds it. */
  wake(): void {
    if (!this.gate) {
      this.sleepers?.forEach((s) => s.done());
    }
  }

  /** Whether it is paused (PAUSE PROCESS). */
  get paused(): boolean {
    return this.gate !== undefined;
  }

  /**
   * PAUSE PROCESS: it stops at its next ctx.checkpoint or ctx.delay, and a ctx.delay it sleeps in now
   * no longer ends on time, until {@link resume}. Pausing a paused run changes nothing.
   */
  pause(): void {
    if (!this.gate) {
      this.gate = new PauseGate();
      this.sleepers?.forEach((s) => s.hold());
      this.onPauseChange?.(true);
    }
  }

  /** RESUME PROCESS: it goes on; as in 4D, a ctx.delay it was in (paused or not) ends now. */
  resume(): void {
    const gate = this.gate;
    this.gate = undefined;
    gate?.open();
    if (gate) {
      this.onPauseChange?.(false);
    }
    this.wake();
  }

  /** DELAY PROCESS from elsewhere: the current ctx.delay ends `ms` from now instead (0: now). */
  redelay(ms: number): void {
    if (this.gate) {
      return; // the pause holds it until resumed
    }
    if (ms <= 0) {
      this.wake();
      return;
    }
    if (this.sleepers && this.sleepers.size > 0) {
      this.sleepers.forEach((s) => s.reschedule(ms));
      this.sleepMarker?.(Date.now() + ms);
    }
  }

  /**
   * ctx.checkpoint(): settled at once; rejected with the reason once the signal fired; while paused,
   * settled when resumed.
   */
  checkpoint(): Promise<void> {
    if (this.reason) {
      return Promise.reject(this.reason);
    }
    return this.gate ? this.gate.wait(this.signal) : SETTLED;
  }

  /**
   * DELAY PROCESS: sleeps `ms`, ends early on wake, rejects when the signal fires. While paused it
   * waits for the resume instead, and ends with it (4D's RESUME PROCESS of a delayed process).
   */
  delay(ms: number): Promise<void> {
    const signal = this.signal;
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    if (this.gate) {
      return this.gate.wait(signal);
    }
    return new Promise<void>((resolve, reject) => {
      const sleeper = new Sleeper(this, signal, resolve, reject, ms);
      (this.sleepers ??= new Set()).add(sleeper);
      this.sleepMarker?.(Date.now() + Math.max(0, ms));
    });
  }

  /** @internal */
  forget(sleeper: Sleeper): void {
    this.sleepers?.delete(sleeper);
    if (this.sleepers?.size === 0) {
      this.sleepMarker?.(undefined);
    }
  }

  private onTimeout(this: void, run: ExecutionRun, ms: number): void {
    run.fire(new ExecutionTimeoutError(ms));
    run.interrupt('timeout');
  }
}

/** One pending ctx.delay. */
class Sleeper {
  private timer: NodeJS.Timeout;
  private readonly onAbort = (): void => this.settle(false);

  constructor(
    private readonly run: ExecutionRun,
    private readonly signal: AbortSignal,
    private readonly resolve: () => void,
    private readonly reject: (reason: unknown) => void,
    ms: number,
  ) {
    this.timer = setTimeout(() => this.settle(true), Math.max(0, ms));
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  done(): void {
    this.settle(true);
  }

  /** Paused: it no longer ends on time, only when woken (the resume) or aborted. */
  hold(): void {
    clearTimeout(this.timer);
  }

  /** Ends `ms` from now instead. */
  reschedule(ms: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(true), Math.max(0, ms));
  }

  private settle(ok: boolean): void {
    clearTimeout(this.timer);
    this.signal.removeEventListener('abort', this.onAbort);
    this.run.forget(this);
    if (ok) {
      this.resolve();
    } else {
      this.reject(this.signal.reason);
    }
  }
}
