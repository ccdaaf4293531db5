/** /v1/nodes: the live nodes of the cluster with their heartbeat. */
import type { FastifyInstance } from 'fastify';
import { liveNodes } from '../lifecycle/heartbeat.js';
import type { SprocdNode } from '../node.js';
import { withRedisTimeout } from '../redis/errors.js';

export function nodeRoutes(app: FastifyInstance, node: SprocdNode): void {
  app.get('/nodes', async () => ({
    items: await withRedisTimeout(
      liveNodes(node.redis, node.keys, node.settings.nodeTimeoutMs),
      node.settings.redisTimeoutMs,
    ),
  }));
}
