/**
 * The API without a node or Redis: a fake {@link ApiContext} whose parts a test replaces, an
 * in-memory executions fake, and the built app to call with fastify's `inject`.
 */
import { pino } from 'pino';
import { afterEach } from 'vitest';
import { buildApi, type Api, type ApiContext, type BuildOptions } from '../../src/api/app.js';
import type { ExecutionsApi } from '../../src/api/executions.js';
import {
  ExecutionFinishedError,
  ExecutionNotFoundError,
  NotReadyError,
  ValidationError,
} from '../../src/errors.js';
import type { ExecutionPage } from '../../src/procedures/execution-pages.js';
import type { ExecuteResult, ListFilter } from '../../src/procedures/executions.js';
import type { ExecuteOptions, ExecutionView } from '../../src/types.js';
import { checkAnswers } from './openapi.js';

/** A context for a ready node that has nothing yet: replace the parts a test uses. */
export function fakeContext(overrides: Partial<ApiContext> = {}): ApiContext {
  return {
    name: 'fake-node',
    state: () => 'ready',
    isReady: async () => ({ ready: true }),
    redisTimeoutMs: 500,
    restoreMaxBytes: 1024,
    metrics: {
      contentType: 'text/plain; version=0.0.4; charset=utf-8',
      metrics: async () => 'sprocd_up 1\n',
    },
    executions: () => {
      throw new NotReadyError();
    },
    processes: () => {
      throw new NotReadyError();
    },
    signals: () => {
      throw new NotReadyError();
    },
    semaphores: () => {
      throw new NotReadyError();
    },
    procedures: () => [],
    procedureSchemas: () => [],
    session: () => {
      throw new NotReadyError();
    },
    liveNodes: async () => [],
    events: () => {
      throw new NotReadyError();
    },
    stats: () => {
      throw new NotReadyError();
    },
    executionLogs: async () => {
      throw new NotReadyError();
    },
    storageAdmin: () => {
      throw new NotReadyError();
    },
    executionAdmin: () => {
      throw new NotReadyError();
    },
    workers: () => {
      throw new NotReadyError();
    },
    schedules: async () => {
      throw new NotReadyError();
    },
    backupRecord: async () => undefined,
    lockTimeoutMs: 1000,
    backups: () => {
      throw new NotReadyError();
    },
    settings: { host: '127.0.0.1', port: 0, token: undefined, bodyLimit: 64 * 1024 },
    log: pino({ level: 'silent' }),
    ...overrides,
  };
}

const opened: Api[] = [];

/** What a {@link FakeExecutions} was asked to do to an execution. */
interface Signalled {
  op: 'abort' | 'wake' | 'delay' | 'pause' | 'resume';
  number: number;
  ms?: number;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((api) => api.close()));
});

/**
 * Builds the API on `ctx` (closed after the test); call it with `app.inject`, which checks each
 * answer against the API's /openapi.json.
 */
export async function fakeApi(ctx: ApiContext = fakeContext(), options?: BuildOptions): Promise<Api['app']> {
  const api = await buildApi(ctx, options);
  opened.push(api);
  await api.app.ready();
  checkAnswers(api.app);
  return api.app;
}

/** Executions in memory: what the routes call, recorded; a test sets what they answer. */
export class FakeExecutions implements ExecutionsApi {
  readonly views = new Map<number, ExecutionView>();
  readonly requests: { procedure: unknown; params: unknown; options: ExecuteOptions | undefined }[] = [];
  readonly filters: ListFilter[] = [];
  readonly signals: Signalled[] = [];
  /** The state an execution has when a request waits for it. */
  finishAs: ExecutionView['state'] = 'completed';
  private next = 1;

  async execute(procedure: unknown, params: unknown, options?: ExecuteOptions): Promise<ExecuteResult> {
    this.requests.push({ procedure, params, options });
    const live = [...this.views.values()].find(
      (v) =>
        options?.unique && v.name === options.name && !['completed', 'failed', 'aborted'].includes(v.state),
    );
    if (live) {
      return { execution: live, existing: true };
    }
    const view: ExecutionView = {
      number: this.next++,
      id: `id-${this.next}`,
      procedure: String(procedure),
      name: options?.name ?? '',
      state: options?.delayMs ? 'delayed' : 'waiting',
      params: (params ?? null) as ExecutionView['params'],
      attempt: 0,
      createdAt: new Date(0).toISOString(),
    };
    this.views.set(view.number, view);
    return { execution: view, existing: false };
  }

  /** A batch as the real one answers it: every item checked first (a known procedure: not "missing"). */
  async executeBatch(requests: readonly unknown[]): Promise<ExecuteResult[]> {
    const items = requests as { procedure: string; params?: unknown; [option: string]: unknown }[];
    const bad = items.findIndex((item) => item.procedure === 'missing');
    if (bad >= 0) {
      throw new ValidationError(`executions[${bad}]: No procedure "missing" in jobs/.`, {
        index: bad,
        code: 'UNKNOWN_PROCEDURE',
      });
    }
    const results: ExecuteResult[] = [];
    for (const { procedure, params, ...options } of items) {
      results.push(await this.execute(procedure, params, options as ExecuteOptions));
    }
    return results;
  }

  async waitFor(number: number): Promise<ExecutionView> {
    const view = await this.get(number);
    const done: ExecutionView = { ...view, state: this.finishAs, result: 'done' };
    this.views.set(number, done);
    return done;
  }

  async list(filter: ListFilter = {}): Promise<ExecutionPage> {
    this.filters.push(filter);
    return { items: [...this.views.values()].filter((v) => !filter.state || v.state === filter.state) };
  }

  async get(number: number): Promise<ExecutionView> {
    const view = this.views.get(number);
    if (!view) {
      throw new ExecutionNotFoundError(number);
    }
    return view;
  }

  async abort(number: number): Promise<ExecutionView> {
    return this.signal('abort', number);
  }

  async wake(number: number): Promise<ExecutionView> {
    return this.signal('wake', number);
  }

  async delay(number: number, ms: number): Promise<ExecutionView> {
    return this.signal('delay', number, ms);
  }

  async pause(number: number): Promise<ExecutionView> {
    return this.signal('pause', number);
  }

  async resume(number: number): Promise<ExecutionView> {
    return this.signal('resume', number);
  }

  private async signal(op: Signalled['op'], number: number, ms?: number): Promise<ExecutionView> {
    const view = await this.get(number);
    if (['completed', 'failed', 'aborted'].includes(view.state)) {
      throw new ExecutionFinishedError(number, view.state);
    }
    this.signals.push(ms === undefined ? { op, number } : { op, number, ms });
    return view;
  }
}
