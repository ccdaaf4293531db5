/**
 * SprocdClient: one method per route of a node's HTTP API, typed from the API's own schemas, and
 * `execute` typed from a procedure's `defineProcedure` when the caller names its type.
 * The file is long because it has one method per route.
 */
import type { ErrorCode } from '../errors.js';
import { readEventStream, type EventStreamOptions, type StreamEvent } from '../events/sse-reader.js';
import type { JsonValue } from '../types.js';
import { SprocdApiError, type ApiErrorCode } from './errors.js';
import type {
  AuditPage,
  AuditQuery,
  BackupListQuery,
  BackupRecord,
  BackupStatus,
  BulkRequest,
  BulkResult,
  Execution,
  ExecutionListQuery,
  ExecutionOf,
  ExecutionPage,
  ExecuteAnswer,
  ExecuteArgs,
  ExecuteBatchItem,
  HealthAnswer,
  LogLine,
  NodeInfo,
  ProcedureFor,
  ProcedureInfo,
  ProcessInfo,
  ProcessNumberAnswer,
  ProcessStateAnswer,
  SemaphoreInfo,
  SignalInfo,
  SignalTriggerAnswer,
  ReadyAnswer,
  RestoreSummary,
  ScheduleInfo,
  SessionAnswer,
  Stats,
  StatsQuery,
  StorageEntry,
  StorageSnapshot,
  StorageWrite,
  SystemEvent,
  SystemEventsQuery,
  Timeline,
  WorkerCallAnswer,
  WorkerInfo,
  WorkerKillAnswer,
} from './types.js';

/** Filters of {@link SprocdClient.events}: each a value or a list. */
export interface EventQuery {
  /** Event types or families (`execution`, `backup`, `restore`). */
  type?: string | readonly string[];
  procedure?: string | readonly string[];
  number?: number | readonly number[];
  /**
   * Execution events as one `execution.digest` event at most every this many ms (100-60000): for a
   * client that only reloads what it shows when executions change.
   */
  digest?: number;
}

/** Options of {@link SprocdClient}. */
export interface ClientOptions {
  /** @defaultValue process.env.SPROCD_URL ?? "http://127.0.0.1:8080" */
  url?: string;
  /** @defaultValue process.env.SPROCD_TOKEN */
  token?: string;
  /** The fetch to send requests with (a proxy agent, a test's checks). @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

/** A request of {@link SprocdClient.request}. */
interface RequestOptions {
  /** JSON (any value) or raw bytes (sent as application/octet-stream). */
  body?: unknown;
  /** Statuses besides 2xx whose body is an answer, not an error (/readyz's 503). */
  accept?: readonly number[];
}

/**
 * Talks to one node over HTTP. `Procedures` maps procedure names to their types, so that
 * `execute('hello', params)` checks the params and types the result:
 *
 * ```ts
 * type Procedures = { hello: typeof import('./jobs/hello.js').default };
 * const client = new SprocdClient<Procedures>({ url, token });
 * const run = await client.execute('hello', { who: 'world' }, { wait: 5000 });
 * ```
 *
 * or one call at a time: `client.execute<typeof hello>('hello', { who: 'world' })`.
 * Errors are {@link SprocdApiError}s whose `code` is the API's.
 */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type -- no procedure known by default
export class SprocdClient<Procedures extends object = {}> {
  /** The node's base URL, without a trailing slash. */
  readonly url: string;
  private readonly token: string | undefined;
  private readonly fetch: typeof fetch;

  constructor(options: ClientOptions = {}) {
    this.url = (options.url ?? process.env.SPROCD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.token = options.token ?? process.env.SPROCD_TOKEN;
    this.fetch = options.fetch ?? ((input, init) => fetch(input, init));
  }

  /**
   * Execute on server (POST /v1/executions): queues `procedure` with `params`. With `wait` (ms) it
   * answers when the execution finished or the wait ran out; `existing` is set when `unique` found
   * a live execution of that name.
   */
  execute<T = never, N extends string = string>(
    procedure: N,
    ...[params, options]: ExecuteArgs<ProcedureFor<Procedures, N, T>>
  ): Promise<ExecutionOf<ProcedureFor<Procedures, N, T>>> {
    return this.request('POST', '/v1/executions', { body: { procedure, params, ...options } });
  }

  /**
   * Execute on server for a batch of 1 to 1,000 executions in one request (POST /v1/executions with
   * `{ executions }`): all queued or none (a bad item is a 400 whose `details.index` names it).
   * Answers the executions in the order asked, `existing` where `unique` found a live one.
   */
  async executeBatch(executions: readonly ExecuteBatchItem<Procedures>[]): Promise<ExecuteAnswer[]> {
    const answer = await this.request<{ executions: ExecuteAnswer[] }>('POST', '/v1/executions', {
      body: { executions },
    });
    return answer.executions;
  }

  /** One execution (GET /v1/executions/{number}). */
  get(number: number): Promise<Execution> {
    return this.request('GET', `/v1/executions/${number}`);
  }

  /** Executions, newest first: the items of {@link SprocdClient.listPage}. */
  async list(query: ExecutionListQuery = {}): Promise<Execution[]> {
    return (await this.listPage(query)).items;
  }

  /** A page of executions (GET /v1/executions), with `nextCursor` when there are more. */
  listPage(query: ExecutionListQuery = {}): Promise<ExecutionPage> {
    return this.request('GET', `/v1/executions${queryString(query)}`);
  }

  /** Aborts an execution wherever it runs (POST /v1/executions/{number}/abort). */
  abort(number: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/abort`);
  }

  /** Ends an execution's current ctx.delay, or its start delay, early (POST /v1/executions/{number}/wake). */
  wake(number: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/wake`);
  }

