/**
 * The types a procedure or hook author sees: the `ctx` handed to every procedure and hook, the
 * Session and its storage. Public: re-exported from src/index.ts.
 */
import type { Logger } from 'pino';

/** A JSON value: what params, results and storage entries may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** An object draft handed to a `storage.use` callback. */
export type Draft = Record<string, unknown>;

/** `session.storage`: the shared map of 4D's Session.storage, kept in Redis. */
export interface Storage {
  /** A deep copy of the entry, or undefined. Needs no lock; never sees a half-written `use`. */
  get<T = JsonValue>(key: string): Promise<T | undefined>;
  /** Names of all entries. */
  keys(): Promise<string[]>;
  /** Every entry at one moment. */
  snapshot(): Promise<Record<string, JsonValue>>;
  /** Deletes an entry, taking its lock first. */
  remove(key: string): Promise<void>;
  /**
   * Use ... End use: takes the exclusive lock on `key` (or all of `keys`, in one global order),
   * hands `fn` one draft per key in the order given, commits all drafts at once when `fn` returns,
   * and writes nothing when it throws.
   */
  use<R>(key: string, fn: (draft: Draft) => R | Promise<R>): Promise<R>;
  use<R>(keys: readonly string[], fn: (...drafts: Draft[]) => R | Promise<R>): Promise<R>;
}

/** `Session.info` of the stored-procedure session. */
export interface SessionInfo {
  type: 'storedProcedure';
  ID: string;
  userName: string;
  machineName: string;
  hostType: string;
  creationDateTime: string;
  state: 'active' | 'postponed' | 'sleeping';
}

/** The one virtual stored-procedure Session, shared by every procedure and hook on every node. */
export interface Session {
  readonly id: string;
  readonly info: SessionInfo;
  readonly userName: string;
  readonly storage: Storage;
  /** Always true in a stored-procedure session (4D). */
  hasPrivilege(privilege: string): boolean;
  /** Always ["WebAdmin"] (4D). */
  getPrivileges(): string[];
  /** Does nothing and returns false (4D). */
  setPrivileges(privileges: unknown): boolean;
  /** Does nothing and returns true (4D). */
  clearPrivileges(): boolean;
  /** Always false (4D). */
  isGuest(): boolean;
}

/** Options of Execute on server. */
export interface ExecuteOptions {
  /** The process name (4D's `name`): 1-255 characters, not starting with `$`. */
  name?: string;
  /** 4D's `*`: when a live execution of this name exists, return it instead of starting another. */
  unique?: boolean;
  /** Start no earlier than this many ms from now. */
  delayMs?: number;
  /** BullMQ priority: 1 is the most urgent, larger numbers wait; 0 or absent is none. */
  priority?: number;
  /** How many starts at most when it fails (overrides the procedure's `attempts`). */
  attempts?: number;
}

/** One execution of a batch (`ctx.executeOnServerBatch`, `SprocdClient.executeBatch`). */
export interface ExecuteRequest extends ExecuteOptions {
  procedure: string;
  params?: unknown;
}

/** An execution as the API shows it. */
export interface ExecutionView {
  number: number;
  id: string;
  procedure: string;
  name: string;
  state: ExecutionState;
  params: JsonValue;
  result?: JsonValue;
  error?: { name: string; message: string; code?: string; stack?: string };
  progress?: JsonValue;
  attempt: number;
  /** Starts allowed. */
  attempts?: number;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  /** The node that runs or ran the last attempt. */
  node?: string;
  /** The execution that started it with executeOnServer. */
  parent?: number;
  /** The execution it retries. */
  retryOf?: number;
  /** The execution that retries it. */
  retriedBy?: number;
}

/** States an execution moves through. */
export type ExecutionState = 'waiting' | 'delayed' | 'active' | 'completed' | 'failed' | 'aborted';

/** `ctx.process`: who this execution is. */
export interface ProcessInfo {
  number: number;
  id: string;
  name: string;
  procedure: string;
  /** Counts starts: 1 on the first, raised by each retry and each recovery after a node died. */
  attempt: number;
}

