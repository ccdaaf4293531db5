/** /v1/nodes: the live nodes of the cluster with their heartbeat. */
import type { FastifyPluginAsync } from 'fastify';
import type { NodeRecord } from '../lifecycle/heartbeat.js';
import { withRedisTimeout } from '../redis/errors.js';

/** What the node routes need of the node. */
export interface NodesRouteDeps {
  /** The live nodes, read from Redis. */
  liveNodes(): Promise<NodeRecord[]>;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
}

/** The node routes, as a fastify plugin. */
export const nodeRoutes: FastifyPluginAsync<NodesRouteDeps> = async (app, deps) => {
  app.get('/nodes', async () => ({
    items: await withRedisTimeout(deps.liveNodes(), deps.redisTimeoutMs),
  }));
};
