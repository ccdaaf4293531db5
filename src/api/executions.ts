/** /v1/executions: Execute on server, read, list, abort, wake. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Access } from '../node-state.js';
import { isFinal, type Executions } from '../procedures/executions.js';
import { withRedisTimeout } from '../redis/errors.js';
import type { WaitGate } from './limits.js';
import { errors, ok } from './schemas/common.js';
import {
  DelayBodySchema,
  ExecuteAnyBodySchema,
  ExecuteBatchResponseSchema,
  ExecuteResponseSchema,
  ExecutionListQuerySchema,
  ExecutionListSchema,
  ExecutionNumberParams,
  ExecutionViewSchema,
  isBatchBody,
} from './schemas/executions.js';

/** The part of the executions the routes use. */
export type ExecutionsApi = Pick<
  Executions,
  'execute' | 'executeBatch' | 'waitFor' | 'list' | 'get' | 'abort' | 'wake' | 'delay' | 'pause' | 'resume'
>;

/** What the execution routes need of the node. */
export interface ExecutionsRouteDeps {
  /**
   * The executions for `access`: `work` to queue one, `read` to read, list, abort or wake. Throws
   * NotReadyError or StoppingError when the node does not serve that now.
   */
  executions(access: Access): ExecutionsApi;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
  /** The node's cap on requests waiting for an execution (`wait`); none without it. */
  readonly waits?: WaitGate;
}

/** The execution routes, as a fastify plugin. */
export const executionRoutes: FastifyPluginAsyncZod<ExecutionsRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.post(
    '/executions',
    {
      schema: {
        operationId: 'execute',
        summary: 'Execute on server: queue an execution of a procedure.',
        description:
          '202 with the queued execution; 200 when `wait` saw it finish, or when `unique` found a live ' +
          'execution of that name (`existing: true`). The body has one variant per loaded procedure. ' +
          'A batch, `{ "executions": [ ... ] }` (1 to 1,000 items, each a single body without `wait`), ' +
          'is checked whole first (a bad item is 400 with its index in `details.index`, nothing queued), ' +
          'then queued in one round trip and answered 202 with `{ "executions": [ ... ] }` in the order ' +
          'asked. It counts against the rate limit as one request per 10 executions (rounded up).',
        body: ExecuteAnyBodySchema,
        response: {
          200: ok('It finished within `wait`, or `unique` found a live one.', ExecuteResponseSchema),
          202: ok(
            'Queued (a batch: every execution, in order).',
            z.union([ExecuteResponseSchema, ExecuteBatchResponseSchema]),
          ),
          ...errors(400, 401, 404, 413, 415),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (isBatchBody(body)) {
        const results = await withRedisTimeout(
          deps.executions('work').executeBatch(body.executions),
          timeout,
        );
        return reply.status(202).send({
          executions: results.map(({ execution, existing }) =>
            existing ? { ...execution, existing: true as const } : execution,
          ),
        });
      }
      const { procedure, params, wait, ...options } = body;
      const executions = deps.executions('work');
      // The place is taken before anything is queued: a refused request changed nothing.
      const leave = wait ? deps.waits?.enter() : undefined;
      try {
        const { execution, existing } = await withRedisTimeout(
          executions.execute(procedure, params, options),
          timeout,
        );
        let view = execution;
        if (wait && !isFinal(view.state)) {
          // A client that goes away ends its wait: nothing more is asked of Redis for it.
          const gone = new AbortController();
          const abandon = () => gone.abort();
          reply.raw.once('close', abandon);
          try {
            const ended = executions.waitFor(view.number, wait, gone.signal);
            view = (await withRedisTimeout(ended, wait + timeout)) ?? view;
          } finally {
            reply.raw.off('close', abandon);
          }
        }
        const status = isFinal(view.state) && wait !== undefined ? 200 : existing ? 200 : 202;
        return reply.status(status).send(existing ? { ...view, existing: true as const } : view);
      } finally {
        leave?.();
      }
    },
  );

  app.get(
    '/executions',
    {
      schema: {
        operationId: 'listExecutions',
        summary: 'List executions, newest first.',
        querystring: ExecutionListQuerySchema,
        response: { 200: ok('The executions.', ExecutionListSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      return withRedisTimeout(deps.executions('read').list(request.query), timeout);
    },
  );

  app.get(
    '/executions/:number',
    {
      schema: {
        operationId: 'getExecution',
        summary: 'One execution.',
        params: ExecutionNumberParams,
        response: { 200: ok('The execution.', ExecutionViewSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => withRedisTimeout(deps.executions('read').get(request.params.number), timeout),
  );

  app.post(
    '/executions/:number/abort',
    {
      schema: {
        operationId: 'abortExecution',
        summary: 'Abort an execution wherever it runs (a waiting or delayed one ends at once).',
        params: ExecutionNumberParams,
        response: { 202: ok('Abort requested.', ExecutionViewSchema), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const view = await withRedisTimeout(deps.executions('read').abort(request.params.number), timeout);
      return reply.status(202).send(view);
    },
  );

  app.post(
    '/executions/:number/wake',
    {
      schema: {
        operationId: 'wakeExecution',
        summary: "End an execution's current ctx.delay, or its start delay (it joins the queue), early.",
        params: ExecutionNumberParams,
        response: { 202: ok('Woken.', ExecutionViewSchema), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const view = await withRedisTimeout(deps.executions('read').wake(request.params.number), timeout);
      return reply.status(202).send(view);
    },
  );

  app.post(
    '/executions/:number/delay',
    {
      schema: {
        operationId: 'delayExecution',
        summary:
          "DELAY PROCESS: the execution's current ctx.delay, or its delayed start, ends `ms` from now instead (0: now).",
        params: ExecutionNumberParams,
        body: DelayBodySchema,
        response: { 202: ok('Delayed.', ExecutionViewSchema), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const { number } = request.params;
      const view = await withRedisTimeout(deps.executions('read').delay(number, request.body.ms), timeout);
      return reply.status(202).send(view);
    },
  );
};
