/** The console's overview: GET /v1/stats (queue depth and the recent history) and GET /v1/system-events. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { SystemEvent } from '../lifecycle/system-events.js';
import { withRedisTimeout } from '../redis/errors.js';
import { STEP_MS, type StatsPoint } from '../stats/series.js';
import type { ExecutionState } from '../types.js';
import { errors, ok } from './schemas/common.js';
import {
  StatsQuerySchema,
  StatsSchema,
  SystemEventListSchema,
  SystemEventsQuerySchema,
} from './schemas/stats.js';

/** Where the overview's figures come from. */
export interface StatsSource {
  /** Executions in the queue now, by state. */
  counts(): Promise<Record<ExecutionState, number>>;
  /** The buckets of the last `minutes`, oldest first. */
  series(minutes: number): Promise<StatsPoint[]>;
  /** The newest system events, newest first. */
  systemEvents(limit: number): Promise<SystemEvent[]>;
}

/** What the overview routes need of the node. */
export interface StatsRouteDeps {
  /** The figures; throws NotReadyError until the node has Redis. */
  stats(): StatsSource;
  readonly redisTimeoutMs: number;
}

/** The overview routes, as a fastify plugin. */
export const statsRoutes: FastifyPluginAsyncZod<StatsRouteDeps> = async (app, deps) => {
  app.get(
    '/stats',
    {
      schema: {
        operationId: 'stats',
        summary: 'Queue depth now, and executions ended and their run time per 10 s over the last hour.',
        querystring: StatsQuerySchema,
        response: { 200: ok('The figures, the same on every node.', StatsSchema), ...errors(400, 401) },
      },
    },
    async (request) => {
      const source = deps.stats();
      const [counts, series] = await withRedisTimeout(
        Promise.all([source.counts(), source.series(request.query.minutes ?? 60)]),
        deps.redisTimeoutMs,
      );
      return { counts, stepS: STEP_MS / 1000, series };
    },
  );

  app.get(
    '/system-events',
    {
      schema: {
        operationId: 'listSystemEvents',
        summary: 'The newest system events of the cluster (those onSystemEvent hooks get).',
        querystring: SystemEventsQuerySchema,
        response: { 200: ok('Newest first.', SystemEventListSchema), ...errors(400, 401) },
      },
    },
    async (request) => ({
      items: await withRedisTimeout(
        deps.stats().systemEvents(request.query.limit ?? 50),
        deps.redisTimeoutMs,
      ),
    }),
  );
};
