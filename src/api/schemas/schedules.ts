/** Schemas of GET /v1/schedules and of the backup file download. */
import { z } from 'zod';
import { IsoTime } from './common.js';

/** The answer of GET /v1/schedules. */
export const ScheduleListSchema = z
  .object({
    items: z.array(
      z.object({
        id: z.string(),
        kind: z.enum(['backup', 'procedure']),
        procedure: z.string().optional(),
        cron: z.string(),
        tz: z.string().optional(),
        next: z.array(IsoTime).describe('The next ticks, soonest first.'),
        lastRun: z
          .object({
            at: IsoTime,
            scheduledAt: IsoTime.optional(),
            execution: z.number().int().optional(),
            backup: z.number().int().optional(),
            outcome: z.string().optional(),
          })
          .optional(),
        missed: z.number().int().min(0).describe('Ticks missed while no node ran (retained history).'),
        missedTicks: z.array(IsoTime).optional(),
      }),
    ),
  })
  .meta({ id: 'ScheduleList' });

/** The backup number in a URL. */
export const BackupNumberParams = z.strictObject({
  number: z
    .string()
    .regex(/^[1-9]\d{0,15}$/, { error: 'Backup numbers are positive integers.' })
    .transform(Number)
    .describe('The backup number.'),
});