/** What every lifecycle hook gets. */
export interface HookContext {
  /** The one stored-procedure session. */
  session: Session;
  /** A logger whose lines name the hook (or the execution). */
  log: Logger;
  /** Fires when the node stops (for a procedure: also on abort and timeout). */
  signal: AbortSignal;
  /** The node this runs on. */
  node: string;
  /** Execute on server: queues `procedure` and answers its execution (`existing` with `unique`). */
  executeOnServer(
    procedure: string,
    params?: unknown,
    options?: ExecuteOptions,
  ): Promise<ExecutionView & { existing?: boolean }>;
  /**
   * Execute on server for a batch of up to 1,000 executions, queued in one round trip: every item is
   * checked first and a bad one refuses the whole batch (nothing queued). Answers the executions in
   * the order asked (`existing` where `unique` found a live one).
   */
  executeOnServerBatch(
    executions: readonly ExecuteRequest[],
  ): Promise<(ExecutionView & { existing?: boolean })[]>;
  /**
   * CALL WORKER: queues `procedure` with `params` for the worker `worker` (created by its first call).
   * A worker runs its messages one at a time, in the order they were queued, on one node of the
   * cluster at a time (4D's On Server Startup starts its workers so). In an execution: refused with
   * ABORTED once the execution was aborted.
   */
  callWorker(worker: string, procedure: string, params?: unknown): Promise<void>;
  /** KILL WORKER: drops its pending messages; it ends once its current one is done. Nothing when none. */
  killWorker(name: string): Promise<void>;
}

/**
 * A procedure's ON ERR CALL handler (`ctx.onErrCall`): sees an error the procedure's run threw, and
 * either throws (the execution fails with what it threw) or returns the execution's result.
 */
export type ErrCallHandler = (error: unknown, ctx: ProcedureContext) => unknown;

/** What every procedure gets as its second argument. */
export interface ProcedureContext extends HookContext {
  process: ProcessInfo;
  /** Reports progress: a number 0-100 or a JSON object. */
  progress(value: number | Record<string, JsonValue>): Promise<void>;
  /**
   * DELAY PROCESS: sleeps `ms`, ends early when woken, rejects with AbortedError when aborted. While
   * paused it does not end on time: the resume ends it (4D's RESUME PROCESS of a delayed process).
   */
  delay(ms: number): Promise<void>;
  /**
   * A cheap await for long loops: resolves at once, or rejects with `ctx.signal`'s reason once it
   * fired (aborted: AbortedError; timed out; the node stopping), so the loop ends there. While the
   * execution is paused (PAUSE PROCESS) it waits until resumed.
   */
  checkpoint(): Promise<void>;
  /** 4D's commands on other executions of the cluster, by number: see {@link Processes}. */
  readonly processes: Processes;
  /**
   * ON ERR CALL: sets (`undefined` or `null`: clears) the handler of what this run throws or
   * rejects with before its signal fired (abort, time-out and the node stopping are not errors of the
   * procedure and bypass it). `fn(error, ctx)` throwing fails the execution with what it threw;
   * returning swallows the error and completes the execution with that value (JSON; `undefined` is null).
   */
  onErrCall(fn: ErrCallHandler | null | undefined): void;
  /**
   * New signal: a one-shot signal kept in Redis, which any execution on any node opens by its `id`
   * with {@link openSignal}.
   */
  newSignal(description?: string): Promise<Signal>;
  /** Opens the signal with that id (made by ctx.newSignal); SignalNotFoundError when unknown or expired. */
  openSignal(id: string): Promise<Signal>;
  /**
   * Semaphore: true when the semaphore could NOT be taken (someone holds it, this execution included),
   * false when this execution now holds it. With `waitMs`, waits up to that long for it to be freed.
   * A held semaphore is freed by clearSemaphore, when the execution ends, or when its node dies (after
   * a lease).
   */
  semaphore(name: string, waitMs?: number): Promise<boolean>;
  /** Test semaphore: true when someone holds it. Takes nothing. */
  testSemaphore(name: string): Promise<boolean>;
  /** CLEAR SEMAPHORE: frees it when this execution holds it; does nothing otherwise. */
  clearSemaphore(name: string): Promise<void>;
  /** Inside a worker's message: the worker (its name, and `local`); undefined in an execution. */
  readonly worker: WorkerScope | undefined;
}

