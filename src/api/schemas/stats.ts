/** Schemas of the console's overview routes: GET /v1/stats and GET /v1/system-events. */
import { z } from 'zod';
import { MAX_MINUTES } from '../../stats/series.js';
import { IsoTime } from './common.js';

/** The query of GET /v1/stats. */
export const StatsQuerySchema = z.strictObject({
  minutes: z.coerce
    .number()
    .int()
    .min(1)
    .max(MAX_MINUTES)
    .optional()
    .describe(`How far back (default 60, at most ${MAX_MINUTES}).`),
});

const Count = z.number().int().min(0);

/** The answer of GET /v1/stats. */
export const StatsSchema = z
  .object({
    counts: z
      .object({
        waiting: Count,
        delayed: Count,
        active: Count,
        completed: Count,
        failed: Count,
        aborted: Count,
      })
      .describe('Executions the queue holds now, by state.'),
    stepS: z.number().int().describe('Width of a bucket in seconds.'),
    series: z
      .array(
        z.object({
          t: z.number().int().describe('Bucket start (epoch ms).'),
          completed: Count,
          failed: Count,
          aborted: Count,
          p50Ms: z.number().nullable().describe('Median run time of the executions that ended in it.'),
          p99Ms: z.number().nullable(),
        }),
      )
      .describe('Oldest first; executions/s of a bucket = (completed + failed + aborted) / stepS.'),
  })
  .meta({ id: 'Stats' });

/** The query of GET /v1/system-events. */
export const SystemEventsQuerySchema = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).optional().describe('How many (default 50).'),
});

/** One system event as onSystemEvent gets it. */
export const SystemEventSchema = z
  .looseObject({ type: z.string(), at: IsoTime, node: z.string() })
  .meta({ id: 'SystemEvent' });

/** The answer of GET /v1/system-events. */
export const SystemEventListSchema = z
  .object({ items: z.array(SystemEventSchema).describe('Newest first.') })
  .meta({ id: 'SystemEventList' });
