/** /v1/workers: CALL WORKER, KILL WORKER and the workers of the cluster. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Access } from '../node-state.js';
import type { Workers } from '../procedures/workers/workers.js';
import { withRedisTimeout } from '../redis/errors.js';
import { errors, ok } from './schemas/common.js';
import {
  WorkerCallBodySchema,
  WorkerCallSchema,
  WorkerKillSchema,
  WorkerListSchema,
  WorkerNameParams,
} from './schemas/workers.js';

/** What the worker routes need of the node. */
export interface WorkersRouteDeps {
  /** The workers for `access`: `work` to call one, `read` to list or kill. */
  workers(access: Access): Pick<Workers, 'call' | 'kill' | 'list'>;
  readonly redisTimeoutMs: number;
}

/** The worker routes, as a fastify plugin. */
export const workerRoutes: FastifyPluginAsyncZod<WorkersRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.get(
    '/workers',
    {
      schema: {
        operationId: 'listWorkers',
        summary: 'The workers of the cluster: their node, pending messages and current message.',
        response: { 200: ok('By name, at most 1,000.', WorkerListSchema), ...errors(401) },
      },
    },
    async () => ({ items: await withRedisTimeout(deps.workers('read').list(), timeout) }),
  );

  app.post(
    '/workers/:name/calls',
    {
      schema: {
        operationId: 'callWorker',
        summary:
          'CALL WORKER: queue a message (a procedure and its params) for a worker, created by its first call.',
        description:
          'A worker runs its messages one at a time, in the order they were queued, on one node of the ' +
          'cluster at a time; a message whose node died runs again on another node.',
        params: WorkerNameParams,
        body: WorkerCallBodySchema,
        response: { 202: ok('Queued.', WorkerCallSchema), ...errors(400, 401, 404, 413, 415) },
      },
    },
    async (request, reply) => {
      const { procedure, params } = request.body;
      const answer = await withRedisTimeout(
        deps.workers('work').call(request.params.name, procedure, params),
        timeout,
      );
      return reply.status(202).send(answer);
    },
  );

  app.delete(
    '/workers/:name',
    {
      schema: {
        operationId: 'killWorker',
        summary: 'KILL WORKER: drop its pending messages; it ends once its current message is done.',
        params: WorkerNameParams,
        response: { 200: ok('Killed.', WorkerKillSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => withRedisTimeout(deps.workers('read').kill(request.params.name), timeout),
  );
};
