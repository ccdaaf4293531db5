/** Schemas of GET /v1/audit: the audit trail, newest first. */
import { z } from 'zod';
import { AUDIT_ACTIONS } from '../../auth/audit.js';
import { IsoTime, JsonValueSchema } from './common.js';

/** The query of GET /v1/audit. */
export const AuditQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('How many (default 50, at most 1000).'),
  before: z
    .string()
    .regex(/^\d{1,20}-\d{1,20}$/, 'must be a nextCursor of a previous page')
    .optional()
    .describe('The nextCursor of the previous page: entries older than it.'),
  caller: z.string().max(64).optional().describe("Only this caller's entries."),
  action: z.enum(AUDIT_ACTIONS).optional().describe('Only entries of this action.'),
});

/** One entry of the audit trail. */
export const AuditEntrySchema = z
  .object({
    id: z.string().describe('Its place in the trail (a Redis stream id); a page cursor.'),
    at: IsoTime,
    caller: z
      .string()
      .describe(
        'The caller: SPROCD_TOKEN, loopback (a node without a token), or a name of the callers file.',
      ),
    action: z.enum(AUDIT_ACTIONS),
    status: z.number().int().describe('The HTTP status of the answer: 2xx done, else refused or failed.'),
    node: z.string().describe('The node that answered.'),
    ip: z.string().optional().describe("The client's address as the node saw it."),
    details: z
      .record(z.string(), JsonValueSchema)
      .optional()
      .describe('What it acted on and what came of it: procedure, execution, key, backup, ...'),
  })
  .meta({ id: 'AuditEntry' });

/** The answer of GET /v1/audit. */
export const AuditPageSchema = z
  .object({
    items: z.array(AuditEntrySchema).describe('Newest first.'),
    nextCursor: z.string().optional().describe('Pass as `before` for older entries; absent at the oldest.'),
  })
  .meta({ id: 'AuditPage' });
