/** Schemas of /v1/workers: CALL WORKER, KILL WORKER and the listing. */
import { z } from 'zod';
import { IsoTime, JsonValueSchema } from './common.js';

/** The `:name` of a worker route (its rules are checked by the workers: INVALID_NAME). */
export const WorkerNameParams = z.strictObject({
  name: z.string().describe('The worker: 1-255 characters, not starting with "$".'),
});

/** The body of POST /v1/workers/{name}/calls. */
export const WorkerCallBodySchema = z
  .strictObject({
    procedure: z
      .string()
      .describe('The procedure the message runs: its path under jobs/ without the extension.'),
    params: JsonValueSchema.optional().describe("The procedure's params (JSON); checked by its schema."),
  })
  .meta({ id: 'WorkerCallRequest' });

/** The answer of POST /v1/workers/{name}/calls. */
export const WorkerCallSchema = z
  .object({
    worker: z.string(),
    id: z.string().describe("The message's id: ctx.process.id while it runs."),
    procedure: z.string(),
    pending: z.number().int().describe('Messages waiting in the mailbox, this one included.'),
  })
  .meta({ id: 'WorkerCall' });

/** The answer of DELETE /v1/workers/{name}. */
export const WorkerKillSchema = z
  .object({
    worker: z.string(),
    outcome: z
      .enum(['ended', 'ending'])
      .describe('ended: it was idle and ended now; ending: it ends once its current message is done.'),
    dropped: z.number().int().describe('Pending messages dropped.'),
  })
  .meta({ id: 'WorkerKill' });

/** A worker as GET /v1/workers shows it. */
export const WorkerViewSchema = z
  .object({
    name: z.string(),
    node: z.string().optional().describe('The node that runs it now; absent while no node holds it.'),
    pending: z.number().int().describe('Messages waiting, not counting the one running.'),
    processed: z.number().int().describe('Messages done since the worker was created, failed ones included.'),
    failed: z.number().int().describe('Of those, the ones whose procedure threw.'),
    createdAt: IsoTime,
    current: z
      .object({
        id: z.string(),
        procedure: z.string(),
        attempt: z.number().int().describe('Raised each time another node runs it again.'),
        startedAt: IsoTime,
      })
      .optional()
      .describe('The message running, or left unfinished by a node that died.'),
    ending: z.boolean().optional().describe('Killed: it ends once its current message is done.'),
  })
  .meta({ id: 'Worker' });

/** The answer of GET /v1/workers. */
export const WorkerListSchema = z.object({ items: z.array(WorkerViewSchema) }).meta({ id: 'WorkerList' });
