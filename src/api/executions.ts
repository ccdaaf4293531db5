/** /v1/executions: Execute on server, read, list, abort, wake. */
import type { FastifyPluginAsync } from 'fastify';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import type { Access } from '../node-state.js';
import { ExecuteOptionsSchema } from '../procedures/execute.js';
import { MAX_LIST_LIMIT, isFinal, type Executions } from '../procedures/executions.js';
import { withRedisTimeout } from '../redis/errors.js';

/** Longest `wait` a request may ask for. */
const MAX_WAIT_MS = 10 * 60 * 1000;

/** The part of the executions the routes use. */
export type ExecutionsApi = Pick<Executions, 'execute' | 'waitFor' | 'list' | 'get' | 'abort' | 'wake'>;

/** What the execution routes need of the node. */
export interface ExecutionsRouteDeps {
  /**
   * The executions for `access`: `work` to queue one, `read` to read, list, abort or wake. Throws
   * NotReadyError or StoppingError when the node does not serve that now.
   */
  executions(access: Access): ExecutionsApi;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
}

/** The body of POST /v1/executions: Execute on server's options, with the procedure, params and `wait`. */
const ExecuteBody = ExecuteOptionsSchema.extend({
  procedure: z.string(),
  params: z.unknown().optional(),
  wait: z.number().int().min(0).max(MAX_WAIT_MS).optional(),
});

const ListQuery = z.strictObject({
  state: z.enum(['waiting', 'delayed', 'active', 'completed', 'failed', 'aborted']).optional(),
  name: z.string().optional(),
  procedure: z.string().optional(),
  limit: z.coerce.number().int().min(1).max(MAX_LIST_LIMIT).optional(),
});

/** Parses `input` with `schema`, or throws a ValidationError with zod's issues ("Bad body: ..."). */
export function parseOr400<T>(schema: z.ZodType<T>, input: unknown, what: 'body' | 'query'): T {
  const parsed = schema.safeParse(input ?? (what === 'body' ? undefined : {}));
  if (!parsed.success) {
    throw ValidationError.fromZod(`Bad ${what}`, parsed.error);
  }
  return parsed.data;
}

/** Parses an execution number from the URL. */
function parseNumber(raw: string): number {
  if (!/^[1-9]\d{0,15}$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new ValidationError(`Execution numbers are positive integers; got ${JSON.stringify(raw)}.`);
  }
  return Number(raw);
}

/** The execution routes, as a fastify plugin. */
export const executionRoutes: FastifyPluginAsync<ExecutionsRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.post('/executions', async (request, reply) => {
    if (request.body === undefined || request.body === null) {
      throw new ValidationError('Send a JSON body such as {"procedure":"hello","params":{"who":"world"}}.');
    }
    const { procedure, params, wait, ...options } = parseOr400(ExecuteBody, request.body, 'body');
    const executions = deps.executions('work');
    const { execution, existing } = await withRedisTimeout(
      executions.execute(procedure, params, options),
      timeout,
    );
    let view = execution;
    if (wait && !isFinal(view.state)) {
      view = await withRedisTimeout(executions.waitFor(view.number, wait), wait + timeout);
    }
    const status = isFinal(view.state) && wait !== undefined ? 200 : existing ? 200 : 202;
    return reply.status(status).send(existing ? { ...view, existing: true } : view);
  });

  app.get('/executions', async (request) => {
    const query = parseOr400(ListQuery, request.query, 'query');
    const items = await withRedisTimeout(deps.executions('read').list(query), timeout);
    return { items };
  });

  app.get<{ Params: { number: string } }>('/executions/:number', async (request) => {
    const number = parseNumber(request.params.number);
    return withRedisTimeout(deps.executions('read').get(number), timeout);
  });

  app.post<{ Params: { number: string } }>('/executions/:number/abort', async (request, reply) => {
    const number = parseNumber(request.params.number);
    const view = await withRedisTimeout(deps.executions('read').abort(number), timeout);
    return reply.status(202).send(view);
  });

  app.post<{ Params: { number: string } }>('/executions/:number/wake', async (request, reply) => {
    const number = parseNumber(request.params.number);
    const view = await withRedisTimeout(deps.executions('read').wake(number), timeout);
    return reply.status(202).send(view);
  });
};
