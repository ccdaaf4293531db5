/** Schemas of /v1/processes: 4D's Process info, Process state, Process number and Process activity. */
import { z } from 'zod';
import { ExecutionStateSchema } from './executions.js';
import { IsoTime } from './common.js';

/** 4D's Process state code. */
export const ProcessStateCodeSchema = z
  .union([z.literal(-100), z.literal(-1), z.literal(0), z.literal(1), z.literal(4), z.literal(5)])
  .describe(
    "4D's Process state: 0 executing, 1 in ctx.delay or a delayed start, 4 waiting to start, 5 paused, -1 aborted, -100 finished or missing.",
  )
  .meta({ id: 'ProcessStateCode' });

/** Process info of one execution. */
export const ProcessDetailsSchema = z
  .object({
    number: z.number().int().positive().describe('The execution number (4D process number).'),
    id: z.string(),
    name: z.string().describe('The process name ("" when none was given).'),
    procedure: z.string(),
    state: ExecutionStateSchema.describe(
      'Its state as /v1/executions shows it (a paused one not started: delayed).',
    ),
    code: ProcessStateCodeSchema,
    node: z.string().optional().describe('The node that runs or ran it.'),
    attempt: z.number().int().min(0),
    startedAt: IsoTime.optional(),
  })
  .meta({ id: 'ProcessDetails' });

/** Process activity. */
export const ProcessActivitySchema = z
  .object({
    items: z
      .array(ProcessDetailsSchema)
      .describe(
        'The live executions of the cluster: active, then delayed, then waiting (at most 1,000 of each).',
      ),
  })
  .meta({ id: 'ProcessActivity' });

/** Process state of one execution. */
export const ProcessStateSchema = z
  .object({ number: z.number().int().positive(), code: ProcessStateCodeSchema })
  .meta({ id: 'ProcessState' });

/** The process name in a URL. */
export const ProcessNameParams = z.strictObject({
  name: z.string().min(1).describe('The process name.'),
});

/** Process number of a name. */
export const ProcessNumberSchema = z
  .object({
    name: z.string(),
    number: z
      .number()
      .int()
      .min(0)
      .describe('The live execution with that process name (active, then delayed, then waiting), or 0.'),
  })
  .meta({ id: 'ProcessNumber' });
