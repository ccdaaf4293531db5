/** Schemas of GET /v1/events (the events themselves are described in the route's documentation). */
import { z } from 'zod';

const ListParam = z.union([z.string(), z.array(z.string())]).optional();

/** The query of GET /v1/events: each filter repeated (`?type=a&type=b`) or comma-separated. */
export const EventsQuerySchema = z.strictObject({
  type: ListParam.describe(
    'Event types (execution.state, execution.progress, execution.removed, system, backup.started, ' +
      'backup.progress, backup.finished) or families (execution, backup). Default: all.',
  ),
  types: ListParam.describe('Same as `type`.'),
  procedure: ListParam.describe('Only execution events of these procedures.'),
  number: ListParam.describe('Only execution events of these execution numbers.'),
});
