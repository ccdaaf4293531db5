/**
 * The `ctx` a thread procedure gets, inside its worker thread: what can be answered here is
 * (`process`, `node`, `signal`, `checkpoint`, `onErrCall`, the session's fixed answers); everything
 * else is a call to the node over the execution's MessagePort, answered by host.ts with the node's own
 * ctx of the execution. A member the thread cannot offer throws UnsupportedInThreadError.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { MessagePort } from 'node:worker_threads';
import type {
  Draft,
  ErrCallHandler,
  ExecuteOptions,
  ExecutionView,
  JsonValue,
  ProcedureContext,
  ProcessInfo,
  Processes,
  Session,
  SessionInfo,
  Signal,
  Storage,
} from '../../types.js';
import {
  LOG_LEVELS,
  UnsupportedInThreadError,
  reviveError,
  serializeError,
  type CallOp,
  type FromThread,
  type LogLevel,
  type RunMessage,
  type SignalState,
  type ToThread,
} from './protocol.js';

type Pending = { resolve: (value: unknown) => void; reject: (reason: unknown) => void };

/**
 * Set while a storage.use callback runs in this thread. The node's re-entrance (a `use` or `remove`
 * inside a `use` of the same execution joins it) follows the async context of the callback, which
 * does not cross threads: such a call from here would wait for the locks its own `use` holds.
 */
const insideUse = new AsyncLocalStorage<true>();

function refuseInsideUse(what: string): Promise<never> | undefined {
  return insideUse.getStore()
    ? Promise.reject(
        new UnsupportedInThreadError(
          `${what} inside a storage.use callback`,
          "take every key in one use (storage.use([a, b], (da, db) => ...)); to remove an entry, delete the draft's fields.",
        ),
      )
    : undefined;
}

/** The execution's side of the port: calls to the node and their answers. */
export class ThreadLink {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** storage.use callbacks waiting for their drafts, by the use's call id. */
  private readonly uses = new Map<number, (...drafts: Draft[]) => unknown>();
  readonly controller = new AbortController();
  /** Paused on the node: ctx.checkpoint then waits there for the resume (one round trip). */
  paused = false;

  constructor(private readonly port: MessagePort) {
    port.on('message', (message: ToThread) => this.onMessage(message));
  }

  post(message: FromThread): void {
    this.port.postMessage(message);
  }

  call<T>(op: CallOp, args: unknown[], use?: (...drafts: Draft[]) => unknown): Promise<T> {
    const id = this.nextId++;
    try {
      this.post({ t: 'call', id, op, args });
    } catch (err) {
      // Arguments that cannot be cloned (a function, a class instance with private state...).
      return Promise.reject(
        new TypeError(
          `ctx: what was passed to ${op} cannot cross to the node (${(err as Error).message}); pass JSON.`,
        ),
      );
    }
    if (use) {
      this.uses.set(id, use);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
    });
  }

  private onMessage(message: ToThread): void {
    if (message.t === 'reply') {
      const pending = this.pending.get(message.id);
      this.pending.delete(message.id);
      this.uses.delete(message.id);
      if (message.ok) {
        pending?.resolve(message.value);
      } else {
        pending?.reject(reviveError(message.error));
      }
    } else if (message.t === 'paused') {
      this.paused = message.paused;
    } else if (message.t === 'signal') {
      this.controller.abort(reviveError(message.reason));
    } else if (message.t === 'use.drafts') {
      void this.runUse(message.id, message.drafts);
    }
  }

  /** Runs a storage.use callback on the drafts the node holds the locks of, and sends them back. */
  private async runUse(id: number, drafts: Record<string, unknown>[]): Promise<void> {
    const fn = this.uses.get(id);
    try {
      if (!fn) {
        throw new Error('storage.use: no callback for these drafts');
      }
      const value = await insideUse.run(true, () => fn(...drafts));
      this.post({ t: 'use.done', id, ok: true, drafts, value });
    } catch (err) {
      this.post({ t: 'use.done', id, ok: false, error: serializeError(err) });
    }
  }
}

