/**
 * The console's actions on executions: retry, remove, the same (or abort) by filter, and one
 * execution's timeline. Abort and wake of one execution are in ./executions.ts.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Access } from '../node-state.js';
import type { ExecutionAdmin } from '../procedures/execution-admin.js';
import { withRedisTimeout } from '../redis/errors.js';
import { errors, ok } from './schemas/common.js';
import { BulkBodySchema, BulkResultSchema, TimelineSchema } from './schemas/execution-admin.js';
import { ExecutionNumberParams, ExecutionViewSchema } from './schemas/executions.js';

/** What the execution actions need of the node. */
export interface ExecutionAdminRouteDeps {
  /** The actions for `access` (`work` when they start executions). */
  executionAdmin(access: Access): Pick<ExecutionAdmin, 'retry' | 'remove' | 'bulk' | 'timeline'>;
  readonly redisTimeoutMs: number;
}

/** How long a bulk action may take (it goes through up to 10,000 executions). */
const BULK_TIMEOUT_MS = 120_000;

/** The execution actions, as a fastify plugin. */
export const executionAdminRoutes: FastifyPluginAsyncZod<ExecutionAdminRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.post(
    '/executions/:number/retry',
    {
      schema: {
        operationId: 'retryExecution',
        summary: 'Retry a failed or aborted execution: a new one with the same procedure, params and name.',
        params: ExecutionNumberParams,
        response: {
          202: ok('The new execution (retryOf: this one).', ExecutionViewSchema),
          ...errors(400, 401, 404, 409),
        },
      },
    },
    async (request, reply) => {
      const view = await withRedisTimeout(deps.executionAdmin('work').retry(request.params.number), timeout);
      return reply.status(202).send(view);
    },
  );

  app.delete(
    '/executions/:number',
    {
      schema: {
        operationId: 'removeExecution',
        summary: 'Remove a finished execution.',
        params: ExecutionNumberParams,
        response: { 204: z.null().describe('Removed.'), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      await withRedisTimeout(deps.executionAdmin('read').remove(request.params.number), timeout);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/executions/bulk',
    {
      schema: {
        operationId: 'bulkExecutions',
        summary: 'Abort, retry or remove every execution a filter matches (dryRun: only count them).',
        description:
          'The action applies to the matching executions it can apply to: abort to unfinished ones, retry ' +
          'to failed or aborted ones, remove to finished ones; at most 10,000 at a time.',
        body: BulkBodySchema,
        response: { 200: ok('What was done, or would be.', BulkResultSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const { action, filter, dryRun } = request.body;
      const admin = deps.executionAdmin(action === 'retry' && !dryRun ? 'work' : 'read');
      return withRedisTimeout(admin.bulk(action, filter, dryRun), BULK_TIMEOUT_MS);
    },
  );

  app.get(
    '/executions/:number/timeline',
    {
      schema: {
        operationId: 'executionTimeline',
        summary: "An execution's life: queued, delayed, started, woken, retrying, recovered, its end.",
        params: ExecutionNumberParams,
        response: { 200: ok('Oldest first.', TimelineSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => withRedisTimeout(deps.executionAdmin('read').timeline(request.params.number), timeout),
  );
};
