/** GET /metrics for Prometheus (app.ts puts it behind the bearer token, as /v1). */
import type { FastifyPluginAsync } from 'fastify';

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
export const metricsRoutes: FastifyPluginAsync<MetricsRouteDeps> = async (app, deps) => {
  app.get('/metrics', async (_request, reply) => {
    const body = await deps.metrics.metrics();
    return reply.type(deps.metrics.contentType).send(body);
  });
};
