/**
 * One execution's log lines, from whichever node ran it: what its procedure wrote through ctx.log,
 * between sprocd's start and end lines (src/procedures/execution-logs.ts keeps them in Redis).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ExecutionLogLine } from '../procedures/execution-logs.js';
import { withRedisTimeout } from '../redis/errors.js';
import { errors, ok } from './schemas/common.js';
import { ExecutionLogsSchema } from './schemas/execution-logs.js';
import { ExecutionNumberParams } from './schemas/executions.js';

/** What the log route needs of the node. */
export interface ExecutionLogsRouteDeps {
  /**
   * The kept lines of execution `number`, oldest first; throws ExecutionNotFoundError when it has
   * none and does not exist, NotReadyError before Redis is set up.
   */
  executionLogs(number: number): Promise<ExecutionLogLine[]>;
  readonly redisTimeoutMs: number;
}

/** The log route, as a fastify plugin. */
export const executionLogRoutes: FastifyPluginAsyncZod<ExecutionLogsRouteDeps> = async (app, deps) => {
  app.get(
    '/executions/:number/logs',
    {
      schema: {
        operationId: 'executionLogs',
        summary: "An execution's log lines (ctx.log), kept for a while whichever node ran it.",
        description:
          "The lines its procedure wrote through ctx.log at a level its node logs, framed by sprocd's " +
          '"execution started" and "execution ended" lines; empty when it wrote none (or they expired).',
        params: ExecutionNumberParams,
        response: { 200: ok('Oldest first.', ExecutionLogsSchema), ...errors(400, 401, 404) },
      },
    },
    async (request) => ({
      items: await withRedisTimeout(deps.executionLogs(request.params.number), deps.redisTimeoutMs),
    }),
  );
};