  /**
   * DELAY PROCESS: the execution's current ctx.delay, or its delayed start, ends `ms` from now instead
   * (POST /v1/executions/{number}/delay).
   */
  delay(number: number, ms: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/delay`, { body: { ms } });
  }

  /**
   * PAUSE PROCESS: a running execution stops at its next ctx.checkpoint or ctx.delay, one not started
   * does not start, until resumed (POST /v1/executions/{number}/pause).
   */
  pause(number: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/pause`);
  }

  /**
   * RESUME PROCESS: a paused execution goes on; one that is not paused is woken when delayed
   * (POST /v1/executions/{number}/resume).
   */
  resume(number: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/resume`);
  }

  /** Process activity: the live executions of the cluster with their 4D state codes (GET /v1/processes). */
  async processes(): Promise<ProcessInfo[]> {
    return (await this.request<{ items: ProcessInfo[] }>('GET', '/v1/processes')).items;
  }

  /** Process info of an execution, with its 4D state code (GET /v1/processes/{number}). */
  processInfo(number: number): Promise<ProcessInfo> {
    return this.request('GET', `/v1/processes/${number}`);
  }

  /** Process state: the 4D state code of an execution, -100 when finished or missing (GET /v1/processes/{number}/state). */
  async processState(number: number): Promise<ProcessStateAnswer['code']> {
    return (await this.request<ProcessStateAnswer>('GET', `/v1/processes/${number}/state`)).code;
  }

  /** A signal (New signal) by its id: whether it was triggered, and its result (GET /v1/signals/{id}). */
  signal(id: string): Promise<SignalInfo> {
    return this.request('GET', `/v1/signals/${encodeURIComponent(id)}`);
  }

  /**
   * Triggers a signal: every execution waiting on it wakes with `result` (POST /v1/signals/{id}/trigger).
   * The first trigger wins; `triggered` is false when it had been triggered already.
   */
  triggerSignal(id: string, result: JsonValue = null): Promise<SignalTriggerAnswer> {
    return this.request('POST', `/v1/signals/${encodeURIComponent(id)}/trigger`, { body: { result } });
  }

  /** Test semaphore: whether an execution holds it now (GET /v1/semaphores/{name}). */
  async testSemaphore(name: string): Promise<boolean> {
    return (await this.request<SemaphoreInfo>('GET', `/v1/semaphores/${encodeURIComponent(name)}`)).held;
  }

  /** Process number: the live execution with that process name, or 0 (GET /v1/processes/by-name/{name}). */
  async processNumber(name: string): Promise<number> {
    const path = `/v1/processes/by-name/${encodeURIComponent(name)}`;
    return (await this.request<ProcessNumberAnswer>('GET', path)).number;
  }

  /**
   * Retries a failed or aborted execution: a new one with the same procedure, params and name
   * (POST /v1/executions/{number}/retry).
   */
  retry(number: number): Promise<Execution> {
    return this.request('POST', `/v1/executions/${number}/retry`);
  }

  /** Removes a finished execution (DELETE /v1/executions/{number}). */
  async remove(number: number): Promise<void> {
    await this.request('DELETE', `/v1/executions/${number}`);
  }

  /** Aborts, retries or removes every execution a filter matches; `dryRun` only counts (POST /v1/executions/bulk). */
  bulk(request: BulkRequest): Promise<BulkResult> {
    return this.request('POST', '/v1/executions/bulk', { body: request });
  }

  /** An execution's life, oldest first (GET /v1/executions/{number}/timeline). */
  timeline(number: number): Promise<Timeline> {
    return this.request('GET', `/v1/executions/${number}/timeline`);
  }

  /** The lines an execution wrote through ctx.log, oldest first, while kept (GET /v1/executions/{number}/logs). */
  async logs(number: number): Promise<LogLine[]> {
    return (await this.request<{ items: LogLine[] }>('GET', `/v1/executions/${number}/logs`)).items;
  }

  /** The workers of the cluster, with their node, pending messages and current message (GET /v1/workers). */
  async workers(): Promise<WorkerInfo[]> {
    return (await this.request<{ items: WorkerInfo[] }>('GET', '/v1/workers')).items;
  }

  /**
   * CALL WORKER: queues `procedure` with `params` for worker `name`, created by its first call
   * (POST /v1/workers/{name}/calls).
   */
  callWorker(name: string, procedure: string, params?: unknown): Promise<WorkerCallAnswer> {
    return this.request('POST', `/v1/workers/${encodeURIComponent(name)}/calls`, {
      body: params === undefined ? { procedure } : { procedure, params },
    });
  }

  /** KILL WORKER: drops its pending messages; it ends once its current one is done (DELETE /v1/workers/{name}). */
  killWorker(name: string): Promise<WorkerKillAnswer> {
    return this.request('DELETE', `/v1/workers/${encodeURIComponent(name)}`);
  }

  /** The automatic backup's and the procedures' schedules: next ticks, last run, missed ticks (GET /v1/schedules). */
  async schedules(): Promise<ScheduleInfo[]> {
    return (await this.request<{ items: ScheduleInfo[] }>('GET', '/v1/schedules')).items;
  }

  /** The audit trail, newest first (GET /v1/audit; the admin scope). */
  audit(query: AuditQuery = {}): Promise<AuditPage> {
    return this.request('GET', `/v1/audit${queryString(query)}`);
  }

  /** The procedures of jobs/ with their params' JSON Schema (GET /v1/procedures). */
  async procedures(): Promise<ProcedureInfo[]> {
    return (await this.request<{ items: ProcedureInfo[] }>('GET', '/v1/procedures')).items;
  }

  /** The stored-procedure session (GET /v1/session). */
  session(): Promise<SessionAnswer> {
    return this.request('GET', '/v1/session');
  }

  /** Every storage entry, or the entry `key` (GET /v1/session/storage[/{key}]). */
  storage(): Promise<StorageSnapshot>;
  storage<T = JsonValue>(key: string): Promise<T>;
  storage(key?: string): Promise<StorageSnapshot | JsonValue>;
  storage(key?: string): Promise<unknown> {
    return this.request(
      'GET',
      key === undefined ? '/v1/session/storage' : `/v1/session/storage/${encodeURIComponent(key)}`,
    );
  }

  /** Each storage entry's size, and each lock's holder, lease and waiters (GET /v1/session/entries). */
  async storageEntries(): Promise<StorageEntry[]> {
    return (await this.request<{ items: StorageEntry[] }>('GET', '/v1/session/entries')).items;
  }

  /**
   * Replaces the storage entry `key` through `use`, locked and fenced like any writer (PUT
   * /v1/session/storage/{key}). With `expect`, writes only when the entry is that (null: none),
   * else STORAGE_ENTRY_CHANGED (409).
   */
  writeStorage(
    key: string,
    value: Record<string, JsonValue>,
    options: { expect?: Record<string, JsonValue> | null } = {},
  ): Promise<StorageWrite> {
    return this.request('PUT', `/v1/session/storage/${encodeURIComponent(key)}`, {
      body: { value, ...options },
    });
  }

  /** Queue depth now, executions ended and their run time per 10 s (GET /v1/stats). */
  stats(query: StatsQuery = {}): Promise<Stats> {
    return this.request('GET', `/v1/stats${queryString(query)}`);
  }

  /** The newest system events of the cluster (GET /v1/system-events). */
  async systemEvents(query: SystemEventsQuery = {}): Promise<SystemEvent[]> {
    return (await this.request<{ items: SystemEvent[] }>('GET', `/v1/system-events${queryString(query)}`))
      .items;
  }

  /** The live nodes (GET /v1/nodes). */
  async nodes(): Promise<NodeInfo[]> {
    return (await this.request<{ items: NodeInfo[] }>('GET', '/v1/nodes')).items;
  }

  /** Runs a backup on the node; resolves with its record when it has ended (POST /v1/backups). */
  backup(): Promise<BackupRecord> {
    return this.request('POST', '/v1/backups');
  }

  /** The backup history, the running backup, the automatic-backup state (GET /v1/backups). */
  backups(query: BackupListQuery = {}): Promise<BackupStatus> {
    return this.request('GET', `/v1/backups${queryString(query)}`);
  }

  /**
   * Restores a backup file's bytes (POST /v1/restore). `allowUnsigned`: restore a file the node
   * cannot verify (unsigned, another key, format 1).
   */
  restore(bytes: Uint8Array, options: { allowUnsigned?: boolean } = {}): Promise<RestoreSummary> {
    const qs = options.allowUnsigned ? '?allowUnsigned=true' : '';
    return this.request('POST', `/v1/restore${qs}`, { body: bytes });
  }

  /** The bytes of a backup's file, from the node that wrote it (GET /v1/backups/{number}/file). */
  backupFile(number: number): Promise<Uint8Array> {
    return this.request('GET', `/v1/backups/${number}/file`);
  }

  /** Whether the process is alive (GET /healthz; no token). */
  health(): Promise<HealthAnswer> {
    return this.request('GET', '/healthz');
  }

  /** Whether the node takes work, and why not (GET /readyz; no token). */
  ready(): Promise<ReadyAnswer> {
    return this.request('GET', '/readyz', { accept: [503] });
  }

  /** The Prometheus metrics, as text (GET /metrics). */
  metrics(): Promise<string> {
    return this.request('GET', '/metrics');
  }

  /** The node's OpenAPI 3.1 document (GET /openapi.json). */
  openapi(): Promise<Record<string, unknown>> {
    return this.request('GET', '/openapi.json');
  }

  /**
   * The node's events (GET /v1/events) as they come: `for await (const e of client.events({ number: 12 }))`.
   * Reconnects and resumes by itself; ends when `options.signal` fires or the loop breaks.
   */
  events(filter: EventQuery = {}, options: EventStreamOptions = {}): AsyncGenerator<StreamEvent> {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(filter)) {
      for (const v of [value as unknown].flat()) {
        if (v !== undefined) {
          query.append(name, String(v));
        }
      }
    }
    const qs = query.toString();
    return readEventStream(
      {
        url: `${this.url}/v1/events${qs ? `?${qs}` : ''}`,
        token: this.token,
        error: (code, message, status, details) => new SprocdApiError(asCode(code), message, status, details),
      },
      options,
    );
  }

  /**
   * Sends one request and parses the answer (JSON, or text for other types). Throws
   * {@link SprocdApiError}: the node's error answer, UNREACHABLE, or BAD_RESPONSE.
   */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) {
      headers.authorization = `Bearer ${this.token}`;
    }
    let payload: string | Uint8Array | undefined;
    if (options.body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = options.body;
    } else if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(options.body);
    }
    let response: Response;
    try {
      response = await this.fetch(`${this.url}${path}`, { method, headers, body: payload });
    } catch (err) {
      // fetch rejects with a TypeError when no answer came; anything else is not ours to rename.
      if (!(err instanceof TypeError)) {
        throw err;
      }
      const cause = causeOf(err);
      throw new SprocdApiError(
        'UNREACHABLE',
        `cannot reach sprocd at ${this.url} (${cause}); is it running? (SPROCD_URL)`,
        0,
      );
    }
    const type = response.headers.get('content-type') ?? '';
    if (response.ok && type.startsWith('application/octet-stream')) {
      return new Uint8Array(await response.arrayBuffer()) as T;
    }
    const text = await response.text();
    const json = type.includes('json');
    let parsed: unknown = text;
    if (json && text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new SprocdApiError(
          'BAD_RESPONSE',
          `${method} ${path}: the answer is not JSON`,
          response.status,
        );
      }
    } else if (text === '') {
      parsed = undefined;
    }
    if (!response.ok && !options.accept?.includes(response.status)) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)
        ?.error;
      throw new SprocdApiError(
        error?.code ? asCode(error.code) : 'BAD_RESPONSE',
        error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`,
        response.status,
        error?.details,
      );
    }
    return parsed as T;
  }
}

/** Why fetch got no answer: the system's code (ECONNREFUSED, ENOTFOUND, ...) when it says one. */
function causeOf(err: TypeError): string {
  const cause = err.cause as { code?: string; errors?: { code?: string }[]; message?: string } | undefined;
  return cause?.code ?? cause?.errors?.find((e) => e.code)?.code ?? cause?.message ?? err.message;
}

/** A code as sent; `HTTP_<status>` (no error shape in the answer) is the client's BAD_RESPONSE. */
function asCode(code: string): ApiErrorCode {
  return (code.startsWith('HTTP_') ? 'BAD_RESPONSE' : code) as ErrorCode;
}

/** `?a=1&b=x` of the defined values of `query`, or "". */
function queryString(query: Record<string, unknown>): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined) {
      params.set(key, String(value));
    }
  }
  const qs = params.toString();
  return qs ? `?${qs}` : '';
}
