/** /v1/session: the stored-procedure session and its storage (read only). */
import type { FastifyInstance } from 'fastify';
import { SprocdError } from '../errors.js';
import type { SprocdNode } from '../node.js';
import { withRedisTimeout } from '../redis/errors.js';

export function sessionRoutes(app: FastifyInstance, node: SprocdNode): void {
  const timeout = node.settings.redisTimeoutMs;
  const service = () => {
    if (!node.sessionService) {
      throw new SprocdError('NOT_READY', 'The node is starting; retry shortly.');
    }
    return node.sessionService;
  };
  app.get('/session', async () => withRedisTimeout(service().describe(), timeout));
  app.get('/session/storage', async () => withRedisTimeout(service().session.storage.snapshot(), timeout));
  app.get<{ Params: { key: string } }>('/session/storage/:key', async (request) => {
    const value = await withRedisTimeout(service().session.storage.get(request.params.key), timeout);
    if (value === undefined) {
      throw new SprocdError('STORAGE_ENTRY_NOT_FOUND', `No storage entry "${request.params.key}".`, {
        details: { key: request.params.key },
      });
    }
    return value;
  });
}
