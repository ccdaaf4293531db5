/**
 * The node's side of one thread execution: sends the run to a worker thread with a MessagePort of its
 * own, answers the thread's ctx calls with the node's ctx of the execution, and settles with what the
 * thread answered, or when the thread ended without an answer (terminated by an abort, a time-out or a
 * stop; process.exit; an uncaught error).
 */
import { MessageChannel, type MessagePort, type Worker } from 'node:worker_threads';
import { UnrecoverableError } from 'bullmq';
import type { Draft, ProcedureContext, Signal } from '../../types.js';
import {
  ThreadExitedError,
  reviveError,
  serializeError,
  type CallOp,
  type FromThread,
  type RunMessage,
  type SignalState,
  type ToThread,
} from './protocol.js';

/** How a thread run ended, for its pool: whether the thread can take another execution. */
export type ThreadEnd = 'reusable' | 'gone';

/**
 * Runs the execution of `message` on `worker` with the node's `ctx`; `onEnd` says whether the thread
 * may be reused. `setKill` receives the function that terminates the thread (an abort, a time-out);
 * `watchPause` the function that tells the thread of a pause or resume on the node.
 */
export function runInThread(
  worker: Worker,
  message: Omit<RunMessage, 't'>,
  ctx: ProcedureContext,
  setKill: (kill: () => void) => void,
  watchPause: (tell: (paused: boolean) => void) => void,
  onEnd: (end: ThreadEnd) => void,
): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const { port1, port2 } = new MessageChannel();
    const host = new Host(port1, ctx);
    let ended = false;
    const end = (how: ThreadEnd, settle: () => void): void => {
      if (ended) {
        return;
      }
      ended = true;
      worker.off('exit', onExit);
      worker.off('error', onError);
      ctx.signal.removeEventListener('abort', onSignal);
      host.close();
      settle();
      onEnd(how);
    };
    let failure: Error | undefined;
    const onError = (err: Error): void => {
      failure = err;
    };
    const onExit = (code: number): void => {
      end('gone', () => {
        const reason = ctx.signal.aborted ? (ctx.signal.reason as unknown) : undefined;
        reject(reason ?? failure ?? new ThreadExitedError(`it exited with code ${code}`));
      });
    };
    const onSignal = (): void => host.send({ t: 'signal', reason: serializeError(ctx.signal.reason) });
    worker.on('exit', onExit);
    worker.on('error', onError);
    host.onDone = (answer) =>
      end('reusable', () => {
        if (answer.ok) {
          resolve(answer.value);
        } else {
          reject(failureOf(answer.error));
        }
      });
    // Only while this run has the thread: once it answered, the thread may run another execution.
    setKill(() => {
      if (!ended) {
        void worker.terminate();
      }
    });
    ctx.signal.addEventListener('abort', onSignal, { once: true });
    const run: RunMessage = {
      t: 'run',
      ...message,
      ...(ctx.signal.aborted ? { aborted: serializeError(ctx.signal.reason) } : {}),
    };
    worker.postMessage({ ...run, port: port2 }, [port2]);
    watchPause((paused) => {
      if (!ended) {
        host.send({ t: 'paused', paused });
      }
    });
  });
}

/** What the thread threw, as the node fails executions with: `UnrecoverableError` still means no retry. */
function failureOf(error: FromThreadError): Error {
  const err = reviveError(error);
  if (error.name === 'UnrecoverableError') {
    const unrecoverable = new UnrecoverableError(error.message);
    if (error.stack) {
      unrecoverable.stack = error.stack;
    }
    return unrecoverable;
  }
  return err;
}

type FromThreadError = Extract<FromThread, { t: 'done'; ok: false }>['error'];
type Done = Extract<FromThread, { t: 'done' }>;
type UseDone = Extract<FromThread, { t: 'use.done' }>;

/** Answers one execution's thread. */
class Host {
  onDone: ((answer: Done) => void) | undefined;
  private closed = false;
  /** storage.use calls holding their locks, waiting for the thread's drafts. */
  private readonly uses = new Map<
    number,
    { resolve: (done: UseDone) => void; reject: (err: unknown) => void }
  >();
  private readonly signals = new Map<string, Signal>();

  constructor(
    private readonly port: MessagePort,
    private readonly ctx: ProcedureContext,
  ) {
    port.on('message', (message: FromThread) => this.onMessage(message));
  }

  send(message: ToThread): void {
    if (!this.closed) {
      this.port.postMessage(message);
    }
  }

  /** The run ended: a use still waiting for its drafts writes nothing. */
  close(): void {
    this.closed = true;
    this.port.close();
    for (const use of this.uses.values()) {
      use.reject(new ThreadExitedError('it ended inside a storage.use'));
    }
    this.uses.clear();
  }

