/**
 * The `ctx` a procedure gets: one object per execution over its {@link ExecutionRun} and its node's
 * services. Functions are bound and parts (the logger, the session view, the signals and semaphores)
 * are made on first use: most procedures touch few of them, and this runs once per execution.
 */
import type { Logger } from 'pino';
import { NotReadyError } from '../errors.js';
import type { ProcedureContext, ProcessInfo, Session, WorkerScope } from '../types.js';
import { executeOnServerBatchWith, executeOnServerWith } from './execute.js';
import type { ExecutionRun, RunServices } from './execution-run.js';
import type { LineCapture } from './execution-logs.js';
import { assertJson } from './json.js';
import { ExecutionSync } from './process-sync.js';

/** The `ctx` of an execution. Functions are bound on first access, so `const { delay } = ctx` works. */
export class ExecutionContext implements ProcedureContext {
  private logger: Logger | undefined;
  private capture: LineCapture | undefined;
  private ended = false;
  private info: ProcessInfo | undefined;
  private ownSession: Session | undefined;
  private syncState: ExecutionSync | undefined;
  private bound: Partial<
    Pick<
      ProcedureContext,
      | 'delay'
      | 'checkpoint'
      | 'progress'
      | 'executeOnServer'
      | 'executeOnServerBatch'
      | 'onErrCall'
      | 'newSignal'
      | 'openSignal'
      | 'semaphore'
      | 'testSemaphore'
      | 'clearSemaphore'
      | 'callWorker'
      | 'killWorker'
    >
  > = {};

  constructor(
    private readonly run: ExecutionRun,
    private readonly services: RunServices,
  ) {}

  /** Made for this execution on first use, so the storage locks it takes name it (the console shows who holds a lock). */
  get session(): Session {
    return (this.ownSession ??= this.services.session(
      { execution: this.run.number },
      () => this.run.assertNotAborted(),
      this.run.fence,
    ));
  }

  get log(): Logger {
    if (!this.logger) {
      const { job, number } = this.run;
      this.logger = this.services.logger.child({ execution: number, procedure: job.data.procedure });
      // Only an execution that logs pays for keeping its lines (a tee on this child's stream).
      if (this.services.logs && !this.ended) {
        this.capture = this.services.logs.attach(this.logger, {
          number,
          attempt: job.attemptsStarted,
          startedAt: job.processedOn ?? Date.now(),
          name: job.data.name || undefined,
        });
      }
    }
    return this.logger;
  }

  /** The execution ended here: its kept lines (if ctx.log wrote any) go out with sprocd's end line. */
  endLog(outcome: string, durationMs: number, failure?: unknown): void {
    this.ended = true;
    this.capture?.end(outcome, durationMs, failure);
  }

  get signal(): AbortSignal {
    return this.run.signal;
  }

  /** Its signal waits and semaphores, made on first use. */
  private get sync(): ExecutionSync {
    return (this.syncState ??= new ExecutionSync(
      this.services.sync,
      this.services.node,
      this.run.number,
      this.run.signal,
      () => this.run.assertNotAborted(),
    ));
  }

  /** The execution ended, however it ended: its pending signal waits end, its semaphores are freed. */
  endSync(): Promise<void> | undefined {
    return this.syncState?.end();
  }

  get newSignal(): ProcedureContext['newSignal'] {
    return (this.bound.newSignal ??= (description) => this.sync.newSignal(description));
  }

  get openSignal(): ProcedureContext['openSignal'] {
    return (this.bound.openSignal ??= (id) => this.sync.openSignal(id));
  }

  get semaphore(): ProcedureContext['semaphore'] {
    return (this.bound.semaphore ??= (name, waitMs) => this.sync.semaphores.take(name, waitMs));
  }

  get testSemaphore(): ProcedureContext['testSemaphore'] {
    return (this.bound.testSemaphore ??= (name) => this.sync.testSemaphore(name));
  }

