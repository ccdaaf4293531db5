/**
 * The console's storage routes: GET /v1/session/entries (every entry with its size, its lock holder,
 * lease and waiters) and PUT /v1/session/storage/:key (an edit through `use`).
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { withRedisTimeout } from '../redis/errors.js';
import type { EntryObject } from '../session/entry-edit.js';
import type { EntryReport } from '../session/lock-report.js';
import { errors, ok } from './schemas/common.js';
import { StorageKeyParams } from './schemas/session.js';
import {
  StorageEntriesSchema,
  StorageWriteBodySchema,
  StorageWriteSchema,
} from './schemas/session-entries.js';

/** What the storage views read and write. */
export interface StorageAdmin {
  /** Every entry and lock, sorted by key. */
  entries(): Promise<EntryReport[]>;
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
        summary: 'Every storage entry with its size, and each lock with its holder, lease and waiters.',
        response: { 200: ok('Sorted by key.', StorageEntriesSchema), ...errors(401) },
      },
    },
    async () => ({ items: await withRedisTimeout(deps.storageAdmin().entries(), deps.redisTimeoutMs) }),
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