/** ctx.log in a thread: pino's level methods and `child`, each line written by the node's logger. */
class ThreadLogger {
  constructor(
    private readonly link: ThreadLink,
    private readonly bindingsOf: Record<string, unknown>,
  ) {
    for (const level of LOG_LEVELS) {
      (this as unknown as Record<LogLevel, (...args: unknown[]) => void>)[level] = (...args) =>
        this.write(level, args);
    }
  }

  get level(): string {
    return 'info';
  }

  isLevelEnabled(): boolean {
    return true;
  }

  bindings(): Record<string, unknown> {
    return { ...this.bindingsOf };
  }

  child(bindings: Record<string, unknown>): ThreadLogger {
    return strict(new ThreadLogger(this.link, { ...this.bindingsOf, ...bindings }), 'ctx.log');
  }

  private write(level: LogLevel, args: unknown[]): void {
    try {
      this.link.post({ t: 'log', level, bindings: this.bindingsOf, args });
    } catch {
      // Not cloneable: the line as JSON-ish text.
      this.link.post({ t: 'log', level, bindings: this.bindingsOf, args: args.map(textOf) });
    }
  }
}

function textOf(value: unknown): unknown {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') {
    return value;
  }
  try {
    return JSON.parse(JSON.stringify(value)) as unknown;
  } catch {
    return String(value);
  }
}

/** A signal of this execution: its wait and trigger are the node's. */
class ThreadSignal implements Signal {
  constructor(
    private readonly link: ThreadLink,
    private state: SignalState,
  ) {}

  get id(): string {
    return this.state.id;
  }
  get description(): string {
    return this.state.description;
  }
  get signaled(): boolean {
    return this.state.signaled;
  }
  get result(): JsonValue | undefined {
    return this.state.result;
  }

  async wait(timeoutMs?: number): Promise<boolean> {
    const [answer, state] = await this.link.call<[boolean, SignalState]>('signal.wait', [this.id, timeoutMs]);
    this.state = state;
    return answer;
  }

  async trigger(result?: JsonValue): Promise<boolean> {
    const [answer, state] = await this.link.call<[boolean, SignalState]>('signal.trigger', [this.id, result]);
    this.state = state;
    return answer;
  }
}

/**
 * The `ctx` of a thread procedure. Deliberately not `implements ProcedureContext`: a member added to
 * ProcedureContext later reaches a thread as UnsupportedInThreadError (through {@link strict}) until
 * it is passed over here, instead of breaking the build.
 */
export class ThreadContext {
  readonly log: ProcedureContext['log'];
  readonly session: Session;
  readonly process: ProcessInfo;
  readonly node: string;
  readonly processes: Processes;
  errCall: ErrCallHandler | undefined;

  constructor(
    private readonly link: ThreadLink,
    run: RunMessage,
  ) {
    this.process = Object.freeze({ ...run.process });
    this.node = run.node;
    this.log = strict(new ThreadLogger(link, {}), 'ctx.log') as unknown as ProcedureContext['log'];
    this.session = threadSession(link, run.session);
    const call =
      (op: CallOp) =>
      (...args: unknown[]) =>
        link.call(op, args);
    this.processes = strict(
      {
        number: call('processes.number'),
        state: call('processes.state'),
        info: call('processes.info'),
        activity: call('processes.activity'),
        delay: call('processes.delay'),
        pause: call('processes.pause'),
        resume: call('processes.resume'),
        abort: call('processes.abort'),
      } as Processes,
      'ctx.processes',
    );
  }

  get signal(): AbortSignal {
    return this.link.controller.signal;
  }

  progress = (value: number | Record<string, JsonValue>): Promise<void> =>
    this.link.call('progress', [value]);

  delay = (ms: number): Promise<void> => this.link.call('delay', [ms]);

  checkpoint = (): Promise<void> => {
    const signal = this.link.controller.signal;
    if (signal.aborted) {
      return Promise.reject(signal.reason);
    }
    // Not paused: nothing crosses, as an inline checkpoint makes no Redis call.
    return this.link.paused ? this.link.call('checkpoint', []) : Promise.resolve();
  };

