/** GET /metrics for Prometheus (app.ts puts it behind the bearer token, as /v1). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { errors, otherContent } from './schemas/common.js';

/** What the metrics route needs of the node (a prom-client Registry fits). */
export interface MetricsRouteDeps {
  readonly metrics: {
    /** The exposition format's content type. */
    readonly contentType: string;
    /** The metrics in that format. */
    metrics(): Promise<string>;
  };
}

/** The metrics route, as a fastify plugin. */
export const metricsRoutes: FastifyPluginAsyncZod<MetricsRouteDeps> = async (app, deps) => {
  const schema = {
    operationId: 'metrics',
    summary: 'Prometheus metrics (text exposition format).',
    response: {
      200: otherContent('The metrics.', 'text/plain; version=0.0.4'),
      ...errors(401),
    },
  };
  app.get('/metrics', { schema }, async (_request, reply) => {
    const body = await deps.metrics.metrics();
    return reply.type(deps.metrics.contentType).send(body);
  });
};
