/** /v1/session: the stored-procedure session and its storage (read only). */
import type { FastifyPluginAsync } from 'fastify';
import { SprocdError } from '../errors.js';
import { withRedisTimeout } from '../redis/errors.js';
import type { Storage } from '../types.js';

/** The session as its routes read it. */
export interface SessionReader {
  /** The session as stored now (GET /v1/session). */
  describe(): Promise<object>;
  readonly storage: Pick<Storage, 'get' | 'snapshot'>;
}

/** What the session routes need of the node. */
export interface SessionRouteDeps {
  /** The session; throws NotReadyError (or another SprocdError) when the node cannot serve it. */
  session(): SessionReader;
  /** SPROCD_REDIS_TIMEOUT_MS: longer is answered 503 REDIS_UNAVAILABLE. */
  readonly redisTimeoutMs: number;
}

/** The session routes, as a fastify plugin. */
export const sessionRoutes: FastifyPluginAsync<SessionRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;
  app.get('/session', async () => withRedisTimeout(deps.session().describe(), timeout));
  app.get('/session/storage', async () => withRedisTimeout(deps.session().storage.snapshot(), timeout));
  app.get<{ Params: { key: string } }>('/session/storage/:key', async (request) => {
    const key = request.params.key;
    const value = await withRedisTimeout(deps.session().storage.get(key), timeout);
    if (value === undefined) {
      throw new SprocdError('STORAGE_ENTRY_NOT_FOUND', `No storage entry "${key}".`, { details: { key } });
    }
    return value;
  });
};
