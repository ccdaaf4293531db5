/** Schemas of GET /v1/events (the events themselves are described in the route's documentation). */
import { z } from 'zod';

const ListParam = z.union([z.string(), z.array(z.string())]).optional();

/** The query of GET /v1/events: each filter repeated (`?type=a&type=b`) or comma-separated. */
export const EventsQuerySchema = z.strictObject({
  type: ListParam.describe(
    'Event types (execution.state, execution.progress, execution.removed, system, backup.started, ' +
      'backup.progress, backup.finished, restore.started, restore.progress, restore.finished) or families ' +
      '(execution, backup, restore). Default: all.',
  ),
  types: ListParam.describe('Same as `type`.'),
  procedure: ListParam.describe('Only execution events of these procedures.'),
  number: ListParam.describe('Only execution events of these execution numbers.'),
  digest: z
    .string()
    .optional()
    .describe(
      'Milliseconds (100-60000): execution events come as one `execution.digest` event at most this often ' +
        '`{ count, items: [{ type, number, procedure?, state? }], more }` (the latest change of each ' +
        'execution, up to 100; `more` when there were more), for clients that reload what they show. ' +
        'Other events still come one by one.',
    ),
});