  private onMessage(message: FromThread): void {
    switch (message.t) {
      case 'call':
        this.call(message.op, message.args, message.id).then(
          (value) => this.send({ t: 'reply', id: message.id, ok: true, value }),
          (err: unknown) => this.send({ t: 'reply', id: message.id, ok: false, error: serializeError(err) }),
        );
        return;
      case 'log': {
        const log =
          Object.keys(message.bindings).length > 0 ? this.ctx.log.child(message.bindings) : this.ctx.log;
        (log[message.level] as (...args: unknown[]) => void)(...message.args);
        return;
      }
      case 'use.done': {
        const use = this.uses.get(message.id);
        this.uses.delete(message.id);
        use?.resolve(message);
        return;
      }
      case 'done':
        this.onDone?.(message);
        return;
    }
  }

  private async call(op: CallOp, args: unknown[], id: number): Promise<unknown> {
    const ctx = this.ctx;
    const a = args as [never, never, never];
    switch (op) {
      case 'progress':
        return ctx.progress(a[0]);
      case 'delay':
        return ctx.delay(a[0]);
      case 'executeOnServer':
        return ctx.executeOnServer(a[0], a[1], a[2]);
      case 'executeOnServerBatch':
        return ctx.executeOnServerBatch(a[0]);
      case 'storage.get':
        return ctx.session.storage.get(a[0]);
      case 'storage.keys':
        return ctx.session.storage.keys();
      case 'storage.snapshot':
        return ctx.session.storage.snapshot();
      case 'storage.remove':
        return ctx.session.storage.remove(a[0]);
      case 'storage.use':
        return this.use(a[0] as string | string[], id);
      case 'newSignal':
        return this.keep(await ctx.newSignal(a[0]));
      case 'openSignal':
        return this.keep(await ctx.openSignal(a[0]));
      case 'signal.wait':
        return this.onSignal(a[0], (s) => s.wait(a[1]));
      case 'signal.trigger':
        return this.onSignal(a[0], (s) => s.trigger(a[1]));
      case 'semaphore':
        return ctx.semaphore(a[0], a[1]);
      case 'testSemaphore':
        return ctx.testSemaphore(a[0]);
      case 'clearSemaphore':
        return ctx.clearSemaphore(a[0]);
      case 'processes.number':
        return ctx.processes.number(a[0]);
      case 'processes.state':
        return ctx.processes.state(a[0]);
      case 'processes.info':
        return ctx.processes.info(a[0]);
      case 'processes.activity':
        return ctx.processes.activity();
      case 'processes.delay':
        return ctx.processes.delay(a[0], a[1]);
      case 'checkpoint':
        return ctx.checkpoint();
      case 'processes.pause':
        return ctx.processes.pause(a[0]);
      case 'processes.resume':
        return ctx.processes.resume(a[0]);
      case 'processes.abort':
        return ctx.processes.abort(a[0]);
      case 'callWorker':
        return ctx.callWorker(a[0], a[1], a[2]);
      case 'killWorker':
        return ctx.killWorker(a[0]);
    }
  }

  /**
   * A storage.use whose callback is in the thread: the node takes the locks, sends the drafts' values
   * over, and writes back what the thread's callback left in them; the commit (or nothing, when the
   * callback threw) is the node's as for any use.
   */
  private use(keys: string | string[], id: number): Promise<unknown> {
    return this.ctx.session.storage.use(
      (Array.isArray(keys) ? keys : [keys]) as readonly string[],
      async (...drafts: Draft[]) => {
        const before = drafts.map((d) => JSON.stringify(d));
        const done = new Promise<UseDone>((resolve, reject) => this.uses.set(id, { resolve, reject }));
        this.send({
          t: 'use.drafts',
          id,
          drafts: before.map((text) => JSON.parse(text) as Record<string, unknown>),
        });
        const answer = await done;
        if (!answer.ok) {
          throw reviveError(answer.error);
        }
        answer.drafts.forEach((after, i) => {
          const draft = drafts[i];
          if (draft && JSON.stringify(after) !== before[i]) {
            for (const key of Object.keys(draft)) {
              delete draft[key];
            }
            Object.assign(draft, after);
          }
        });
        return answer.value;
      },
    );
  }

  private keep(signal: Signal): SignalState {
    this.signals.set(signal.id, signal);
    return stateOf(signal);
  }

  private async onSignal(id: string, act: (s: Signal) => Promise<boolean>): Promise<[boolean, SignalState]> {
    const signal = this.signals.get(id) ?? (await this.ctx.openSignal(id));
    this.signals.set(id, signal);
    const answer = await act(signal);
    return [answer, stateOf(signal)];
  }
}

function stateOf(signal: Signal): SignalState {
  return {
    id: signal.id,
    description: signal.description,
    signaled: signal.signaled,
    result: signal.result,
  };
}
