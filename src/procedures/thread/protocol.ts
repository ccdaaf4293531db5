/**
 * What a node and the worker thread of an `isolation: 'thread'` execution say to each other, over the
 * MessagePort of that one execution, and how errors cross (structured clone keeps an Error's message
 * but not its class, its `code` nor its stack reliably, so they travel as plain objects).
 */
import { SprocdError } from '../../errors.js';
import type { JsonValue, ProcessInfo, SessionInfo } from '../../types.js';

/** An error as it crosses between the threads. */
export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
}

/** The start of one execution in a thread (sent on the worker, with the port of the execution). */
export interface RunMessage {
  t: 'run';
  /** The procedure module's URL, as the node imported it (a reload's URL is new). */
  url: string;
  params: unknown;
  process: ProcessInfo;
  node: string;
  session: { id: string; info: SessionInfo; userName: string };
  /** The reason of ctx.signal when it fired before the run started. */
  aborted?: SerializedError;
}

/** The operations of ctx the thread asks the node for: see thread-context.ts and host.ts. */
export type CallOp =
  | 'checkpoint'
  | 'progress'
  | 'delay'
  | 'executeOnServer'
  | 'executeOnServerBatch'
  | 'storage.get'
  | 'storage.keys'
  | 'storage.snapshot'
  | 'storage.remove'
  | 'storage.use'
  | 'newSignal'
  | 'openSignal'
  | 'signal.wait'
  | 'signal.trigger'
  | 'semaphore'
  | 'testSemaphore'
  | 'clearSemaphore'
  | 'processes.number'
  | 'processes.state'
  | 'processes.info'
  | 'processes.activity'
  | 'processes.delay'
  | 'processes.pause'
  | 'processes.resume'
  | 'processes.abort'
  | 'callWorker'
  | 'killWorker';

/** Thread → node. */
export type FromThread =
  | { t: 'call'; id: number; op: CallOp; args: unknown[] }
  | { t: 'log'; level: LogLevel; bindings: Record<string, unknown>; args: unknown[] }
  /** The drafts of a storage.use after its callback ran in the thread (or its error). */
  | { t: 'use.done'; id: number; ok: true; drafts: Record<string, unknown>[]; value: unknown }
  | { t: 'use.done'; id: number; ok: false; error: SerializedError }
  | { t: 'done'; ok: true; value: unknown }
  | { t: 'done'; ok: false; error: SerializedError };

/** Node → thread. */
export type ToThread =
  | { t: 'reply'; id: number; ok: true; value: unknown }
  | { t: 'reply'; id: number; ok: false; error: SerializedError }
  /** ctx.signal fired on the node (the node stopping: an abort or a time-out terminates the thread). */
  | { t: 'signal'; reason: SerializedError }
  /** PAUSE PROCESS (true) or RESUME PROCESS (false) on the node: ctx.checkpoint asks the node while paused. */
  | { t: 'paused'; paused: boolean }
  /** A storage.use holds its locks: here are its drafts, run the callback (`id` is the use's call id). */
  | { t: 'use.drafts'; id: number; drafts: Record<string, unknown>[] };

/** A signal as it crosses (`ctx.newSignal`, `ctx.openSignal`, and what a wait or trigger learnt). */
export interface SignalState {
  id: string;
  description: string;
  signaled: boolean;
  result: JsonValue | undefined;
}

/** pino's levels, which ctx.log in a thread offers. */
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** A ctx member (or a use of one) that a thread procedure cannot have. */
export class UnsupportedInThreadError extends SprocdError {
  constructor(what: string, instead: string) {
    super(
      'UNSUPPORTED_IN_THREAD',
      `${what} is not available in a procedure with isolation: 'thread'; ${instead}`,
    );
  }
}

/** The thread of an execution ended without an answer (process.exit in the procedure, out of memory...). */
export class ThreadExitedError extends SprocdError {
  constructor(detail: string) {
    super('THREAD_EXITED', `The worker thread of this execution ended without an answer: ${detail}.`);
  }
}

/** `err` as it crosses to the other thread. */
export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      ...(typeof code === 'string' ? { code } : {}),
      ...(typeof err.stack === 'string' ? { stack: err.stack } : {}),
    };
  }
  return { name: 'Error', message: typeof err === 'string' ? err : safeString(err) };
}

/** An Error that says what `e` said: its name, message, code and stack. */
export function reviveError(e: SerializedError): Error {
  const err = new Error(e.message) as Error & { code?: string };
  err.name = e.name;
  if (e.code !== undefined) {
    err.code = e.code;
  }
  if (e.stack !== undefined) {
    err.stack = e.stack;
  }
  return err;
}

function safeString(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
