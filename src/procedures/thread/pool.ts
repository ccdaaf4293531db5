/**
 * The worker threads of `isolation: 'thread'` procedures on one node. A thread runs one execution
 * at a time; one that answered goes idle and takes the next execution of the same module (a new
 * thread costs a few hundred ms: the TypeScript loader, zod, the module), one that was terminated (an
 * abort, a time-out, a stop) or died is gone. Idle threads end after a while, and with the node.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { ProcedureContext } from '../../types.js';
import type { ExecutionRun } from '../execution-run.js';
import type { LoadedProcedure } from '../registry.js';
import { runInThread, type ThreadEnd } from './host.js';

/** How long an idle thread waits for its next execution. */
const IDLE_MS = 60_000;

/** This folder's files are .ts under tsx (how sprocd runs) and .js once built. */
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * A thread's first code (CommonJS, given to the Worker as text): the TypeScript loader, then
 * `sprocd` resolved to the thread's light entry, and a .ts module loaded as ESM whatever its folder's
 * package.json says (as bin/resolve-self.js does on the node), then the thread's entry.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
const { registerHooks } = require('node:module');
import(workerData.tsx).then(({ register }) => {
  register();
  registerHooks({
    resolve(specifier, context, next) {
      return next(specifier === 'sprocd' ? workerData.sprocd : specifier, context);
    },
    load(url, context, next) {
      if (/\\.ts(\\?|$)/.test(url) && !url.includes('/node_modules/') &&
          (context.format === undefined || context.format === 'commonjs' || context.format === 'commonjs-typescript')) {
        return next(url, { ...context, format: 'module' });
      }
      return next(url, context);
    },
  });
  return import(workerData.main);
});
`;

interface IdleThread {
  worker: Worker;
  timer: NodeJS.Timeout;
}

/** The threads of this node's thread procedures. */
export class ThreadPool {
  private readonly idle = new Map<string, IdleThread[]>();
  private readonly busy = new Set<Worker>();
  private closed = false;
  private readonly workerData = {
    tsx: import.meta.resolve('tsx/esm/api'),
    sprocd: new URL(`./sprocd${EXT}`, import.meta.url).href,
    main: new URL(`./main${EXT}`, import.meta.url).href,
  };

  /** `maxIdle`: idle threads kept per procedure module (the node's concurrency: no more run at once). */
  constructor(
    private readonly logger: Logger,
    private readonly maxIdle: number,
  ) {}

  /** The run of `procedure` in a thread for one execution, with the abort, time-out and stop kill wired to `run`. */
  runner(
    procedure: LoadedProcedure,
    run: ExecutionRun,
  ): (params: unknown, ctx: ProcedureContext) => Promise<unknown> {
    return (params, ctx) => {
      const worker = this.take(procedure.url);
      return runInThread(
        worker,
        { url: procedure.url, params, process: ctx.process, node: ctx.node, session: sessionAbout(ctx) },
        ctx,
        (kill) => {
          run.kill = kill;
          // Aborted before it started (an early abort, the abort flag of a later attempt): no thread time.
          if (run.outcomeDecided) {
            kill();
          }
        },
        (tell) => {
          run.onPauseChange = tell;
          if (run.paused) {
            tell(true);
          }
        },
        (end) => this.release(procedure.url, worker, end),
      );
    };
  }

  /** Threads running an execution now. */
  get busyCount(): number {
    return this.busy.size;
  }

  /** Ends the idle threads (the node stops; running ones end with their executions). */
  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(
      all.map(({ worker, timer }) => {
        clearTimeout(timer);
        return worker.terminate();
      }),
    );
  }

  private take(url: string): Worker {
    const idle = this.idle.get(url)?.pop();
    let worker: Worker;
    if (idle) {
      clearTimeout(idle.timer);
      worker = idle.worker;
      worker.ref();
    } else {
      worker = new Worker(BOOTSTRAP, {
        eval: true,
        workerData: this.workerData,
        stdout: false,
        stderr: false,
      });
      // A thread's errors reach its run (host.ts); one that dies idle must not crash the node.
      worker.on('error', (err) => this.logger.debug({ err }, 'procedure thread ended with an error'));
      worker.once('exit', () => this.forget(worker));
    }
    this.busy.add(worker);
    return worker;
  }

  private release(url: string, worker: Worker, end: ThreadEnd): void {
    this.busy.delete(worker);
    const list = this.idle.get(url) ?? [];
    if (end === 'gone' || this.closed || list.length >= this.maxIdle) {
      void worker.terminate();
      return;
    }
    worker.unref();
    const timer = setTimeout(() => void worker.terminate(), IDLE_MS);
    timer.unref();
    list.push({ worker, timer });
    this.idle.set(url, list);
  }

  /** A thread that died while idle leaves its list. */
  private forget(worker: Worker): void {
    for (const list of this.idle.values()) {
      const at = list.findIndex((t) => t.worker === worker);
      if (at >= 0) {
        clearTimeout(list[at]?.timer);
        list.splice(at, 1);
      }
    }
  }
}

/** What a thread's ctx.session answers without asking (id, info, user name). */
function sessionAbout(ctx: ProcedureContext): {
  id: string;
  info: ProcedureContext['session']['info'];
  userName: string;
} {
  const session = ctx.session;
  return { id: session.id, info: { ...session.info }, userName: session.userName };
}