  get clearSemaphore(): ProcedureContext['clearSemaphore'] {
    return (this.bound.clearSemaphore ??= (name) => this.sync.semaphores.clear(name));
  }

  get node(): string {
    return this.services.node;
  }

  get process(): ProcessInfo {
    const data = this.run.job.data;
    return (this.info ??= Object.freeze({
      number: this.run.number,
      id: data.id,
      name: data.name,
      procedure: data.procedure,
      attempt: this.run.job.attemptsStarted,
    }));
  }

  get delay(): ProcedureContext['delay'] {
    if (!this.bound.delay) {
      const { number } = this.run;
      this.run.sleepMarker ??= (until) => this.services.markSleep(number, until);
      this.bound.delay = (ms: number) => this.run.delay(ms);
    }
    return this.bound.delay;
  }

  get processes(): ProcedureContext['processes'] {
    return this.services.processes;
  }

  get checkpoint(): ProcedureContext['checkpoint'] {
    return (this.bound.checkpoint ??= () => this.run.checkpoint());
  }

  get progress(): ProcedureContext['progress'] {
    return (this.bound.progress ??= async (value) => {
      if (!(
        (typeof value === 'number' && value >= 0 && value <= 100) ||
        (typeof value === 'object' && value !== null)
      )) {
        throw new TypeError('ctx.progress takes a number from 0 to 100 or a JSON object.');
      }
      assertJson(value, 'progress');
      await this.run.job.updateProgress(value as number | object);
    });
  }

  get onErrCall(): ProcedureContext['onErrCall'] {
    return (this.bound.onErrCall ??= (fn) => {
      if (fn !== undefined && fn !== null && typeof fn !== 'function') {
        throw new TypeError('ctx.onErrCall takes a function, or undefined or null to clear the handler.');
      }
      this.run.errCall = fn ?? undefined;
    });
  }

  get executeOnServer(): ProcedureContext['executeOnServer'] {
    if (!this.bound.executeOnServer) {
      // A worker's message (number 0) is not an execution: what it starts has no parent.
      const links = this.run.number > 0 ? { parent: this.run.number } : undefined;
      const execute = executeOnServerWith(() => this.services.executions, links);
      // An aborted execution starts nothing more.
      this.bound.executeOnServer = ((...args: Parameters<typeof execute>) => {
        try {
          this.run.assertNotAborted();
        } catch (err) {
          return Promise.reject(err);
        }
        return execute(...args);
      }) as ProcedureContext['executeOnServer'];
    }
    return this.bound.executeOnServer;
  }

  get worker(): WorkerScope | undefined {
    return this.run.worker;
  }

  get callWorker(): ProcedureContext['callWorker'] {
    return (this.bound.callWorker ??= async (worker, procedure, params) => {
      // An aborted execution queues nothing more (as executeOnServer).
      this.run.assertNotAborted();
      await this.workerCalls().call(worker, procedure, params, this.run.number);
    });
  }

  get killWorker(): ProcedureContext['killWorker'] {
    return (this.bound.killWorker ??= async (name) => {
      this.run.assertNotAborted();
      await this.workerCalls().killQuietly(name);
    });
  }

  private workerCalls(): NonNullable<RunServices['workers']> {
    const workers = this.services.workers;
    if (!workers) {
      throw new NotReadyError();
    }
    return workers;
  }

  get executeOnServerBatch(): ProcedureContext['executeOnServerBatch'] {
    if (!this.bound.executeOnServerBatch) {
      // Each execution of the batch is a child of this one, as with executeOnServer.
      const execute = executeOnServerBatchWith(() => this.services.executions, { parent: this.run.number });
      this.bound.executeOnServerBatch = (executions) => {
        try {
          this.run.assertNotAborted();
        } catch (err) {
          return Promise.reject(err);
        }
        return execute(executions);
      };
    }
    return this.bound.executeOnServerBatch;
  }
}
