/** Schema of one execution's kept log lines (GET /v1/executions/:number/logs). */
import { z } from 'zod';
import { IsoTime } from './common.js';

/** The answer of GET /v1/executions/:number/logs. */
export const ExecutionLogsSchema = z
  .object({
    items: z
      .array(
        z.object({
          at: IsoTime,
          level: z.string().describe("pino's level name: trace, debug, info, warn, error, fatal."),
          msg: z.string(),
          node: z.string().describe('The node that ran the attempt.'),
          attempt: z.number().int().optional(),
          fields: z.record(z.string(), z.unknown()).optional().describe('The other JSON fields of the line.'),
        }),
      )
      .describe(
        'Oldest first: the newest 200 lines, each cut to 2 KiB, kept for an hour after the last one.',
      ),
  })
  .meta({ id: 'ExecutionLogs' });
