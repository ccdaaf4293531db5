/** Schemas of the console's actions on executions: retry, remove, bulk, timeline. */
import { z } from 'zod';
import { IsoTime } from './common.js';
import { ExecutionStateSchema } from './executions.js';

/** The body of POST /v1/executions/bulk. */
export const BulkBodySchema = z.strictObject({
  action: z.enum(['abort', 'retry', 'remove']),
  filter: z
    .strictObject({
      state: ExecutionStateSchema.optional(),
      procedure: z.string().optional(),
      name: z.string().optional(),
      from: z.string().optional().describe('Created at or after (ISO time or epoch ms).'),
      to: z.string().optional().describe('Created at or before (ISO time or epoch ms).'),
    })
    .default({}),
  dryRun: z.boolean().optional().describe('Count only: what the confirmation shows.'),
});

/** The answer of POST /v1/executions/bulk. */
export const BulkResultSchema = z
  .object({
    action: z.enum(['abort', 'retry', 'remove']),
    matched: z.number().int().describe('Executions that match and that the action applies to.'),
    done: z.number().int().optional(),
    skipped: z.number().int().optional().describe('Their state changed before the action reached them.'),
    truncated: z.boolean().optional().describe('More matched than one action takes (10,000): run it again.'),
  })
  .meta({ id: 'BulkResult' });

/** The answer of GET /v1/executions/:number/timeline. */
export const TimelineSchema = z
  .object({
    items: z
      .array(
        z.object({
          at: IsoTime,
          type: z.enum([
            'queued',
            'delayed',
            'started',
            'woken',
            'retrying',
            'recovered',
            'completed',
            'failed',
            'aborted',
          ]),
          node: z.string().optional(),
          attempt: z.number().int().optional(),
          message: z.string().optional(),
        }),
      )
      .describe('Oldest first.'),
    retriedBy: z.number().int().positive().optional().describe('The execution that retries this one.'),
  })
  .meta({ id: 'Timeline' });
