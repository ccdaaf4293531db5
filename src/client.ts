/** A typed client for a node's HTTP API; the CLI is built on it. */
import { SprocdError } from './errors.js';
import { readEventStream, type EventStreamOptions, type StreamEvent } from './events/sse-reader.js';
import type { ExecuteOptions, ExecutionState, ExecutionView, JsonValue, SessionInfo } from './types.js';

/**
 * An error answer from the API, or no answer at all: `code` is what the server sent (an ErrorCode
 * of this version, or another version's), `UNREACHABLE`, or `HTTP_<status>`.
 */
export class ApiError extends SprocdError<string> {
  constructor(
    code: string,
    message: string,
    readonly status: number,
    details?: unknown,
  ) {
    super(code, message, { details });
  }
}

/** Filters of {@link SprocdClient.events}: each a value or a list. */
export interface EventQuery {
  /** Event types or families (`execution`, `backup`). */
  type?: string | readonly string[];
  procedure?: string | readonly string[];
  number?: number | readonly number[];
}

/** Options of {@link SprocdClient}. */
export interface ClientOptions {
  /** @defaultValue process.env.SPROCD_URL ?? "http://127.0.0.1:8080" */
  url?: string;
  /** @defaultValue process.env.SPROCD_TOKEN */
  token?: string;
}

/** Talks to one node over HTTP. */
export class SprocdClient {
  readonly url: string;
  private readonly token: string | undefined;

  constructor(options: ClientOptions = {}) {
    this.url = (options.url ?? process.env.SPROCD_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
    this.token = options.token ?? process.env.SPROCD_TOKEN;
  }

  /** Execute on server. With `wait`, answers when the execution finishes or the wait runs out. */
  execute(
    procedure: string,
    params?: unknown,
    options: ExecuteOptions & { wait?: number } = {},
  ): Promise<ExecutionView & { existing?: boolean }> {
    return this.request('POST', '/v1/executions', { procedure, params, ...options });
  }

  get(number: number): Promise<ExecutionView> {
    return this.request('GET', `/v1/executions/${number}`);
  }

  async list(
    filter: { state?: ExecutionState; name?: string; procedure?: string; limit?: number } = {},
  ): Promise<ExecutionView[]> {
    const query = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) {
      if (v !== undefined) {
        query.set(k, String(v));
      }
    }
    const qs = query.toString();
    return (await this.request<{ items: ExecutionView[] }>('GET', `/v1/executions${qs ? `?${qs}` : ''}`))
      .items;
  }

  abort(number: number): Promise<ExecutionView> {
    return this.request('POST', `/v1/executions/${number}/abort`);
  }

  wake(number: number): Promise<ExecutionView> {
    return this.request('POST', `/v1/executions/${number}/wake`);
  }

  async procedures(): Promise<{ name: string; params?: unknown }[]> {
    return (await this.request<{ items: { name: string; params?: unknown }[] }>('GET', '/v1/procedures'))
      .items;
  }

  session(): Promise<{ id: string; info: SessionInfo; privileges: string[] }> {
    return this.request('GET', '/v1/session');
  }

  storage(key?: string): Promise<JsonValue> {
    return this.request(
      'GET',
      key === undefined ? '/v1/session/storage' : `/v1/session/storage/${encodeURIComponent(key)}`,
    );
  }

  async nodes(): Promise<unknown[]> {
    return (await this.request<{ items: unknown[] }>('GET', '/v1/nodes')).items;
  }

  backup(): Promise<Record<string, unknown>> {
    return this.request('POST', '/v1/backups');
  }

  backups(): Promise<Record<string, unknown>> {
    return this.request('GET', '/v1/backups');
  }

  restore(bytes: Uint8Array): Promise<Record<string, unknown>> {
    return this.request('POST', '/v1/restore', bytes);
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
        error: (code, message, status, details) => new ApiError(code, message, status, details),
      },
      options,
    );
  }

  /** Sends one request; throws ApiError with the server's code and message, or UNREACHABLE. */
  async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = {};
    if (this.token) {
      headers.authorization = `Bearer ${this.token}`;
    }
    let payload: string | Uint8Array | undefined;
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream';
      payload = body;
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, { method, headers, body: payload });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message;
      throw new ApiError(
        'UNREACHABLE',
        `cannot reach sprocd at ${this.url} (${cause}); is it running? (SPROCD_URL)`,
        0,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = text;
    }
    if (!response.ok) {
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)
        ?.error;
      throw new ApiError(
        error?.code ?? `HTTP_${response.status}`,
        error?.message ?? `HTTP ${response.status}: ${text.slice(0, 200)}`,
        response.status,
        error?.details,
      );
    }
    return parsed as T;
  }
}
