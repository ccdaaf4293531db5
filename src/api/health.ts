/** /healthz (the process is alive) and /readyz (it takes work): no token, answer from the start. */
import type { FastifyInstance } from 'fastify';
import type { SprocdNode } from '../node.js';

export function healthRoutes(app: FastifyInstance, node: SprocdNode): void {
  app.get('/healthz', async () => ({ status: 'ok', state: node.state, node: node.name }));
  app.get('/readyz', async (_request, reply) => {
    const timeout = new Promise<{ ready: false; reason: string }>((resolve) =>
      setTimeout(
        () => resolve({ ready: false, reason: 'redis unavailable' }),
        node.settings.redisTimeoutMs,
      ).unref(),
    );
    const { ready, reason } = await Promise.race([node.isReady(), timeout]);
    return reply
      .status(ready ? 200 : 503)
      .send(ready ? { status: 'ready' } : { status: 'not ready', reason });
  });
}
