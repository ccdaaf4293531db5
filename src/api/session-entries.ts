/**
 * The console's storage routes: GET /v1/session/entries (the entries with their size, lock holder,
 * lease and waiters, page by page) and PUT /v1/session/storage/:key (an edit through `use`).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withRedisTimeout } from '../redis/errors.js';
import type { EntryObject } from '../session/entry-edit.js';
import type { StoragePage, StoragePageQuery } from '../session/lock-report.js';
import { errors, ok } from './schemas/common.js';
import { StorageKeyParams } from './schemas/session.js';
import {
  StorageEntriesQuerySchema,
  StorageEntriesSchema,
  StorageWriteBodySchema,
  StorageWriteSchema,
} from './schemas/session-entries.js';

/** What the storage views read and write. */
export interface StorageAdmin {
  /** A page of the entries and locks, sorted by key within the page (src/session/lock-report.ts). */
  entries(query?: StoragePageQuery): Promise<StoragePage>;
  /** Replaces entry `key` through `use` (waits for the lock like any writer). */
  replace(key: string, value: EntryObject, expect?: EntryObject | null): Promise<void>;
}

/** What the storage views need of the node. */
export interface SessionEntriesRouteDeps {
  /** The storage; throws NotReadyError while the node cannot serve it. */
  storageAdmin(): StorageAdmin;
  readonly redisTimeoutMs: number;
  /** SPROCD_LOCK_TIMEOUT_MS: an edit waits for the lock at most this long. */
  readonly lockTimeoutMs: number;
}

/** The storage views, as a fastify plugin. */
export const sessionEntriesRoutes: FastifyPluginAsyncZod<SessionEntriesRouteDeps> = async (app, deps) => {
  app.get(
    '/session/entries',
    {
      schema: {
        operationId: 'listStorageEntries',
        summary: 'The storage entries with their size, and each lock with its holder, lease and waiters.',
        description:
          'Page by page (`limit`, then `cursor` from `nextCursor`), sorted by key within a page; the first ' +
          'page also lists the locks on keys that have no entry yet. An entry written meanwhile may show twice or not at all.',
        querystring: StorageEntriesQuerySchema,
        response: { 200: ok('A page.', StorageEntriesSchema), ...errors(400, 401) },
      },
    },
    async (request) => withRedisTimeout(deps.storageAdmin().entries(request.query), deps.redisTimeoutMs),
  );

  app.put(
    '/session/storage/:key',
    {
      schema: {
        operationId: 'writeStorageEntry',
        summary: 'Replaces a storage entry, through `use`: locked and fenced like any other writer.',
        params: StorageKeyParams,
        body: StorageWriteBodySchema,
        response: {
          200: ok('Written.', StorageWriteSchema),
          ...errors(400, 401, 409),
        },
      },
    },
    async (request) => {
      const { key } = request.params;
      const { value, expect } = request.body;
      await withRedisTimeout(
        deps.storageAdmin().replace(key, value, expect),
        deps.lockTimeoutMs + deps.redisTimeoutMs,
      );
      return { key, size: Buffer.byteLength(JSON.stringify(value)) };
    },
  );
};
