/**
 * The one table of which scope each route needs, and what the audit trail records of the routes that
 * change state. The API refuses to register a route behind the token that this table does not list
 * (src/api/auth.ts), and test/auth/route-scopes.test.ts checks every registered route against it, so
 * a new route cannot ship unguarded: add it here.
 */
import type { JsonValue } from '../types.js';
import type { AuditAction } from './audit.js';
import type { Scope } from './scopes.js';

/** What an audit description sees of a request and its answer. */
export interface AuditInput {
  readonly params: Record<string, unknown>;
  readonly query: Record<string, unknown>;
  /** The parsed JSON body (undefined for a streamed one). */
  readonly body: unknown;
  /** The JSON answer, when there is one (an error answer's is `{ error }`). */
  readonly answer: unknown;
}

/** A route's rule. */
export interface RouteRule {
  /** The scope a caller needs. */
  readonly scope: Scope;
  /** For a route that changes state: the action its audit entry names. */
  readonly audit?: AuditAction;
  /** What its audit entry records besides caller, action and status. */
  readonly describe?: (input: AuditInput) => Record<string, JsonValue>;
  /**
   * For `execute`: the procedure the request names (a batch: every one), checked against
   * `execute:PATTERN` scopes.
   */
  readonly procedure?: (body: unknown) => unknown;
}

/** Routes anyone may call, without a token: health, the OpenAPI document and docs, the console's files. */
export const PUBLIC_ROUTES: readonly RegExp[] = [
  /^\/healthz$/,
  /^\/readyz$/,
  /^\/openapi\.json$/,
  /^\/docs(?:\/.*)?$/,
  /^\/console(?:\/.*)?$/,
];

/** `value.key` when `value` is an object holding a JSON scalar there. */
function field(value: unknown, key: string): JsonValue | undefined {
  if (value === null || typeof value !== 'object') {
    return undefined;
  }
  const v = (value as Record<string, unknown>)[key];
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : undefined;
}

/** The fields of `pairs` whose value is defined. */
function defined(pairs: Record<string, JsonValue | undefined>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  for (const [k, v] of Object.entries(pairs)) {
    if (v !== undefined) {
      out[k] = v;
    }
  }
  return out;
}

/** The items of a batch body or answer (`{ executions: [...] }`), or undefined. */
function batchOf(value: unknown): unknown[] | undefined {
  const items =
    value !== null && typeof value === 'object' ? (value as { executions?: unknown }).executions : undefined;
  return Array.isArray(items) ? items : undefined;
}

const isNumber = (v: unknown): v is number => typeof v === 'number';
const isString = (v: unknown): v is string => typeof v === 'string';

/** An execution the route names by `:number`. */
const onExecution = ({ params, answer }: AuditInput) =>
  defined({ execution: field(params, 'number'), procedure: field(answer, 'procedure') });

const read: RouteRule = { scope: 'read' };

