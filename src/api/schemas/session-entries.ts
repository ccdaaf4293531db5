/** Schemas of the console's storage routes: entries with their locks, and the edit of an entry. */
import { z } from 'zod';
import { MAX_STORAGE_PAGE_SIZE, STORAGE_PAGE_SIZE } from '../../session/lock-report.js';
import { IsoTime, JsonValueSchema } from './common.js';

const Party = z
  .object({
    owner: z.string().describe('Who: "node-a #12" (an execution), "node-a console", or a waiter id.'),
    node: z.string().optional(),
    execution: z.number().int().optional(),
  })
  .meta({ id: 'LockParty' });

/** The query of GET /v1/session/entries. */
export const StorageEntriesQuerySchema = z.strictObject({
  cursor: z.string().optional().describe("The previous page's nextCursor."),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_STORAGE_PAGE_SIZE)
    .optional()
    .describe(`About how many entries (default ${STORAGE_PAGE_SIZE}, at most ${MAX_STORAGE_PAGE_SIZE}).`),
});

/** The answer of GET /v1/session/entries. */
export const StorageEntriesSchema = z
  .object({
    items: z.array(
      z.object({
        key: z.string(),
        size: z.number().int().nullable().describe("Bytes of the entry's JSON; null: locked, no entry yet."),
        lock: z
          .object({
            holder: Party,
            leaseUntil: IsoTime.describe('When the lease runs out unless the holder renews it.'),
            waiters: z.array(Party).describe('Oldest first.'),
          })
          .optional(),
      }),
    ),
    nextCursor: z.string().optional().describe('Where the next page starts; absent on the last page.'),
  })
  .meta({ id: 'StorageEntries' });

const EntryObjectSchema = z.record(z.string(), JsonValueSchema).describe('A JSON object.');

/** The body of PUT /v1/session/storage/:key. */
export const StorageWriteBodySchema = z.strictObject({
  value: EntryObjectSchema.describe('The new entry.'),
  expect: EntryObjectSchema.nullable()
    .optional()
    .describe('What the entry must be now (null: no entry), else 409 STORAGE_ENTRY_CHANGED.'),
});

/** The answer of PUT /v1/session/storage/:key. */
export const StorageWriteSchema = z
  .object({ key: z.string(), size: z.number().int() })
  .meta({ id: 'StorageWrite' });
