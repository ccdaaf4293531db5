/** /v1/session: the stored-procedure session and its storage (read only). */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { z } from 'zod';
import { SprocdError } from '../errors.js';
import { withRedisTimeout } from '../redis/errors.js';
import type { Storage } from '../types.js';
import { JsonValueSchema, errors, ok } from './schemas/common.js';
import { SessionSchema, StorageKeyParams, StorageSnapshotSchema } from './schemas/session.js';

/** The session as its routes read it. */
export interface SessionReader {
  /** The session as stored now (GET /v1/session). */
  describe(): Promise<z.output<typeof SessionSchema>>;
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
export const sessionRoutes: FastifyPluginAsyncZod<SessionRouteDeps> = async (app, deps) => {
  const timeout = deps.redisTimeoutMs;
  app.get(
    '/session',
    {
      schema: {
        operationId: 'getSession',
        summary: 'The stored-procedure session: id, info, privileges.',
        response: { 200: ok('The session.', SessionSchema), ...errors(401) },
      },
    },
    async () => withRedisTimeout(deps.session().describe(), timeout),
  );
  app.get(
    '/session/storage',
    {
      schema: {
        operationId: 'getStorage',
        summary: 'Every storage entry at one moment.',
        response: { 200: ok('The storage.', StorageSnapshotSchema), ...errors(401) },
      },
    },
    async () => withRedisTimeout(deps.session().storage.snapshot(), timeout),
  );
  const entry = {
    schema: {
      operationId: 'getStorageEntry',
      summary: 'One storage entry.',
      params: StorageKeyParams,
      response: { 200: ok('The entry (any JSON value).', JsonValueSchema), ...errors(401, 404) },
    },
  };
  app.get('/session/storage/:key', entry, async (request) => {
    const key = request.params.key;
    const value = await withRedisTimeout(deps.session().storage.get(key), timeout);
    if (value === undefined) {
      throw new SprocdError('STORAGE_ENTRY_NOT_FOUND', `No storage entry "${key}".`, { details: { key } });
    }
    return value;
  });
};