/** Every route behind the token, by `METHOD /path` as fastify registers it (HEAD follows GET). */
export const ROUTE_SCOPES: Readonly<Record<string, RouteRule>> = {
  'GET /metrics': read,

  // executions
  'POST /v1/executions': {
    scope: 'execute',
    audit: 'execute',
    procedure: (body) => batchOf(body)?.map((item) => field(item, 'procedure')) ?? field(body, 'procedure'),
    describe: ({ body, answer }) => {
      const batch = batchOf(body);
      if (batch) {
        // One entry for the batch: how many, which procedures, and the numbers' range.
        const numbers = (batchOf(answer) ?? []).map((view) => field(view, 'number')).filter(isNumber);
        const procedures = [...new Set(batch.map((item) => field(item, 'procedure')).filter(isString))];
        return defined({
          batch: batch.length,
          procedures: procedures.slice(0, 20),
          from: numbers.length > 0 ? Math.min(...numbers) : undefined,
          to: numbers.length > 0 ? Math.max(...numbers) : undefined,
        });
      }
      return defined({
        procedure: field(body, 'procedure'),
        name: field(body, 'name'),
        execution: field(answer, 'number'),
        existing: field(answer, 'existing'),
      });
    },
  },
  'GET /v1/executions': read,
  'GET /v1/executions/:number': read,
  'GET /v1/executions/:number/timeline': read,
  'GET /v1/executions/:number/logs': read,
  'POST /v1/executions/:number/abort': { scope: 'control', audit: 'abort', describe: onExecution },
  'POST /v1/executions/:number/wake': { scope: 'control', audit: 'wake', describe: onExecution },
  'POST /v1/executions/:number/delay': {
    scope: 'control',
    audit: 'delay',
    describe: ({ params, body }) => defined({ execution: field(params, 'number'), ms: field(body, 'ms') }),
  },
  'POST /v1/executions/:number/pause': { scope: 'control', audit: 'pause', describe: onExecution },
  'POST /v1/executions/:number/resume': { scope: 'control', audit: 'resume', describe: onExecution },
  'POST /v1/executions/:number/retry': {
    scope: 'control',
    audit: 'retry',
    describe: ({ params, answer }) =>
      defined({
        execution: field(params, 'number'),
        procedure: field(answer, 'procedure'),
        retry: field(answer, 'number'),
      }),
  },
  'DELETE /v1/executions/:number': { scope: 'control', audit: 'remove', describe: onExecution },
  'POST /v1/executions/bulk': {
    scope: 'control',
    audit: 'bulk',
    describe: ({ body, answer }) =>
      defined({
        bulk: field(body, 'action'),
        dryRun: field(body, 'dryRun'),
        matched: field(answer, 'matched'),
        done: field(answer, 'done'),
      }),
  },

  // workers (CALL WORKER, KILL WORKER)
  'GET /v1/workers': read,
  'POST /v1/workers/:name/calls': {
    scope: 'execute',
    audit: 'worker.call',
    procedure: (body) => field(body, 'procedure'),
    describe: ({ params, body, answer }) =>
      defined({
        worker: field(params, 'name'),
        procedure: field(body, 'procedure'),
        message: field(answer, 'id'),
      }),
  },
  'DELETE /v1/workers/:name': {
    scope: 'control',
    audit: 'worker.kill',
    describe: ({ params, answer }) =>
      defined({
        worker: field(params, 'name'),
        outcome: field(answer, 'outcome'),
        dropped: field(answer, 'dropped'),
      }),
  },
  // 4D's process commands (reads; pause and resume are above)
  // New signal and Semaphore from outside a procedure
  'GET /v1/signals/:id': read,
  'POST /v1/signals/:id/trigger': {
    scope: 'control',
    audit: 'signal.trigger',
    describe: ({ params, answer }) =>
      defined({ signal: field(params, 'id'), triggered: field(answer, 'triggered') }),
  },
  'GET /v1/semaphores/:name': read,
  'GET /v1/processes': read,
  'GET /v1/processes/by-name/:name': read,
  'GET /v1/processes/:number': read,
  'GET /v1/processes/:number/state': read,

  // procedures, the cluster, its history
  'GET /v1/procedures': read,
  'GET /v1/nodes': read,
  'GET /v1/events': read,
  'GET /v1/stats': read,
  'GET /v1/system-events': read,

  // the session
  'GET /v1/session': read,
  'GET /v1/session/storage': read,
  'GET /v1/session/storage/:key': read,
  'GET /v1/session/entries': read,
  'PUT /v1/session/storage/:key': {
    scope: 'storage:write',
    audit: 'storage.write',
    describe: ({ params, body, answer }) =>
      defined({
        key: field(params, 'key'),
        size: field(answer, 'size'),
        expected: body !== null && typeof body === 'object' && 'expect' in body,
      }),
  },

  // backups, restore, schedules, the audit trail
  'GET /v1/backups': read,
  'GET /v1/schedules': read,
  'GET /v1/backups/:number/file': { scope: 'admin' },
  'POST /v1/backups': {
    scope: 'admin',
    audit: 'backup',
    describe: ({ answer }) =>
      defined({
        backup: field(answer, 'number'),
        outcome: field(answer, 'outcome'),
        backupStatus: field(answer, 'status'),
      }),
  },
  'POST /v1/restore': {
    scope: 'admin',
    audit: 'restore',
    describe: ({ query, answer }) =>
      defined({
        allowUnsigned: field(query, 'allowUnsigned') === 'true' ? true : undefined,
        signature: field(answer, 'signature'),
        session: field(answer, 'session'),
        entries: field(answer, 'entries'),
        executions: field(answer, 'executions'),
      }),
  },
  'GET /v1/audit': { scope: 'admin' },
};

/** The rule of `method url` (HEAD as GET), or undefined when the table does not list it. */
export function ruleOf(method: string, url: string): RouteRule | undefined {
  const key = `${method === 'HEAD' ? 'GET' : method} ${url}`;
  return Object.hasOwn(ROUTE_SCOPES, key) ? ROUTE_SCOPES[key] : undefined;
}

/** Whether `url` is one of the {@link PUBLIC_ROUTES}. */
export function isPublicRoute(url: string): boolean {
  return PUBLIC_ROUTES.some((pattern) => pattern.test(url));
}