/** `ctx.worker` inside a worker's message. */
export interface WorkerScope {
  /** The worker's name. */
  readonly name: string;
  /**
   * An object kept between the worker's messages while it stays on one node (4D's process variables
   * of a worker). It starts empty each time a node takes the worker (its node stopped or died).
   */
  readonly local: Record<string, unknown>;
}

/** A signal (4D's `4D.Signal`), from ctx.newSignal or ctx.openSignal. */
export interface Signal {
  /** Its id: pass it to another execution, which opens it with ctx.openSignal. */
  readonly id: string;
  readonly description: string;
  /** Whether it was triggered, as last known here (a wait, an open or a trigger updates it). */
  readonly signaled: boolean;
  /** The result its (first) trigger set; undefined until known to be triggered. */
  readonly result: JsonValue | undefined;
  /**
   * Waits until it is triggered: true then (at once when already triggered), false when `timeoutMs`
   * passed first (no time-out: waits until triggered). Rejects with the execution's signal reason
   * when the execution is aborted or its node stops.
   */
  wait(timeoutMs?: number): Promise<boolean>;
  /**
   * Triggers it with `result` (JSON, default null) and wakes every waiter on every node. The first
   * trigger wins: a later one changes nothing and answers false; true when this call triggered it.
   */
  trigger(result?: JsonValue): Promise<boolean>;
}

/** 4D's Process state codes: -100 does not exist (or finished), -1 aborted, 0 executing, 1 delayed, 4 waiting, 5 paused. */
export type ProcessStateCode = -100 | -1 | 0 | 1 | 4 | 5;

/** Process info of an execution. */
export interface ProcessDetails {
  number: number;
  id: string;
  name: string;
  procedure: string;
  /** Its state as the API shows it. */
  state: ExecutionState;
  /** 4D's Process state code. */
  code: ProcessStateCode;
  /** The node that runs or ran it. */
  node?: string;
  /** Counts starts. */
  attempt: number;
  /** When its last attempt started (ISO). */
  startedAt?: string;
}

/**
 * `ctx.processes`: 4D's commands on other executions, cluster-wide, by number. On a missing or finished
 * execution they do nothing (and `state` answers -100), as in 4D.
 */
export interface Processes {
  /** Process number: the live (active, delayed or waiting) execution with that process name, or 0. */
  number(name: string): Promise<number>;
  /** Process state: 4D's code (0 executing, 1 in ctx.delay or a delayed start, 4 waiting, 5 paused, -1 aborted, -100 gone). */
  state(number: number): Promise<ProcessStateCode>;
  /** Process info; undefined when it does not exist. */
  info(number: number): Promise<ProcessDetails | undefined>;
  /** Process activity: the live executions of the cluster, at most 1,000 per state. */
  activity(): Promise<ProcessDetails[]>;
  /**
   * DELAY PROCESS: the execution's current ctx.delay (or its delayed start) ends `ms` from now instead
   * (0: now). An execution that is neither asleep nor delayed is not affected.
   */
  delay(number: number, ms: number): Promise<void>;
  /** ABORT PROCESS BY ID: as `POST /v1/executions/:number/abort`. */
  abort(number: number): Promise<void>;
  /**
   * PAUSE PROCESS: a running execution stops at its next ctx.checkpoint or ctx.delay until resumed; one
   * waiting or delayed to start does not start until resumed. Pausing a paused one changes nothing.
   */
  pause(number: number): Promise<void>;
  /**
   * RESUME PROCESS: a paused execution goes on (a ctx.delay it was in ends now); one that is not paused
   * but delayed (in ctx.delay, or a delayed start) is woken, as in 4D; nothing else changes.
   */
  resume(number: number): Promise<void>;
}
