/** /v1/nodes: the live nodes of the cluster with their heartbeat. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { NodeRecord } from '../lifecycle/heartbeat.js';
import { withRedisTimeout } from '../redis/errors.js';
import { NodeListSchema } from './schemas/cluster.js';
import { errors, ok } from './schemas/common.js';

/** What the node routes need of the node. */
export interface NodesRouteDeps {
  /** The live nodes, read from Redis. */
  liveNodes(): Promise<NodeRecord[]>;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
}

/** The node routes, as a fastify plugin. */
export const nodeRoutes: FastifyPluginAsyncZod<NodesRouteDeps> = async (app, deps) => {
  const schema = {
    operationId: 'listNodes',
    summary: 'The live nodes of the cluster, with their heartbeat.',
    response: { 200: ok('The live nodes.', NodeListSchema), ...errors(401) },
  };
  app.get('/nodes', { schema }, async () => ({
    items: await withRedisTimeout(deps.liveNodes(), deps.redisTimeoutMs),
  }));
};