  onErrCall = (fn: ErrCallHandler | null | undefined): void => {
    if (fn !== undefined && fn !== null && typeof fn !== 'function') {
      throw new TypeError('ctx.onErrCall takes a function, or undefined or null to clear the handler.');
    }
    this.errCall = fn ?? undefined;
  };

  executeOnServer = (
    procedure: string,
    params?: unknown,
    options?: ExecuteOptions,
  ): Promise<ExecutionView & { existing?: boolean }> =>
    this.link.call('executeOnServer', [procedure, params, options]);

  executeOnServerBatch: ProcedureContext['executeOnServerBatch'] = (executions) =>
    this.link.call('executeOnServerBatch', [executions]);

  newSignal = async (description?: string): Promise<Signal> =>
    new ThreadSignal(this.link, await this.link.call<SignalState>('newSignal', [description]));

  openSignal = async (id: string): Promise<Signal> =>
    new ThreadSignal(this.link, await this.link.call<SignalState>('openSignal', [id]));

  semaphore = (name: string, waitMs?: number): Promise<boolean> =>
    this.link.call('semaphore', [name, waitMs]);

  testSemaphore = (name: string): Promise<boolean> => this.link.call('testSemaphore', [name]);

  clearSemaphore = (name: string): Promise<void> => this.link.call('clearSemaphore', [name]);

  /** Worker messages run inline (./workers/runner.ts), never in a thread. */
  readonly worker = undefined;

  callWorker = (worker: string, procedure: string, params?: unknown): Promise<void> =>
    this.link.call('callWorker', [worker, procedure, params]);

  killWorker = (name: string): Promise<void> => this.link.call('killWorker', [name]);
}

/** The session as a thread sees it: its storage calls the node; `use` runs its callback here. */
function threadSession(link: ThreadLink, about: RunMessage['session']): Session {
  const storage: Storage = {
    get: <T = JsonValue>(key: string) => link.call<T | undefined>('storage.get', [key]),
    keys: () => link.call('storage.keys', []),
    snapshot: () => link.call('storage.snapshot', []),
    remove: (key: string) => refuseInsideUse('storage.remove') ?? link.call('storage.remove', [key]),
    use: (<R>(keys: string | readonly string[], fn: (...drafts: Draft[]) => R | Promise<R>) => {
      if (typeof fn !== 'function') {
        return Promise.reject(new TypeError('storage.use takes a key (or keys) and a function.'));
      }
      return (
        refuseInsideUse('storage.use') ??
        link.call<R>('storage.use', [keys], fn as (...drafts: Draft[]) => unknown)
      );
    }) as Storage['use'],
  };
  const info: SessionInfo = about.info;
  return strict(
    {
      id: about.id,
      info,
      userName: about.userName,
      storage: strict(storage, 'ctx.session.storage'),
      hasPrivilege: () => true,
      getPrivileges: () => ['WebAdmin'],
      setPrivileges: () => false,
      clearPrivileges: () => true,
      isGuest: () => false,
    },
    'ctx.session',
  );
}

/** Names that code reads from any object without meaning a member (await, JSON, inspection). */
const PROBES = new Set(['then', 'toJSON', 'constructor', 'asymmetricMatch', 'nodeType', '$$typeof']);

/**
 * `target`, where reading a member it does not have throws UnsupportedInThreadError naming it, rather
 * than answering undefined: code written for an inline procedure learns at once what a thread lacks.
 */
export function strict<T extends object>(target: T, what: string): T {
  return new Proxy(target, {
    get(obj, key, receiver) {
      if (typeof key === 'symbol' || key in obj || PROBES.has(key)) {
        return Reflect.get(obj, key, receiver) as unknown;
      }
      throw new UnsupportedInThreadError(
        `${what}.${key}`,
        "use it in an inline procedure (isolation 'inline'), or start one with ctx.executeOnServer and pass what it needs as params.",
      );
    },
  });
}
