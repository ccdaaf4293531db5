/**
 * 4D's process commands over HTTP: PAUSE PROCESS and RESUME PROCESS on an execution, and
 * /v1/processes: Process activity, Process info, Process state and Process number.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { ExecutionNotFoundError } from '../errors.js';
import type { Access } from '../node-state.js';
import { withRedisTimeout } from '../redis/errors.js';
import type { Processes } from '../types.js';
import type { ExecutionsApi } from './executions.js';
import { errors, ok } from './schemas/common.js';
import { ExecutionNumberParams, ExecutionViewSchema } from './schemas/executions.js';
import {
  ProcessActivitySchema,
  ProcessDetailsSchema,
  ProcessNameParams,
  ProcessNumberSchema,
  ProcessStateSchema,
} from './schemas/processes.js';

/** What the process routes read. */
export type ProcessReads = Pick<Processes, 'number' | 'state' | 'info' | 'activity'>;

/** What the process routes need of the node. */
export interface ProcessesRouteDeps {
  /** As the execution routes have it (./executions.ts): pause and resume go through it. */
  executions(access: Access): ExecutionsApi;
  /** ctx.processes' reads, cluster-wide. Throws NotReadyError when the node does not serve them now. */
  processes(): ProcessReads;
  readonly redisTimeoutMs: number;
}

/** The process routes, as a fastify plugin. */
export const processRoutes: FastifyPluginAsyncZod<ProcessesRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;

  app.post(
    '/executions/:number/pause',
    {
      schema: {
        operationId: 'pauseExecution',
        summary:
          'PAUSE PROCESS: a running execution stops at its next ctx.checkpoint or ctx.delay; one not started does not start, until resumed.',
        description: 'Pausing a paused execution changes nothing.',
        params: ExecutionNumberParams,
        response: { 202: ok('Paused.', ExecutionViewSchema), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const view = await withRedisTimeout(deps.executions('read').pause(request.params.number), timeout);
      return reply.status(202).send(view);
    },
  );

  app.post(
    '/executions/:number/resume',
    {
      schema: {
        operationId: 'resumeExecution',
        summary:
          'RESUME PROCESS: a paused execution goes on (a ctx.delay it was in ends now; one not started goes back to the queue or its start time).',
        description:
          'As in 4D, resuming an execution that is not paused wakes it when it is delayed (in ctx.delay, or a delayed start) and changes nothing else.',
        params: ExecutionNumberParams,
        response: { 202: ok('Resumed.', ExecutionViewSchema), ...errors(400, 401, 404, 409) },
      },
    },
    async (request, reply) => {
      const view = await withRedisTimeout(deps.executions('read').resume(request.params.number), timeout);
      return reply.status(202).send(view);
    },
  );

  app.get(
    '/processes',
    {
      schema: {
        operationId: 'processActivity',
        summary: 'Process activity: the live executions of the cluster with their 4D state codes.',
        response: { 200: ok('Active, then delayed, then waiting.', ProcessActivitySchema), ...errors(401) },
      },
    },
    async () => ({ items: await withRedisTimeout(deps.processes().activity(), timeout) }),
  );

  app.get(
    '/processes/by-name/:name',
    {
      schema: {
        operationId: 'processNumber',
        summary: 'Process number: the live execution with that process name, or 0.',
        params: ProcessNameParams,
        response: { 200: ok('Its number (0: none).', ProcessNumberSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const { name } = request.params;
      return { name, number: await withRedisTimeout(deps.processes().number(name), timeout) };
    },
  );

  app.get(
    '/processes/:number',
    {
      schema: {
        operationId: 'processInfo',
        summary: 'Process info: one execution with its 4D state code.',
        params: ExecutionNumberParams,
        response: { 200: ok('Its Process info.', ProcessDetailsSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => {
      const { number } = request.params;
      const info = await withRedisTimeout(deps.processes().info(number), timeout);
      if (!info) {
        throw new ExecutionNotFoundError(number);
      }
      return info;
    },
  );

  app.get(
    '/processes/:number/state',
    {
      schema: {
        operationId: 'processState',
        summary: 'Process state: the 4D state code of an execution (-100 when finished or missing).',
        params: ExecutionNumberParams,
        response: { 200: ok('Its code.', ProcessStateSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const { number } = request.params;
      return { number, code: await withRedisTimeout(deps.processes().state(number), timeout) };
    },
  );
};
